"""Alerts on the real services: an injected overdue spike opens one alert and clears it once.

The simulator makes most of one department's dossiers that fall due inside a 48-hour
window late (`--incident`). The rule (docs/alerts.md) must open exactly one
`overdue_spike` for that agency, stamped within one working day of the incident's start,
clear it exactly once after the incident ends, and alert no other agency of a spike. A
worker killed with SIGKILL halfway and started again must not store an alert twice.
A second worker replaying the same history at another cadence, never killed, must give
the same alerts: the same ids, kinds, scopes and event-time instants.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import redis

from common.kafka_admin import read_topic
from schemas.alerts import AlertEvent
from schemas.serving import alerts_log_key, alerts_open_key
from tests.integration.pipeline import contract_view, meta, publish_raw, simulate
from tests.integration.workers import WorkerProcess, wait_for, worker_env

INCIDENT_AGENCY = "SO-XD"
INCIDENT_START = datetime.fromisoformat("2025-09-24T08:00:00+07:00")
INCIDENT_HOURS = 48


def _log(client: redis.Redis, prefix: str) -> list[AlertEvent]:
    return [
        AlertEvent.model_validate_json(_field(fields, "alert"))
        for _id, fields in client.xrange(alerts_log_key(prefix))
    ]


def seen(alerts: list[AlertEvent]) -> set[tuple[str, str, str, str, datetime]]:
    return {(e.id, e.kind, e.scope, e.action, e.at) for e in alerts}


def _topic_events(bootstrap: str, topic: str) -> list[AlertEvent]:
    """Every alert event on the topic (read to its end offsets: its writers have stopped)."""
    return [AlertEvent.model_validate_json(r.value) for r in read_topic(bootstrap, topic)]


def test_an_injected_spike_opens_one_alert_and_clears_it_once_through_a_sigkill(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    lines = simulate(
        tmp_path / "workload.jsonl",
        "--start",
        "2025-09-01",
        "--days",
        "30",
        "--scale",
        "0.1",
        "--no-communes",
        "--seed",
        "5",
        "--incident",
        f"{INCIDENT_AGENCY}:{INCIDENT_START.isoformat()}:{INCIDENT_HOURS}",
    )
    keys = [json.loads(line)["dossier_id"].encode() for line in lines]
    publish_raw(stack.kafka_bootstrap, names.events_topic, lines, keys)
    env = worker_env(stack, names, tmp_path) | {
        "DOSSIER_CLOCK": "event",
        # Many rounds, each with the series: the rules are judged often, and the kill
        # lands mid-history.
        "DOSSIER_BATCH_MAX": "500",
        "DOSSIER_FLUSH_INTERVAL_S": "0.2",
        "DOSSIER_SERIES_INTERVAL_S": "0.2",
    }
    prefix = names.redis_prefix
    total = str(len(lines))
    # The replay: another consumer group and prefix (outside this prefix, which
    # contract_view reads whole), the default cadence, no kill. It reads the same topic
    # on its own, so it runs while the killed worker's successor takes over.
    replay_prefix = f"{prefix}-replay"
    replay_env = worker_env(stack, names, tmp_path / "replay") | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_APP_ID": f"{names.group_id}-replay",
        "DOSSIER_REDIS_PREFIX": replay_prefix,
        "DOSSIER_ALERTS_TOPIC": f"{names.group_id}-replay.alerts",
    }

    with WorkerProcess(env, tmp_path / "worker-1.log") as first:
        halfway = wait_for(
            lambda: int(meta(redis_client, prefix).get("events_in", "0")) > len(lines) // 2, 120
        )
        assert halfway, first.log_tail()
        first.kill()
    with (
        WorkerProcess(replay_env, tmp_path / "worker-replay.log") as replay,
        WorkerProcess(env, tmp_path / "worker-2.log") as second,
    ):
        done = wait_for(lambda: meta(redis_client, prefix).get("events_in") == total, 120)
        assert done, second.log_tail()
        spike = [e for e in _log(redis_client, prefix) if e.kind == "overdue_spike"]
        cleared = wait_for(
            lambda: any(
                e.kind == "overdue_spike" and e.agency == INCIDENT_AGENCY and not e.open
                for e in _log(redis_client, prefix)
            ),
            60,
        )
        assert cleared, second.log_tail()
        events = _log(redis_client, prefix)
        contract_view(redis_client, prefix)  # every alert key holds what the contract says
        assert second.stop() == 0

        done = wait_for(lambda: meta(redis_client, replay_prefix).get("events_in") == total, 120)
        assert done, replay.log_tail()
        wait_for(lambda: seen(_log(redis_client, replay_prefix)) == seen(events), 60)
        replayed = _log(redis_client, replay_prefix)
        assert replay.stop() == 0

    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)), "an alert is stored twice"
    spike = [e for e in events if e.kind == "overdue_spike" and e.agency is not None]
    assert {e.agency for e in spike} == {INCIDENT_AGENCY}, [(e.agency, e.at) for e in spike]
    opened = [e for e in spike if e.open]
    closed = [e for e in spike if not e.open]
    assert len(opened) == 1 and len(closed) == 1, [(e.action, e.at) for e in spike]
    (o,), (c,) = opened, closed
    assert o.incident_id == c.incident_id and o.opened_at == o.at == c.opened_at
    # Opened within a working day of the start (docs/alerts.md); cleared after the last
    # burst of late dossiers came into the window (00:00 of the incident's last day) and
    # within two working days of the incident's end.
    end = INCIDENT_START + timedelta(hours=INCIDENT_HOURS)
    assert INCIDENT_START <= o.at <= INCIDENT_START + timedelta(days=1), o.at
    last_burst = end.replace(hour=0, minute=0)
    assert last_burst < c.at <= end + timedelta(days=2), c.at
    assert o.figures["became_overdue"] >= o.baseline["open_level"]  # type: ignore[operator]
    assert redis_client.hget(alerts_open_key(prefix), o.incident_id) is None  # not open now
    # The topic has every stored event (a repeat after the crash carries the same id).
    on_topic = _topic_events(stack.kafka_bootstrap, f"{names.group_id}.alerts")
    assert {e.id for e in on_topic} == set(ids)

    # The replay gives the same alerts.
    assert seen(replayed) == seen(events), sorted(seen(replayed) ^ seen(events))
    assert {e.kind for e in events} >= {"overdue_spike"}


def _field(fields: dict, name: str) -> str:
    """A stream entry's field, whether the client decodes responses or not."""
    value = fields[name] if name in fields else fields[name.encode()]
    return value.decode() if isinstance(value, bytes) else str(value)
