"""The publisher against the real broker: delivery, per-dossier order, clear failures."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

import orjson
import pytest
from kafka import KafkaConsumer

from dossier_stream import localstack
from producers.errors import BrokerUnavailableError, DeliveryError, PublishTimeoutError
from producers.publisher import DossierPublisher
from schemas.errors import EventValidationError
from schemas.registry import AgencyRegistry
from tests.factories import event_doc, lifecycle

REGISTRY = AgencyRegistry.default()
STEPS = (
    "accepted",
    "processing",
    "supplement_requested",
    "supplement_received",
    "resolved",
    "returned",
)


def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=2000
    )
    out: list = []
    deadline = time.monotonic() + timeout_s
    while len(out) < expected and time.monotonic() < deadline:
        out.extend(consumer)
    consumer.close()
    return out


def test_every_event_is_delivered_keyed_by_dossier_in_sequence_order(
    stack, names, make_topics
) -> None:
    make_topics(names, partitions=4)
    dossiers = [f"ORDER-{i:03d}" for i in range(40)]
    sent = []
    with DossierPublisher(stack.kafka_bootstrap, names.events_topic, registry=REGISTRY) as pub:
        for step in range(len(STEPS)):  # interleave dossiers, as a live system does
            for dossier in dossiers:
                ev = lifecycle(dossier, steps=STEPS)[step]
                sent.append(pub.publish(ev))
    assert pub.report.acked == len(sent) and pub.report.failed == 0 and pub.report.pending == 0
    messages = consume_all(stack.kafka_bootstrap, names.events_topic, len(sent))
    assert len(messages) == len(sent)
    partitions: dict[str, set[int]] = defaultdict(set)
    sequences: dict[str, list[int]] = defaultdict(list)
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        doc = orjson.loads(m.value)
        assert m.key == doc["dossier_id"].encode()
        partitions[doc["dossier_id"]].add(m.partition)
        sequences[doc["dossier_id"]].append(doc["sequence"])
    assert all(len(p) == 1 for p in partitions.values()), "a dossier spread over partitions"
    assert all(seq == list(range(1, len(STEPS) + 1)) for seq in sequences.values())
    assert len({next(iter(p)) for p in partitions.values()}) > 1  # the load is spread


def test_an_invalid_event_raises_naming_the_field_and_is_not_sent(
    stack, names, make_topics
) -> None:
    make_topics(names, partitions=1)
    with DossierPublisher(stack.kafka_bootstrap, names.events_topic, registry=REGISTRY) as pub:
        with pytest.raises(EventValidationError, match="channel"):
            pub.publish(event_doc(channel="fax"))
        pub.publish(event_doc())
    assert pub.report.acked == 1
    assert len(consume_all(stack.kafka_bootstrap, names.events_topic, 1, timeout_s=5)) == 1


def test_an_unreachable_broker_is_a_clear_error() -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:1"):
        DossierPublisher("127.0.0.1:1", "anything", connect_timeout_s=2)
    assert time.monotonic() - started < 15


def test_a_topic_the_broker_lacks_times_out_and_nothing_is_reported_sent(stack, names) -> None:
    pub = DossierPublisher(
        stack.kafka_bootstrap, names.events_topic + ".missing", connect_timeout_s=2
    )
    try:
        with pytest.raises(PublishTimeoutError, match="was not sent"):
            pub.publish(event_doc())
        assert pub.report.acked == 0 and pub.report.pending == 0
    finally:
        pub.close(timeout_s=1)


def test_a_broker_that_goes_down_mid_stream_is_reported_and_nothing_unsent_counts_as_sent(
    stack, local_stack_settings, names, make_topics
) -> None:
    make_topics(names, partitions=1)
    events = lifecycle("DOWN-1", steps=STEPS)
    pub = DossierPublisher(
        stack.kafka_bootstrap, names.events_topic, connect_timeout_s=3, delivery_timeout_s=6
    )
    try:
        pub.publish(events[0])
        pub.flush(10)
        assert pub.report.acked == 1
        localstack.down(local_stack_settings, ["kafka"])
        try:
            with pytest.raises((DeliveryError, PublishTimeoutError)) as info:
                for ev in events[1:]:
                    pub.publish(ev)
                pub.flush(15)
            report = pub.report
            assert report.acked == 1, "an event was reported delivered while the broker was down"
            if isinstance(info.value, DeliveryError):
                assert len(info.value.failed) == report.failed >= 1
                assert {f.dossier_id for f in info.value.failed} == {"DOWN-1"}
            else:
                assert "not" in str(info.value)  # "... not sent" / "not acknowledged"
        finally:
            localstack.up(local_stack_settings, ["kafka"])
    finally:
        with contextlib.suppress(DeliveryError, PublishTimeoutError):
            pub.close(timeout_s=5)
