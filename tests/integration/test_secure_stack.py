"""The secured local stack: who is refused, and what each principal may and may not do."""

from __future__ import annotations

import logging
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kafka.errors as kafka_errors
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import UserScramCredentialUpsertion
from pydantic import SecretStr

from common import kafka_admin
from common.connections import kafka_options, redis_client
from common.settings import StackSettings
from dossier_stream.securestack import (
    ADMIN,
    GATEWAY,
    READER,
    WORKER,
    AclRule,
    SecureStack,
    agency_principal,
    apply_kafka_policy,
)

pytestmark = pytest.mark.integration

FAST_MS = 3000  # a refused client must give up within this, not hang


def admin_client(settings: StackSettings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        bootstrap_timeout_ms=FAST_MS,
        request_timeout_ms=FAST_MS,
        **kafka_options(settings),
    )


@pytest.fixture
def producer_of(secure_stack: SecureStack) -> Iterator[Callable[[str], KafkaProducer]]:
    """`producer_of(principal)`: an idempotent producer authenticated as that principal."""
    made: list[KafkaProducer] = []

    def make(principal: str) -> KafkaProducer:
        settings = secure_stack.settings_for(principal)
        producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            max_block_ms=10_000,
            **kafka_options(settings),
        )
        made.append(producer)
        return producer

    yield make
    for producer in made:
        producer.close(timeout=5)


def send(producer: KafkaProducer, topic: str, key: bytes, value: bytes = b"{}") -> Any:
    return producer.send(topic, key=key, value=value).get(timeout=15)


def unique_key() -> bytes:
    return f"it-{uuid.uuid4().hex}".encode()


# ---------------------------------------------------------------- Kafka: who gets in


def broker_says(stack: SecureStack, offset: int, text: str, timeout_s: float = 10.0) -> bool:
    """True once the broker's log, from byte offset on, has a line with `text`."""
    log_file = stack.paths.stack.service_log("kafka")
    deadline = time.monotonic() + timeout_s
    while True:
        with log_file.open("rb") as handle:
            handle.seek(offset)
            if text.encode() in handle.read():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def log_size(stack: SecureStack) -> int:
    return stack.paths.stack.service_log("kafka").stat().st_size


def test_a_plaintext_client_is_refused_fast(
    secure_stack: SecureStack, caplog: pytest.LogCaptureFixture
) -> None:
    plain = StackSettings(kafka_bootstrap=secure_stack.settings_for(ADMIN).kafka_bootstrap)
    assert plain.kafka_security_protocol == "PLAINTEXT"
    offset = log_size(secure_stack)
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="kafka"), pytest.raises(kafka_errors.KafkaError):
        admin_client(plain).close()
    assert time.monotonic() - began < 10
    assert "Authenticated as" not in caplog.text
    assert broker_says(secure_stack, offset, "(SSL handshake failed)")


def test_a_wrong_password_is_refused_fast_and_said_so(
    secure_stack: SecureStack, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = secure_stack.settings_for(GATEWAY).model_copy(
        update={"kafka_password": SecretStr("not-the-password")}
    )
    offset = log_size(secure_stack)
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger="kafka"), pytest.raises(kafka_errors.KafkaError):
        admin_client(wrong).close()
    assert time.monotonic() - began < 10
    assert "Authenticated as" not in caplog.text
    # The client often sees only a closed socket; the broker says why, every time.
    assert broker_says(
        secure_stack, offset, "invalid credentials with SASL mechanism SCRAM-SHA-512"
    )


def test_admin_is_authenticated_over_tls(secure_stack: SecureStack) -> None:
    admin = secure_stack.settings_for(ADMIN)
    assert admin.kafka_security_protocol == "SASL_SSL"
    client = admin_client(admin)
    try:
        topics = set(client.list_topics())
    finally:
        client.close()
    assert {admin.events_topic, admin.dead_letter_topic} <= topics


# ---------------------------------------------------------------- Kafka: what each may do


def test_gateway_writes_the_events_topic(
    secure_stack: SecureStack, producer_of: Callable[[str], KafkaProducer]
) -> None:
    settings = secure_stack.settings_for(GATEWAY)
    metadata = send(producer_of(GATEWAY), settings.events_topic, unique_key())
    assert metadata.topic == settings.events_topic and metadata.offset >= 0


