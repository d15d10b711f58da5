"""Exact after crashes: SIGKILL the worker again and again, restart the broker, flush Redis.

Modelled on Kafka Streams' exactly-once system test: the worker is killed with SIGKILL
at random moments while a simulated workload (with duplicates and out-of-order events)
streams in; the broker is restarted once and Redis loses our keys once. At the end every
figure in Redis must equal the ground truth computed independently from the input:
nothing lost, nothing counted twice.

CI runs a shorter configuration. The full one (at least 200,000 events, five kills):
    make crash-test
which sets DOSSIER_CRASH_EVENTS=200000 DOSSIER_CRASH_KILLS=5.
"""

from __future__ import annotations

import os
import random
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

EVENTS = int(os.environ.get("DOSSIER_CRASH_EVENTS", "30000"))
KILLS = int(os.environ.get("DOSSIER_CRASH_KILLS", "3"))
SEED = int(os.environ.get("DOSSIER_CRASH_SEED", "20251"))


def _workload(tmp_path: Path) -> list[bytes]:
    # The default quarter is ~1.47 M events; scale it to about EVENTS.
    scale = max(0.005, EVENTS / 1_470_000)
    return simulate(
        tmp_path / "crash.jsonl",
        "--start",
        "2025-07-01",
        "--days",
        "91",
        "--scale",
        f"{scale:.4f}",
        "--seed",
        str(SEED),
        "--duplicates",
        "0.02",
        "--reorder",
        "0.02",
    )


@pytest.mark.serial  # restarts the shared local broker
def test_figures_stay_exact_through_kills_a_broker_restart_and_a_redis_flush(
    stack, local_stack_settings, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    rng = random.Random(SEED)
    lines = _workload(tmp_path)
    events = events_of(lines)
    assert len(events) >= EVENTS * 0.8
    t = clock_of(events)
    want = expected_view(reference_snapshots(events, t), reference_series(events, t))
    publisher = Publisher(
        stack.kafka_bootstrap,
        names.events_topic,
        lines,
        [e.dossier_id.encode() for e in events],
        pace_s=4.0,
    )
    env = worker_env(stack, names, tmp_path) | {"DOSSIER_CLOCK": "event"}
    log = tmp_path / "worker.log"
    worker = WorkerProcess(env, log).start()
    publisher.start()
    total = len(lines)

    def progress() -> int:
        return int(meta(redis_client, names.redis_prefix).get("events_in", "0"))

    # Kills, one broker restart and one Redis flush, at random points of the run; the
    # broker restart and the flush happen while the worker is running.
    actions = ["kill"] * KILLS + ["restart-broker", "flush-redis"]
    rng.shuffle(actions)
    points = sorted(rng.sample(range(total // 10, total * 9 // 10), len(actions)))
    kills = 0
    try:
        for action, point in zip(actions, points, strict=True):
            current = worker

            def reached(p: int = point, w: WorkerProcess = current) -> bool:
                return progress() >= p or (w.proc is not None and w.proc.poll() is not None)

            assert wait_for(reached, 180), f"no progress to {point}:\n{worker.log_tail()}"
            # A worker that exits by itself (a broker away, Redis flushed) fails the test.
            assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
            time.sleep(rng.uniform(0.0, 0.7))  # a random moment, mid-batch or mid-flush
            if action == "kill":
                worker.kill()
                kills += 1
                worker = WorkerProcess(env, log).start(timeout_s=120)
            elif action == "restart-broker":
                localstack.down(local_stack_settings, ["kafka"])
                localstack.up(local_stack_settings, ["kafka"])
            else:
                for key in redis_client.scan_iter(f"{names.redis_prefix}:*"):
                    redis_client.delete(key)
        publisher.join(300)
        assert publisher.error is None, repr(publisher.error)
        assert wait_for(lambda: progress() == total, 240), (
            f"events_in stuck at {progress()} of {total}:\n{worker.log_tail()}"
        )
        m = meta(redis_client, names.redis_prefix)
        distinct = len({(e.dossier_id, e.sequence) for e in events})
        assert (int(m["applied"]), int(m["duplicates"])) == (distinct, len(events) - distinct)
        assert (m["pending"], m["dead_lettered"]) == ("0", "0")

        got = wait_until_equal(lambda: contract_view(redis_client, names.redis_prefix), want, 90)
        assert got == want, view_difference(want, got)
        assert kills == KILLS
        assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
        print(f"{total} messages, {kills} kills, a broker restart and a Redis flush")
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.stop()
