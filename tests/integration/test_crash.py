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
import threading
import time
from pathlib import Path

import redis
from kafka import KafkaProducer

from dossier_stream import localstack
from tests.integration.pipeline import (
    clock_of,
    events_of,
    first_difference,
    meta,
    redis_figures,
    simulate,
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


class Publisher(threading.Thread):
    """Streams the workload in while the worker is being killed; survives a broker restart."""

    def __init__(self, bootstrap: str, topic: str, lines: list[bytes], keys: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.lines, self.keys = bootstrap, topic, lines, keys
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                linger_ms=20,
                batch_size=256 * 1024,
                delivery_timeout_ms=180_000,
                max_block_ms=120_000,
            )
            chunk = max(1000, len(self.lines) // 40)
            for start in range(0, len(self.lines), chunk):
                for key, line in zip(
                    self.keys[start : start + chunk], self.lines[start : start + chunk], strict=True
                ):
                    producer.send(self.topic, key=key, value=line)
                producer.flush(180)
                time.sleep(0.1)
            producer.close()
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_figures_stay_exact_through_kills_a_broker_restart_and_a_redis_flush(
    stack, local_stack_settings, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    rng = random.Random(SEED)
    lines = _workload(tmp_path)
    events = events_of(lines)
    assert len(events) >= EVENTS * 0.8
    t = clock_of(events)
    expected = reference_snapshots(events, t)
    expected_series = reference_series(events, t)
    publisher = Publisher(
        stack.kafka_bootstrap, names.events_topic, lines, [e.dossier_id.encode() for e in events]
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
    restarts_after_exit = 0
    try:
        for action, point in zip(actions, points, strict=True):
            current = worker

            def reached(p: int = point, w: WorkerProcess = current) -> bool:
                return progress() >= p or (w.proc is not None and w.proc.poll() is not None)

            assert wait_for(reached, 180), f"no progress to {point}:\n{worker.log_tail()}"
            if worker.proc is not None and worker.proc.poll() is not None:
                restarts_after_exit += 1  # it died by itself (e.g. broker away): restart it
                worker = WorkerProcess(env, log).start(timeout_s=120)
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

        def read() -> tuple[dict, dict]:
            return redis_figures(redis_client, names.redis_prefix, sorted(expected))

        got, got_series = wait_until_equal(read, (expected, expected_series), 90)
        assert got == expected, first_difference(expected, got)
        assert got_series == expected_series, first_difference(expected_series, got_series)
        assert kills == KILLS
        print(f"{total} messages, {kills} kills, {restarts_after_exit} restart(s) after an exit")
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.stop()