def test_gateway_cannot_read_the_events_topic(secure_stack: SecureStack) -> None:
    settings = secure_stack.settings_for(GATEWAY)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        **kafka_options(settings),
    )
    try:
        consumer.assign([TopicPartition(settings.events_topic, 0)])
        consumer.seek_to_beginning()
        with pytest.raises(kafka_errors.TopicAuthorizationFailedError):
            consumer.poll(timeout_ms=5000)
    finally:
        consumer.close()


@pytest.mark.parametrize("principal", [GATEWAY, agency_principal("SO-XD")])
def test_publishers_cannot_write_the_dead_letter_topic(
    secure_stack: SecureStack, producer_of: Callable[[str], KafkaProducer], principal: str
) -> None:
    settings = secure_stack.settings_for(principal)
    with pytest.raises(kafka_errors.TopicAuthorizationFailedError):
        send(producer_of(principal), settings.dead_letter_topic, unique_key())


def test_an_agency_writes_the_events_topic(
    secure_stack: SecureStack, producer_of: Callable[[str], KafkaProducer]
) -> None:
    principal = agency_principal("SO-TC")
    settings = secure_stack.settings_for(principal)
    assert settings.signer == "SO-TC" and settings.signing_key is not None
    assert send(producer_of(principal), settings.events_topic, unique_key()).offset >= 0


def test_worker_consumes_what_the_gateway_wrote(
    secure_stack: SecureStack, producer_of: Callable[[str], KafkaProducer]
) -> None:
    worker = secure_stack.settings_for(WORKER)
    key = unique_key()
    sent = send(producer_of(GATEWAY), worker.events_topic, key)
    group = f"{secure_stack.policy.app_id}-it-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(
        bootstrap_servers=worker.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        **kafka_options(worker),
    )
    try:
        tp = TopicPartition(worker.events_topic, sent.partition)
        consumer.assign([tp])
        consumer.seek(tp, sent.offset)
        seen: list[bytes] = []
        deadline = time.monotonic() + 20
        while key not in seen and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                seen += [r.key for r in records]
        assert key in seen
        consumer.commit()  # the worker's groups are its own: it may commit offsets
    finally:
        consumer.close()


def test_worker_cannot_use_a_group_outside_its_app_id(secure_stack: SecureStack) -> None:
    worker = secure_stack.settings_for(WORKER)
    consumer = KafkaConsumer(
        worker.events_topic,
        bootstrap_servers=worker.kafka_bootstrap,
        group_id=f"someone-else-{uuid.uuid4().hex[:8]}",
        **kafka_options(worker),
    )
    try:
        with pytest.raises(kafka_errors.GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=5000)
    finally:
        consumer.close()


@pytest.mark.parametrize("topic", ["dead_letter", "alerts", "alerts_undelivered"])
def test_worker_writes_the_dead_letter_and_alert_topics(
    secure_stack: SecureStack, producer_of: Callable[[str], KafkaProducer], topic: str
) -> None:
    name = {
        "dead_letter": secure_stack.policy.dead_letter_topic,
        "alerts": secure_stack.policy.alerts_topic,
        "alerts_undelivered": secure_stack.policy.alerts_undelivered_topic,
    }[topic]
    admin = secure_stack.settings_for(ADMIN)
    # The worker creates the alert topics at its start; here the admin does.
    kafka_admin.ensure_topics(admin.kafka_bootstrap, {name: 1}, options=kafka_options(admin))
    assert send(producer_of(WORKER), name, unique_key()).topic == name


def test_worker_cannot_write_the_events_topic(
    secure_stack: SecureStack, producer_of: Callable[[str], KafkaProducer]
) -> None:
    settings = secure_stack.settings_for(WORKER)
    with pytest.raises(kafka_errors.TopicAuthorizationFailedError):
        send(producer_of(WORKER), settings.events_topic, unique_key())


