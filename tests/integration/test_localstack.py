"""The local services for real: a Kafka round trip, idempotent `up`, and the stop path."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from common import kafka_admin
from common.settings import StackSettings
from dossier_stream import localstack
from dossier_stream.settings import LocalStackSettings

if TYPE_CHECKING:
    from conftest import Names

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_exists(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


@pytest.fixture
def scratch_stack(
    tmp_path: Path, local_stack_settings: LocalStackSettings
) -> Iterator[LocalStackSettings]:
    """A second stack in a temp dir on free ports, sharing the session's Kafka jar cache."""
    settings = LocalStackSettings(
        stack_dir=tmp_path / "stack",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        redis_port=free_port(),
        kafka_jars_dir=localstack.StackPaths.of(local_stack_settings).kafka_jars.parent,
        kafka_heap="-Xms128m -Xmx512m",
        start_timeout_s=60.0,
    )
    yield settings
    localstack.down(settings)  # whatever a failed test left behind


def describe_topic(bootstrap: str, topic: str) -> dict[str, Any]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
        return dict(described)
    finally:
        admin.close()


def test_kafka_round_trip(
    stack: StackSettings, names: Names, make_topics: Callable[..., Names]
) -> None:
    make_topics(names, partitions=1)
    payload = f"hello from {names.test}".encode()

    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    try:
        sent = producer.send(names.events_topic, key=b"k1", value=payload).get(timeout=30)
    finally:
        producer.close()
    assert (sent.topic, sent.partition, sent.offset) == (names.events_topic, 0, 0)

    consumer = KafkaConsumer(
        names.events_topic,
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=names.group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    received: list[Any] = []
    try:
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                received.extend(records)
    finally:
        consumer.close()
    assert [(r.key, r.value) for r in received] == [(b"k1", payload)]


def test_ensure_topics_is_idempotent_and_delete_topics_removes(
    stack: StackSettings, names: Names
) -> None:
    bootstrap = stack.kafka_bootstrap
    topics = {names.events_topic: 3, names.dead_letter_topic: 1}
    try:
        created = kafka_admin.ensure_topics(bootstrap, topics, compacted={names.dead_letter_topic})
        assert created == sorted(topics)
        assert kafka_admin.ensure_topics(bootstrap, {names.events_topic: 8}) == []
        described = describe_topic(bootstrap, names.events_topic)
        assert len(described["partitions"]) == 3  # an existing topic is left as it is
    finally:
        assert kafka_admin.delete_topics(bootstrap, topics) == sorted(topics)
    assert kafka_admin.delete_topics(bootstrap, topics) == []


def test_up_again_is_a_no_op(
    stack: StackSettings, local_stack_settings: LocalStackSettings
) -> None:
    before = {s.name: s.pid for s in localstack.status(local_stack_settings)}
    results = localstack.up(local_stack_settings)
    assert [r.started for r in results] == [False, False]
    assert {r.name: r.pid for r in results} == before


def test_status_reports_running_processes(
    stack: StackSettings, local_stack_settings: LocalStackSettings
) -> None:
    statuses = {s.name: s for s in localstack.status(local_stack_settings)}
    assert set(statuses) == {"kafka", "redis"}
    for st in statuses.values():
        assert st.running, st.detail
        assert st.pid is not None and pid_exists(st.pid)
    assert statuses["kafka"].address == stack.kafka_bootstrap
    assert statuses["redis"].address == stack.redis_url


def test_redis_client_fixture_uses_the_stack(redis_client: redis.Redis, names: Names) -> None:
    key = f"{names.redis_prefix}:probe"
    redis_client.set(key, "1")
    assert redis_client.get(key) == "1"


def test_redis_stop_path(scratch_stack: LocalStackSettings) -> None:
    (started,) = localstack.up(scratch_stack, ["redis"])
    assert started.started and pid_exists(started.pid)
    client = redis.Redis(host="127.0.0.1", port=scratch_stack.redis_port)
    try:
        assert client.ping()
    finally:
        client.close()

    (stopped,) = localstack.down(scratch_stack, ["redis"])
    assert (stopped.stopped, stopped.pid) == (True, started.pid)
    assert not pid_exists(started.pid)
    assert refuses_connections(scratch_stack.redis_port)
    assert not localstack.StackPaths.of(scratch_stack).pid_file("redis").exists()
    (after,) = localstack.status(scratch_stack, ["redis"])
    assert (after.running, after.pid, after.detail) == (False, None, "stopped")


def test_kafka_stop_path(scratch_stack: LocalStackSettings) -> None:
    began = time.monotonic()
    (started,) = localstack.up(scratch_stack, ["kafka"])
    assert started.started and pid_exists(started.pid)
    cluster = kafka_admin.describe_cluster(localstack.kafka_address(scratch_stack))
    assert [b["port"] for b in cluster["brokers"]] == [scratch_stack.kafka_port]

    (stopped,) = localstack.down(scratch_stack, ["kafka"])
    assert (stopped.stopped, stopped.pid) == (True, started.pid)
    assert not pid_exists(started.pid)
    assert refuses_connections(scratch_stack.kafka_port)
    assert refuses_connections(scratch_stack.kafka_controller_port)
    assert time.monotonic() - began < 40


def test_stale_pid_file_is_cleaned(scratch_stack: LocalStackSettings) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    pid_file = localstack.StackPaths.of(scratch_stack).pid_file("redis")
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{gone.pid}\n")

    (before,) = localstack.status(scratch_stack, ["redis"])
    assert not before.running and "stale" in before.detail
    (started,) = localstack.up(scratch_stack, ["redis"])
    assert started.started and started.pid != gone.pid
    assert pid_file.read_text().strip() == str(started.pid)


def test_a_port_taken_by_someone_else_is_an_error(scratch_stack: LocalStackSettings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", scratch_stack.redis_port))
        squatter.listen()
        with pytest.raises(localstack.LocalStackError, match="already in use"):
            localstack.up(scratch_stack, ["redis"])
        (st,) = localstack.status(scratch_stack, ["redis"])
        assert not st.running
        (stopped,) = localstack.down(scratch_stack, ["redis"])
        assert not stopped.stopped  # the squatter is not ours: never signalled
    assert not localstack.StackPaths.of(scratch_stack).pid_file("redis").exists()
