"""The worker's broker probe on a real broker: it asks for its own topic, not the cluster's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from common.settings import StackSettings
from stream_apps.kafka_io import probe_cluster


def test_the_probe_reads_the_metadata_of_the_named_topics_only(
    stack: StackSettings, names, make_topics: Callable[..., object]
) -> None:
    make_topics(names, partitions=3)  # the events topic and the dead-letter topic

    async def scenario() -> tuple[set[str], set[int] | None]:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
        await producer.start()
        try:
            metadata = await probe_cluster(producer, [names.events_topic])
        finally:
            await producer.stop()
        return metadata.topics(), metadata.partitions_for_topic(names.events_topic)

    topics, partitions = asyncio.run(scenario())
    # The broker holds at least the dead-letter topic too: only the one asked for came back.
    assert topics == {names.events_topic}
    assert partitions == {0, 1, 2}
