"""End to end on the secured stack: only events vouched for by their agency count.

A real worker (its own process, principal `worker`, holding the signing master key)
reads the events topic of `services up --secure`. An agency with a Kafka principal of its
own publishes its events signed with its key; another agency posts its events to the
HTTP gateway (its own process, principal `gateway`, signing as `gateway`) with its API
token, after that token was refused (403, nothing in Kafka) for the first agency's event.
Then three forged records arrive: a valid signature of one agency on another agency's
event (claiming the sequence the real next event needs), a record with no signature,
and a signed record whose bytes were changed. The figures must equal the reference
computed from the genuine events alone, the forged records must be in the dead-letter
topic as `unauthenticated`, the dashboard must serve the figures with the read-only
Redis user, and no secret (passwords, keys, the API token) may appear in any log.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from common import kafka_admin
from common.connections import kafka_options, redis_client
from dossier_stream.securestack import ADMIN, GATEWAY, READER, WORKER, SecureStack
from producers.publisher import DossierPublisher
from schemas.events import DossierEvent
from schemas.serving import meta_key, scope_key
from schemas.signing import sign
from tests.cli import free_port
from tests.factories import event, lifecycle
from tests.integration.gateways import GatewayProcess, add_token
from tests.integration.pipeline import clock_of
from tests.integration.workers import WorkerProcess, read_hash, wait_for
from tests.reference import reference_snapshots

pytestmark = pytest.mark.integration

AGENCY = "SO-XD"  # has a Kafka principal of its own (DOSSIER_SECURE_AGENCIES)
OTHER = "SO-TC"  # publishes through the gateway
DIRECT = f"agency.{AGENCY}"
SCOPES = ("city", f"agency:{AGENCY}", f"agency:{OTHER}", "level:city")


def events_of(agency: str, dossiers: int) -> list[DossierEvent]:
    out: list[DossierEvent] = []
    for i in range(dossiers):
        out += lifecycle(
            f"HP-{agency}-SEC-{i:04d}",
            steps=("accepted", "processing", "resolved"),
            agency={"code": agency, "level": "city"},
        )
    return out


def raw_producer(stack: SecureStack, principal: str) -> KafkaProducer:
    return KafkaProducer(acks="all", **_client(stack, principal))


def _client(stack: SecureStack, principal: str) -> dict:  # type: ignore[type-arg]
    settings = stack.settings_for(principal)
    return {"bootstrap_servers": settings.kafka_bootstrap, **kafka_options(settings)}


@pytest.fixture
def fresh_topics(secure_stack: SecureStack) -> Iterator[SecureStack]:
    """The secured stack's events and dead-letter topics emptied, its figures removed."""
    admin = secure_stack.settings_for(ADMIN)
    topics = {admin.events_topic: 4, admin.dead_letter_topic: 1}
    options = kafka_options(admin)
    kafka_admin.delete_topics(admin.kafka_bootstrap, topics, options=options)
    kafka_admin.ensure_topics(admin.kafka_bootstrap, topics, options=options)
    client = redis_client(admin)
    for key in list(client.scan_iter(f"{admin.redis_prefix}:*", count=1000)):
        client.delete(key)
    client.close()
    yield secure_stack