def test_worker_creates_and_uses_topics_under_its_app_id_only(secure_stack: SecureStack) -> None:
    worker = secure_stack.settings_for(WORKER)
    admin = secure_stack.settings_for(ADMIN)
    own = f"{secure_stack.policy.app_id}-it-{uuid.uuid4().hex[:8]}"
    other = f"it-{uuid.uuid4().hex[:8]}"
    try:
        # What the worker does at its start for its changelog and partials topics.
        created = kafka_admin.ensure_topics(
            worker.kafka_bootstrap, {own: 1}, compacted={own}, options=kafka_options(worker)
        )
        assert created == [own]
        producer = KafkaProducer(
            bootstrap_servers=worker.kafka_bootstrap, acks="all", **kafka_options(worker)
        )
        try:
            producer.send(own, key=b"k", value=b"v").get(timeout=15)
        finally:
            producer.close(timeout=5)
        with pytest.raises(kafka_admin.KafkaAdminError, match="TopicAuthorizationFailed"):
            kafka_admin.ensure_topics(
                worker.kafka_bootstrap, {other: 1}, options=kafka_options(worker)
            )
    finally:
        kafka_admin.delete_topics(admin.kafka_bootstrap, [own, other], options=kafka_options(admin))


def test_applying_the_policy_again_removes_what_it_does_not_list(
    secure_stack: SecureStack,
) -> None:
    admin = secure_stack.settings_for(ADMIN)
    stray = AclRule(GATEWAY, "topic", admin.events_topic, "READ").to_acl()
    former = agency_principal("XX-FORMER")
    client = admin_client(admin)
    try:
        assert not client.create_acls([stray])["failed"]
        client.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(former, "SCRAM-SHA-512", uuid.uuid4().hex)]
        )
        assert former in client.describe_user_scram_credentials()
        done = apply_kafka_policy(admin, secure_stack.policy, secure_stack.material)
        assert (done["removed_acls"], done["removed_users"]) == (1, 1)
        found, _ = client.describe_acls(stray)
        assert found == []
        assert not client.describe_user_scram_credentials().get(former, {}).get("credential_infos")
        again = apply_kafka_policy(admin, secure_stack.policy, secure_stack.material)
        assert (again["removed_acls"], again["users"], again["removed_users"]) == (0, 0, 0)
    finally:
        client.close()


# ---------------------------------------------------------------- Redis


@pytest.fixture
def redis_of(secure_stack: SecureStack) -> Iterator[Callable[[str], redis.Redis]]:
    """`redis_of(user)`: a client of the secured Redis as that user; test keys go at the end."""
    made: list[redis.Redis] = []

    def make(user: str) -> redis.Redis:
        client = redis_client(secure_stack.settings_for(user), decode_responses=True)
        made.append(client)
        return client

    yield make
    admin = make(ADMIN)
    prefix = secure_stack.policy.redis_prefix
    for pattern in (f"{prefix}:it:*", "it:*"):
        keys = list(admin.scan_iter(match=pattern, count=500))
        if keys:
            admin.delete(*keys)
    for client in made:
        client.close()


@pytest.fixture
def key(secure_stack: SecureStack) -> str:
    """A key under the stack's prefix that belongs to this test only."""
    return f"{secure_stack.policy.redis_prefix}:it:{uuid.uuid4().hex[:8]}"


def test_the_default_user_is_refused(secure_stack: SecureStack) -> None:
    anonymous = secure_stack.settings_for(READER).model_copy(
        update={"redis_username": None, "redis_password": None}
    )
    client = redis_client(anonymous)
    try:
        with pytest.raises(redis.AuthenticationError):
            client.ping()
    finally:
        client.close()


def test_a_plaintext_redis_client_gets_nothing(secure_stack: SecureStack) -> None:
    url = secure_stack.settings_for(ADMIN).redis_url.replace("rediss://", "redis://")
    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        with pytest.raises(redis.ConnectionError):
            client.ping()
    finally:
        client.close()


def test_a_wrong_redis_password_is_refused(secure_stack: SecureStack) -> None:
    wrong = secure_stack.settings_for(WORKER).model_copy(
        update={"redis_password": SecretStr("not-the-password")}
    )
    client = redis_client(wrong)
    try:
        with pytest.raises(redis.AuthenticationError):
            client.ping()
    finally:
        client.close()


