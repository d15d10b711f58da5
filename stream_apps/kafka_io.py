"""Thin aiokafka helpers: batched sends, changelog reads in runs, Faust's broker credentials."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError
from faust.types.auth import CredentialsT

from common.connections import aiokafka_options, kafka_ssl_context
from common.settings import StackSettings

Header = tuple[str, bytes]


async def send_records(
    producer: AIOKafkaProducer,
    topic: str,
    partition: int,
    records: Sequence[tuple[bytes | None, bytes | None, Sequence[Header]]],
) -> list[asyncio.Future[object]]:
    """Send records to one partition in as few batches as fit; return their futures.

    A value None is a tombstone: it deletes the key from a compacted topic."""
    futures: list[asyncio.Future[object]] = []
    batch = producer.create_batch()
    for key, value, headers in records:
        if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                raise ValueError(f"a record of {len(value or b'')} bytes does not fit in a batch")
    if batch.record_count():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


def idempotent_producer(settings: StackSettings, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer that waits for every in-sync replica and never writes a
    record twice on a retry (not started)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        **options,
        **aiokafka_options(settings),
    )


async def send_and_wait(
    producer: AIOKafkaProducer, topic: str, records: Sequence[tuple[bytes, bytes]]
) -> None:
    """Send records (key, value) to `topic`; return once the broker has them all."""
    futures = [await producer.send(topic, key=k, value=v) for k, v in records]
    if futures:
        await asyncio.gather(*futures)


async def probe_cluster(producer: AIOKafkaProducer, topics: Sequence[str]) -> ClusterMetadata:
    """Ask a broker for the metadata of `topics` (returned); raise `KafkaError` when none
    answers.

    Only those topics: the metadata of every topic (aiokafka's `fetch_all_metadata`) is
    decoded in Python, and on a cluster of a thousand topics that cost the worker 6% of
    its time at a probe every 2 s.
    """
    metadata = ClusterMetadata()
    if not await producer.client._metadata_update(metadata, list(topics)):
        raise KafkaError("no broker answered a metadata request")
    return metadata


async def partition_batches(
    bootstrap: str, topic: str, partition: int, *, max_records: int = 10_000, **options: Any
) -> AsyncIterator[tuple[list[tuple[bytes, bytes | None]], int, int]]:
    """The records of one partition from the beginning to its end when called, in runs
    of at most `max_records`: (records, position after them, end offset). No group."""
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **options,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        while (position := await consumer.position(tp)) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=max_records)
            records = [(r.key, r.value) for r in batch.get(tp, ()) if r.offset < end]
            if records:
                yield records, min(await consumer.position(tp), end), end
            elif position >= end:
                break
    finally:
        await consumer.stop()


def faust_credentials(settings: StackSettings) -> CredentialsT | None:
    """The credentials of Faust's own clients, from the same settings as every other client."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = kafka_ssl_context(settings)
    if protocol.startswith("SASL"):
        password = settings.kafka_password
        return faust.SASLCredentials(
            username=settings.kafka_username,
            password=password.get_secret_value() if password is not None else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    assert context is not None
    return faust.SSLCredentials(context)
