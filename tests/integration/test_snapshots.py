"""Snapshot consistency: every read of Redis is as of one input position, its watermark.

While a worker applies a backlog, a reader takes snapshots of Redis over and over, each
in one transaction: `ds:v1:meta` (its `offsets` watermark and counts) with every scope
hash. Every snapshot's figures must equal the reference computed over exactly the input
messages before its watermark, at the clock it states; its counts must count exactly
those messages. Nothing here depends on timing: however fast or slow the worker, each
snapshot it lets a reader see must be whole. With two stage processes too: they cut their
rounds together, at one clock (`stream_apps.joint_rounds`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pytest
import redis
from kafka import KafkaProducer

from schemas.serving import meta_key, scope_key
from tests.integration.pipeline import (
    RedisPoller,
    clock_of,
    events_of,
    first_difference,
    simulate,
)
from tests.integration.workers import WorkerProcess, wait_for, worker_env
from tests.reference import reference_snapshots

Snapshot = tuple[dict[str, str], dict[str, dict[str, str]]]


def _decode(raw: dict) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }


class Reader(RedisPoller):
    """Reads meta and every scope in one transaction, again and again, keeping each new one."""

    def __init__(self, client: redis.Redis, prefix: str, scopes: list[str]) -> None:
        super().__init__(client, prefix)
        self.scopes = scopes
        self.snapshots: dict[str, list[Snapshot]] = {}  # watermark -> each distinct read
        self.reads = 0

    def poll(self) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(meta_key(self.prefix))
        for scope in self.scopes:
            pipe.hgetall(scope_key(self.prefix, scope))
        meta, *hashes = pipe.execute()
        self.reads += 1
        meta = _decode(meta)
        mark = meta.get("offsets")
        if not mark:
            return
        figures = {s: _decode(h) for s, h in zip(self.scopes, hashes, strict=True) if h}
        seen = self.snapshots.setdefault(mark, [])
        if all(figures != other for _, other in seen):
            seen.append((meta, figures))


@pytest.mark.parametrize("stage_processes", [1, 2])
def test_every_snapshot_read_in_one_transaction_is_exact_at_its_watermark(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path, stage_processes: int
) -> None:
    make_topics(names, partitions=4)
    lines = simulate(
        tmp_path / "workload.jsonl",
        *("--start", "2025-07-01", "--days", "60", "--scale", "0.015", "--seed", "21"),
        *("--duplicates", "0.02"),
    )
    events = events_of(lines)
    # Publish first, keeping where each message landed: the watermark names offsets.
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all", linger_ms=20)
    futures = [
        producer.send(names.events_topic, key=e.dossier_id.encode(), value=line)
        for e, line in zip(events, lines, strict=True)
    ]
    producer.flush(60)
    producer.close()
    placed = [(f.get(0).partition, f.get(0).offset) for f in futures]
    final = reference_snapshots(events, clock_of(events))
    scopes = sorted(final)

    reader = Reader(redis_client, names.redis_prefix, scopes)
    reader.start()
    # Rounds cut often and small batches: many watermarks while the backlog lasts.
    env = worker_env(stack, names, tmp_path) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_FLUSH_INTERVAL_S": "0.1",
        "DOSSIER_BATCH_MAX": "500",
        "DOSSIER_STAGE_PROCESSES": str(stage_processes),
    }
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        done = wait_for(
            lambda: redis_client.hget(meta_key(names.redis_prefix), "events_in") == str(len(lines)),
            180,
        )
        assert done, worker.log_tail()
        assert wait_for(lambda: len(reader.snapshots) >= 1, 10)
        reader.stop.set()
        reader.join(10)
        assert worker.stop() == 0

    # Check snapshots spread over the run (each check is a reference computation).
    marks = list(reader.snapshots)
    assert len(marks) >= 3, f"only {len(marks)} watermark(s) seen"
    step = max(1, len(marks) // 8)
    checked = 0
    for mark in [*marks[::step], marks[-1]]:
        # Every distinct read at this watermark must be the same, exact, snapshot.
        assert len(reader.snapshots[mark]) == 1, f"{mark}: different figures at one watermark"
        meta, figures = reader.snapshots[mark][0]
        offsets = {int(p): o for p, o in orjson.loads(mark).items()}
        covered = [e for e, (p, o) in zip(events, placed, strict=True) if o < offsets.get(p, 0)]
        assert int(meta["events_in"]) == len(covered), (mark, meta)
        if not covered:
            continue
        t = int(datetime.fromisoformat(meta["clock"]).timestamp())
        assert t == clock_of(covered), (mark, meta["clock"])
        expected = reference_snapshots(covered, t)
        got = {
            s: f
            for s, f in figures.items()
            if s in expected or any(v not in ("0", "") for v in f.values())
        }
        assert got == expected, f"watermark {mark}: {first_difference(expected, got)}"
        checked += 1
    assert checked >= 3
    assert all(len(v) == 1 for v in reader.snapshots.values()), "one watermark, two figures"
    print(
        f"{reader.reads} reads, {len(marks)} watermarks seen, "
        f"{checked} checked against the reference"
    )