def test_reader_reads_what_the_worker_wrote(
    redis_of: Callable[[str], redis.Redis], key: str
) -> None:
    redis_of(WORKER).hset(key, mapping={"open": "3"})
    reader = redis_of(READER)
    assert reader.hgetall(key) == {"open": "3"}
    pipe = reader.pipeline(transaction=True)  # the dashboard reads in MULTI/EXEC
    pipe.hgetall(key)
    pipe.exists(key)
    assert pipe.execute() == [{"open": "3"}, 1]


# redis-py raises NoPermissionError for a NOPERM reply (the prefix itself is stripped).
READER_WRITES: list[tuple[str, Callable[[redis.Redis, str], object]]] = [
    ("HSET", lambda c, k: c.hset(k, "open", "999")),
    ("DEL", lambda c, k: c.delete(k)),
    ("PUBLISH", lambda c, k: c.publish(k, "forged notice")),
    ("XADD", lambda c, k: c.xadd(f"{k}:log", {"alert": "forged"})),
    ("FLUSHDB", lambda c, k: c.flushdb()),
]


@pytest.mark.parametrize(("command", "write"), READER_WRITES, ids=[c for c, _ in READER_WRITES])
def test_reader_cannot_write(
    redis_of: Callable[[str], redis.Redis],
    key: str,
    command: str,
    write: Callable[[redis.Redis, str], object],
) -> None:
    redis_of(WORKER).hset(key, "open", "3")
    with pytest.raises(redis.exceptions.NoPermissionError, match=r"(?i)no permissions"):
        write(redis_of(READER), key)
    assert redis_of(ADMIN).hgetall(key) == {"open": "3"}


def test_reader_subscribes_to_the_update_channel(
    secure_stack: SecureStack, redis_of: Callable[[str], redis.Redis]
) -> None:
    channel = f"{secure_stack.policy.redis_prefix}:updates"
    pubsub = redis_of(READER).pubsub()
    try:
        pubsub.subscribe(channel)
        message = pubsub.get_message(timeout=5)
        assert message is not None and message["type"] == "subscribe"
    finally:
        pubsub.close()


def test_worker_writes_under_its_prefix(
    redis_of: Callable[[str], redis.Redis], key: str, secure_stack: SecureStack
) -> None:
    worker = redis_of(WORKER)
    pipe = worker.pipeline(transaction=True)  # the sink's flush: one MULTI/EXEC
    pipe.hset(key, mapping={"open": "1"})
    pipe.zadd(f"{key}:rank", {"SO-XD": 1})
    pipe.sadd(f"{key}:below", "SO-XD")
    pipe.xadd(f"{key}:log", {"alert": "{}"}, maxlen=100, approximate=True)
    pipe.delete(f"{key}:gone")
    pipe.execute()
    assert worker.publish(f"{secure_stack.policy.redis_prefix}:updates", "{}") >= 0
    assert redis_of(ADMIN).hgetall(key) == {"open": "1"}


@pytest.mark.parametrize(
    "write",
    [
        lambda c: c.hset("it:outside", "open", "1"),
        lambda c: c.publish("it:outside", "{}"),
        lambda c: c.flushdb(),
        lambda c: c.config_get("*"),
        lambda c: c.keys("*"),
    ],
    ids=["HSET-outside", "PUBLISH-outside", "FLUSHDB", "CONFIG", "KEYS"],
)
def test_worker_cannot_write_outside_its_prefix_or_administer(
    redis_of: Callable[[str], redis.Redis], write: Callable[[redis.Redis], object]
) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError, match=r"(?i)no permissions"):
        write(redis_of(WORKER))


# ---------------------------------------------------------------- files


def test_secrets_are_private_and_only_named_in_env_files(secure_stack: SecureStack) -> None:
    assert stat.S_IMODE(secure_stack.paths.stack.root.stat().st_mode) == 0o700
    secrets_dir = secure_stack.paths.secrets
    files = [p for p in secrets_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in [p for p in secrets_dir.rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    secrets = {
        p.read_text().strip()
        for p in files
        if p.suffix in (".password", ".key") and "tls" not in p.parts
    }
    for principal in secure_stack.principals:
        env_file = secure_stack.env_file(principal)
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        text = env_file.read_text()
        assert not [s for s in secrets if s in text], env_file
    logs = secure_stack.paths.stack.logs
    for log_file in logs.glob("*"):
        text = log_file.read_text(errors="replace")
        assert not [s for s in secrets if s in text], log_file
