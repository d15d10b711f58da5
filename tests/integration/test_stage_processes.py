"""A worker with two dossier stage processes: exact, through a killed stage process, and
never outliving the worker.

With `DOSSIER_STAGE_PROCESSES=2` a worker runs its dossier stage in two processes that
share the input partitions (stream_apps/stage_group.py). Killing the second (SIGKILL, as
the kernel's OOM killer would) must not lose or double a figure: its partitions move to
the first and back when the worker has started it again, /health counts the restart,
and once the rest of the workload is in, every figure in Redis equals the independent
reference. Killing the worker's first process alone must take the others with it.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import redis

from domain.calendar import VN_TZ
from tests.factories import event_doc
from tests.integration.pipeline import (
    clock_of,
    contract_view,
    events_of,
    expected_view,
    meta,
    publish_raw,
    simulate,
    view_difference,
    wait_until_equal,
)
from tests.integration.test_figures_process import gone
from tests.integration.workers import WorkerProcess, wait_for, worker_env
from tests.reference import reference_series, reference_snapshots

PARTITIONS = 4


def shared_out(health: dict[str, Any]) -> bool:
    """Both stage processes ready, each with a share, the shares all the partitions."""
    stages = health["stage_processes"]
    shares = [p["partitions"] for p in stages]
    return (
        len(stages) == 2
        and all(p["ready"] and p["partitions"] for p in stages)
        and sorted(p for share in shares for p in share) == list(range(PARTITIONS))
    )


def test_two_stage_processes_stay_exact_through_a_killed_one(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=PARTITIONS)
    lines = simulate(
        tmp_path / "workload.jsonl",
        *("--start", "2025-07-01", "--days", "20", "--seed", "43", "--scale", "0.01"),
    )
    # The last event, three days after the rest, is in one stage process's partitions:
    # the other's dossiers must be as of its time too (some of them overdue by then).
    late_at = datetime.fromtimestamp(clock_of(events_of(lines)) + 3 * 86400, VN_TZ)
    late = event_doc("submitted", at=late_at, dossier_id="HP-SO-YTE-2507-999999")
    lines.append(orjson.dumps(late))
    events = events_of(lines)
    keys = [e.dossier_id.encode() for e in events]
    half = len(lines) // 2
    t = clock_of(events)
    want = expected_view(reference_snapshots(events, t), reference_series(events, t))
    at_t, three_days_before = (
        reference_snapshots(events[:-1], now)["city"]["overdue_now"] for now in (t, t - 3 * 86400)
    )
    assert at_t != three_days_before, "the three days must change a figure, or this shows nothing"
    env = worker_env(stack, names, tmp_path) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_STAGE_PROCESSES": "2",
        "DOSSIER_SESSION_TIMEOUT_S": "6",
    }
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        assert wait_for(lambda: shared_out(worker.health()), 90), (
            worker.health(),
            worker.log_tail(),
        )
        publish_raw(stack.kafka_bootstrap, names.events_topic, lines[:half], keys[:half])
        assert wait_for(
            lambda: meta(redis_client, names.redis_prefix).get("events_in") == str(half), 120
        ), worker.log_tail()
        second = worker.health()["stage_processes"][1]
        assert second["restarts"] == 0 and second["pid"] != worker.proc.pid, second  # type: ignore[union-attr]
        os.kill(second["pid"], signal.SIGKILL)
        assert wait_for(lambda: worker.health()["stage_processes"][1]["restarts"] == 1, 60), (
            worker.log_tail()
        )
        assert gone(second["pid"])
        publish_raw(stack.kafka_bootstrap, names.events_topic, lines[half:], keys[half:])
        got = wait_until_equal(lambda: contract_view(redis_client, names.redis_prefix), want, 120)
        assert got == want, view_difference(want, got)
        assert meta(redis_client, names.redis_prefix)["events_in"] == str(len(lines))
        assert wait_for(lambda: shared_out(worker.health()), 60), worker.health()
        health = worker.health()
        assert health["status"] == "ok", health
        assert health["counts"]["events_in"] == len(lines), health["counts"]
        restarted = health["stage_processes"][1]["pid"]
        log = worker.log_path.read_text(errors="replace")
        assert f"stage process 2 {second['pid']} exited with code -9" in log
        assert "stage process 2: starting it again (restart 1)" in log
        assert worker.stop() == 0
        assert gone(restarted)  # stopped with the worker


def test_stage_processes_die_with_the_worker(stack, names, make_topics, tmp_path: Path) -> None:
    make_topics(names, partitions=2)
    env = worker_env(stack, names, tmp_path) | {"DOSSIER_STAGE_PROCESSES": "2"}
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        assert wait_for(lambda: worker.health()["stage_processes"][1]["pid"], 60), worker.log_tail()
        health = worker.health()
        children = [health["stage_processes"][1]["pid"], health["figures_process"]["pid"]]
        assert all(pid and not gone(pid) for pid in children), health
        assert worker.proc is not None
        os.kill(worker.proc.pid, signal.SIGKILL)  # the first process alone, not its group
        worker.proc.wait(10)
        deadline = time.monotonic() + 10
        while not all(gone(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(gone(pid) for pid in children), f"{children} outlived their worker"
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.kill()
