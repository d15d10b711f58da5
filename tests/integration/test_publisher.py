"""The publisher against the real broker: delivery, per-dossier order, clear failures."""

from __future__ import annotations

import contextlib
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Iterator

import orjson
import pytest
from kafka import KafkaConsumer

from common import kafka_admin
from dossier_stream import localstack
from producers.errors import BrokerUnavailableError, DeliveryError, PublishTimeoutError
from producers.publisher import DeliveryReport, DossierPublisher, partition_for
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


@contextlib.contextmanager
def refusing_topic(bootstrap: str, name: str) -> Iterator[str]:
    """A topic whose broker refuses every event: larger than its largest message (200 bytes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(name, 2, 1, topic_configs={"max.message.bytes": "200"})],
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    try:
        yield name
    finally:
        kafka_admin.delete_topics(bootstrap, [name])


def check_order(messages: list, expected: int) -> dict[str, list[int]]:
    """Each dossier in one partition, keyed by its id, its sequences in increasing order."""
    assert len(messages) == expected
    partitions: dict[str, set[int]] = defaultdict(set)
    sequences: dict[str, list[int]] = defaultdict(list)
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        doc = orjson.loads(m.value)
        assert m.key == doc["dossier_id"].strip().encode()
        partitions[doc["dossier_id"]].add(m.partition)
        sequences[doc["dossier_id"]].append(doc["sequence"])
    assert all(len(p) == 1 for p in partitions.values()), "a dossier spread over partitions"
    assert all(seq == sorted(seq) for seq in sequences.values()), "a dossier out of order"
    return dict(sequences)


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


@pytest.mark.serial  # restarts the shared local broker
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


def test_many_events_of_one_dossier_keep_their_order_when_the_publisher_waits_for_acks(
    stack, names, make_topics
) -> None:
    make_topics(names, partitions=4)
    template = event_doc("processing")
    pub = DossierPublisher(
        stack.kafka_bootstrap, names.events_topic, registry=REGISTRY, max_pending=64, linger_ms=5
    )
    with pub:
        parts = pub.partitions()
        for i in range(1, 6001):  # a hot dossier on every other event, among 50 others
            dossier = "HOT-1" if i % 2 else f"COLD-{i % 50:02d}"
            doc = dict(template, event_id=str(uuid.uuid4()), dossier_id=dossier, sequence=i)
            if i % 3:  # already validated: sent as the bytes given
                key = dossier.encode()
                pub.send_validated(orjson.dumps(doc), key, partition_for(key, parts))
            else:
                pub.publish(orjson.dumps(doc))
            assert pub.report.pending < 2 * 64  # bounded: the caller waits for acks
    assert pub.report == DeliveryReport(acked=6000, failed=0, pending=0)
    sequences = check_order(consume_all(stack.kafka_bootstrap, names.events_topic, 6000), 6000)
    assert len(sequences["HOT-1"]) == 3000


def test_a_broker_that_refuses_every_event_counts_none_as_delivered(stack, names) -> None:
    with refusing_topic(stack.kafka_bootstrap, names.events_topic) as topic:
        pub = DossierPublisher(stack.kafka_bootstrap, topic, delivery_timeout_s=3)
        try:
            events = [pub.publish(e) for e in lifecycle("REFUSED-1", steps=STEPS)]
            key = b"REFUSED-2"
            pub.send_validated(
                orjson.dumps(event_doc(dossier_id="REFUSED-2")), key,
                partition_for(key, pub.partitions()),
            )  # fmt: skip
            with pytest.raises(DeliveryError) as info:
                pub.flush(30)
            assert pub.report == DeliveryReport(acked=0, failed=len(events) + 1, pending=0)
            failed = info.value.failed
            assert {f.dossier_id for f in failed} == {"REFUSED-1", "REFUSED-2"}
            assert {f.event_id for f in failed} >= {str(e.event_id) for e in events}
            assert all(f.error for f in failed)
        finally:
            with contextlib.suppress(DeliveryError, PublishTimeoutError):
                pub.close(timeout_s=5)
