"""Outages do not stop the worker: Redis stopped and restarted empty, the broker stopped.

While a simulated workload streams in, Redis is stopped for a while and started again
empty, then the broker is stopped for a while and started again. The worker process must
never exit, `/health` must say `degraded` and name the service during each outage, and in
the end every figure, ranking and count in Redis equals the independent reference.

CI runs short outages (DOSSIER_FAULT_OUTAGE_S, default 10 s) over about 10,000 events
(DOSSIER_FAULT_EVENTS). The full run, 60 s each over 100,000 events:
    make fault-test
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis

from dossier_stream import localstack
from tests.integration.pipeline import (
    Publisher,
    clock_of,
    contract_view,
    events_of,
    expected_view,
    meta,
    simulate,
    view_difference,
    wait_until_equal,
)
from tests.integration.workers import WorkerProcess, wait_for, worker_env
from tests.reference import reference_series, reference_snapshots

OUTAGE_S = float(os.environ.get("DOSSIER_FAULT_OUTAGE_S", "10"))
EVENTS = int(os.environ.get("DOSSIER_FAULT_EVENTS", "10000"))


@pytest.mark.serial  # stops the shared local Redis and broker
def test_the_worker_rides_out_a_redis_outage_and_a_broker_outage(
    stack, local_stack_settings, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    lines = simulate(
        tmp_path / "workload.jsonl",
        *("--start", "2025-07-01", "--days", "91", "--seed", "31"),
        *("--scale", f"{max(0.005, EVENTS / 1_470_000):.4f}"),
        *("--duplicates", "0.02", "--reorder", "0.02"),
    )
    events = events_of(lines)
    t = clock_of(events)
    want = expected_view(reference_snapshots(events, t), reference_series(events, t))
    # The workload streams in over both outages and the time around them; once both are
    # over, the rest is sent without pauses.
    publisher = Publisher(
        stack.kafka_bootstrap,
        names.events_topic,
        lines,
        [e.dossier_id.encode() for e in events],
        pace_s=3 * OUTAGE_S + 20,
        chunks=100,
    )
    env = worker_env(stack, names, tmp_path) | {"DOSSIER_CLOCK": "event"}
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    total = len(lines)
    seen: dict[str, list[str]] = {"redis": [], "kafka": []}

    def alive() -> bool:
        return worker.proc is not None and worker.proc.poll() is None

    def applied_so_far() -> int:
        # Before its partitions are assigned, the worker counts nothing yet: {}.
        return int(worker.health()["counts"].get("events_in", 0))

    def outage(service: localstack.ServiceName) -> None:
        localstack.down(local_stack_settings, [service])
        started = time.monotonic()
        while time.monotonic() - started < OUTAGE_S:
            assert alive(), f"the worker exited during the {service} outage:\n{worker.log_tail()}"
            health = worker.health()
            seen[service].append(health["status"] + ":" + ",".join(health["down"]))
            time.sleep(0.5)
        localstack.up(local_stack_settings, [service])
        assert wait_for(lambda: worker.health()["status"] == "ok", 120), worker.health()

    try:
        publisher.start()
        assert wait_for(lambda: applied_so_far() >= total // 5, 120), worker.log_tail()
        outage("redis")  # Redis comes back empty: it keeps nothing on disk
        assert wait_for(lambda: applied_so_far() >= total // 2 or publisher.sent == total, 180)
        outage("kafka")
        publisher.hurry()
        publisher.join(600)
        assert publisher.error is None, repr(publisher.error)
        assert wait_for(
            lambda: meta(redis_client, names.redis_prefix).get("events_in") == str(total), 240
        ), (meta(redis_client, names.redis_prefix), worker.log_tail())
        assert alive()
        got = wait_until_equal(lambda: contract_view(redis_client, names.redis_prefix), want, 90)
        assert got == want, view_difference(want, got)
        m = meta(redis_client, names.redis_prefix)
        distinct = len({(e.dossier_id, e.sequence) for e in events})
        assert (int(m["applied"]), int(m["duplicates"])) == (distinct, len(events) - distinct)
        assert (m["pending"], m["dead_lettered"]) == ("0", "0")
        for service, statuses in seen.items():
            assert f"degraded:{service}" in statuses, (service, statuses)
        print(f"{total} messages; health during the outages: {seen}")
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert "Crashed" not in log
        assert log.count("redis unreachable") >= 1 and log.count("redis is back") >= 1
        assert worker.stop() == 0
    finally:
        if alive():
            worker.stop()
