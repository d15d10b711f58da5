"""End to end on the real services: kafka-python publishes, a Faust worker process
consumes, and the per-agency figures are read back from Redis."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import redis
from kafka import KafkaProducer

from common.kafka_admin import read_topic
from producers.publisher import DossierPublisher
from schemas.registry import AgencyRegistry
from schemas.serving import UpdateNotice, WorkerMeta, meta_key, scope_key, updates_channel
from tests.factories import lifecycle
from tests.integration.workers import WorkerProcess, read_hash, wait_for, worker_env

AGENCIES = {"SO-YTE": "city", "CA-TP": "city", "10510": "commune"}


def test_events_flow_through_kafka_and_the_worker_into_redis(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names)
    registry = AgencyRegistry.default()
    expected_received = {"SO-YTE": 3, "CA-TP": 2, "10510": 1}
    events = []
    for code, count in expected_received.items():
        for i in range(count):
            agency = {"code": code, "level": AGENCIES[code]}
            events += lifecycle(f"E2E-{code}-{i}", steps=("accepted", "processing"), agency=agency)
    notices = redis_client.pubsub(ignore_subscribe_messages=True)
    notices.subscribe(updates_channel(names.redis_prefix))
    env = worker_env(stack, names, tmp_path) | {"DOSSIER_CLOCK": "event"}
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        with DossierPublisher(stack.kafka_bootstrap, names.events_topic, registry=registry) as pub:
            for ev in events:
                pub.publish(ev)
            pub.publish(events[0])  # a duplicate changes nothing
        raw = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
        raw.send(names.events_topic, key=b"broken", value=b'{"dossier_id": 1}').get(10)
        raw.close()

        def settled() -> dict[str, str] | None:
            meta = read_hash(redis_client, meta_key(names.redis_prefix))
            return meta if meta.get("events_in") == str(len(events) + 2) else None

        meta = wait_for(settled, timeout_s=90)
        assert meta, f"worker did not report every event:\n{worker.log_tail()}"
        assert WorkerMeta.model_validate(meta).clock_mode == "event"  # the read contract
        notice = wait_for(lambda: notices.get_message(timeout=1.0), timeout_s=10)
        assert notice, "no update notice was published"
        scopes = set(UpdateNotice.model_validate_json(notice["data"]).scopes)
        known = {"city", "level:city", "level:commune", "field:health"}
        assert scopes and scopes <= known | {f"agency:{code}" for code in AGENCIES}
        assert (meta["applied"], meta["duplicates"], meta["dead_lettered"]) == (
            str(len(events)),
            "1",
            "1",
        )
        for code, count in expected_received.items():
            figures = read_hash(redis_client, scope_key(names.redis_prefix, f"agency:{code}"))
            assert figures["ytd.received_total"] == str(count), code
            assert figures["ytd.received_online_full"] == str(count)
            assert figures["ytd.online_ratio"] == "1.000000"
            assert figures["open_now"] == str(count)
        city = read_hash(redis_client, scope_key(names.redis_prefix, "city"))
        assert city["ytd.received_total"] == str(sum(expected_received.values()))
        commune = read_hash(redis_client, scope_key(names.redis_prefix, "level:commune"))
        assert commune["ytd.received_total"] == "1"
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert f"dossier_events_in_total {float(len(events) + 2)}" in metrics
        assert "dossier_duplicates_total 1.0" in metrics
        assert 'dossier_consumer_lag{partition="0"} 0.0' in metrics
        assert f"dossier_open_dossiers {float(sum(expected_received.values()))}" in metrics
        assert "dossier_redis_flush_seconds_count" in metrics
        assert worker.stop() == 0, worker.log_tail()  # SIGTERM: a clean exit

    # The worker has stopped: its dead-letter topic is read to its end offsets.
    letters = read_topic(stack.kafka_bootstrap, names.dead_letter_topic)
    assert [m.value for m in letters] == [b'{"dossier_id": 1}']
    reason = dict(letters[0].headers)["reason"].decode()
    assert "dossier_id" in reason