def test_only_events_vouched_for_by_their_agency_count(
    fresh_topics: SecureStack, tmp_path: Path
) -> None:
    stack = fresh_topics
    worker_settings = stack.settings_for(WORKER)
    topic = worker_settings.events_topic
    own = events_of(AGENCY, 3)
    via_gateway = events_of(OTHER, 2)
    with DossierPublisher(
        worker_settings.kafka_bootstrap, topic, settings=stack.settings_for(DIRECT)
    ) as pub:
        for ev in own:
            pub.publish(ev)
    # The forgery: SO-XD's valid signature on the next event of an SO-TC dossier.
    # (A copy of the real sequence 2 of an SO-TC dossier, with its own event id.)
    forged_doc = orjson.loads(via_gateway[1].model_dump_json())
    forged_doc["event_id"] = str(uuid.uuid4())
    forged_value = orjson.dumps(forged_doc)
    with DossierPublisher(
        worker_settings.kafka_bootstrap, topic, settings=stack.settings_for(DIRECT)
    ) as pub:
        pub.send_validated(forged_value, via_gateway[1].dossier_id.encode())
    direct = raw_producer(stack, DIRECT)
    unsigned = event(  # the next event of an SO-XD dossier, with no signature
        "returned",
        dossier_id=own[0].dossier_id,
        sequence=4,
        at=own[2].occurred_at + timedelta(days=1),
        agency={"code": AGENCY, "level": "city"},
    )
    unsigned_value = unsigned.model_dump_json().encode()
    direct.send(topic, key=unsigned.dossier_id.encode(), value=unsigned_value).get(15)
    direct_key = stack.material.read(stack.material.signer_key_file(AGENCY))
    genuine_value = own[3].model_dump_json().encode()
    tampered_value = genuine_value.replace(b'"online"', b'"in_person"')
    assert tampered_value != genuine_value
    headers = sign(AGENCY, direct_key, genuine_value)
    direct.send(topic, key=own[3].dossier_id.encode(), value=tampered_value, headers=headers).get(
        15
    )
    direct.close()
    # SO-TC's system posts through the HTTP gateway, which logs in as `gateway` and signs.
    tokens_file = tmp_path / "tokens.json"
    token = add_token(tokens_file, OTHER)
    gateway_env = stack.env_for(GATEWAY) | {"DOSSIER_GATEWAY_TOKENS_FILE": str(tokens_file)}
    with GatewayProcess(gateway_env, tmp_path / "gateway.log") as gateway:
        before = _end_offsets(stack, topic)
        # SO-TC's token cannot publish SO-XD's events: 403, and nothing reaches Kafka.
        refused = _post(gateway.url, token, [via_gateway[0], own[0]])
        assert refused.status_code == 403, refused.text
        time.sleep(1.0)  # a late write would show by now
        assert _end_offsets(stack, topic) == before
        accepted = _post(gateway.url, token, via_gateway)
        assert accepted.status_code == 202, accepted.text
        assert _end_offsets(stack, topic) != before
    forged_count = 3
    total = len(own) + len(via_gateway) + forged_count

    env = stack.env_for(WORKER) | {
        "DOSSIER_APP_ID": f"{stack.policy.app_id}-t{uuid.uuid4().hex[:8]}",
        "DOSSIER_CLOCK": "event",
        "DOSSIER_DATA_DIR": str(tmp_path / "worker-data"),
    }
    reader = redis_client(stack.settings_for(READER), decode_responses=True)
    logs = [tmp_path / "worker.log", tmp_path / "dashboard.log", tmp_path / "gateway.log"]
    dashboard: subprocess.Popen[bytes] | None = None
    with WorkerProcess(env, logs[0]) as worker:
        prefix = worker_settings.redis_prefix
        meta = wait_for(
            lambda: (m := read_hash(reader, meta_key(prefix))).get("events_in") == str(total) and m,
            timeout_s=90,
        )
        assert meta, f"the worker did not count every event:\n{worker.log_tail()}"
        assert (meta["applied"], meta["dead_lettered"]) == (
            str(len(own) + len(via_gateway)),
            str(forged_count),
        )
        # The figures are those of the genuine events, as if the forgeries never came.
        genuine = own + via_gateway
        expected = reference_snapshots(genuine, clock_of(genuine))
        for scope in SCOPES:
            assert read_hash(reader, scope_key(prefix, scope)) == expected[scope], scope

        # The dashboard's API reads them with the read-only Redis user.
        port = free_port()
        with logs[1].open("ab") as out:
            dashboard = subprocess.Popen(
                [sys.executable, "-m", "dossier_stream.cli", "dashboard", "--port", str(port)],
                env=stack.env_for(READER) | _path_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            url = f"http://127.0.0.1:{port}/api/v1/scopes/agency:{OTHER}"
            body = wait_for(lambda: _get_json(url), timeout_s=30)
            assert body, logs[1].read_text()
            ytd = body["figures"]["windows"]["ytd"]
            assert ytd["received_total"] == int(expected[f"agency:{OTHER}"]["ytd.received_total"])
            assert ytd["received_total"] == 2  # the two dossiers sent through the gateway
        finally:
            dashboard.terminate()
            dashboard.wait(10)
        assert worker.stop() == 0, worker.log_tail()

    letters = _dead_letters(stack, forged_count)
    reasons = sorted(dict(r.headers)["reason"].decode() for r in letters)
    assert len(reasons) == forged_count, reasons
    assert all(r.startswith("unauthenticated: ") for r in reasons), reasons
    assert any(f"'{AGENCY}' may not publish for agency '{OTHER}'" in r for r in reasons)
    assert any("no ds-signer/ds-signature headers" in r for r in reasons)
    assert any("does not match" in r for r in reasons)

    # No secret in what this test's processes and the secured services wrote.
    secrets = [
        p.read_text().strip()
        for p in stack.paths.secrets.rglob("*")
        if p.is_file() and p.suffix in (".password", ".key") and "tls" not in p.parts
    ]
    assert len(secrets) >= 5, "no secret to look for"
    texts = [p.read_text(errors="replace") for p in logs if p.exists()]
    service_logs = stack.paths.stack.logs
    texts += [p.read_text(errors="replace") for p in service_logs.glob("*") if p.is_file()]
    secrets.append(token)
    leaked = [s[:4] + "…" for s in secrets if any(s in text for text in texts)]
    assert not leaked, f"secrets found in logs: {leaked}"
    reader.close()


def _post(url: str, token: str, events: list[DossierEvent]) -> httpx.Response:
    body = b"[" + b",".join(e.model_dump_json().encode() for e in events) + b"]"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return httpx.post(f"{url}/v1/events", content=body, headers=headers, timeout=30)


def _end_offsets(stack: SecureStack, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**_client(stack, ADMIN))
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def _path_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}


def _get_json(url: str) -> dict | None:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return dict(orjson.loads(response.read()))
    except OSError:
        return None


def _dead_letters(stack: SecureStack, expected: int) -> list:  # type: ignore[type-arg]
    admin = stack.settings_for(ADMIN)
    consumer = KafkaConsumer(
        admin.dead_letter_topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
        **_client(stack, ADMIN),
    )
    out: list = []  # type: ignore[type-arg]
    try:
        for _ in range(10):
            out.extend(consumer)
            if len(out) >= expected:
                break
    finally:
        consumer.close()
    return out


def test_a_client_without_credentials_cannot_reach_the_redis_figures(
    secure_stack: SecureStack,
) -> None:
    settings = secure_stack.settings_for(READER)
    anonymous = redis.Redis.from_url(
        settings.redis_url, ssl_ca_certs=str(settings.redis_ca_file), socket_timeout=3
    )
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        anonymous.get(f"{settings.redis_prefix}:meta")
    anonymous.close()
