"""The worker's figures process: restarted when it dies, and never outliving the worker.

A worker is two processes (stream_apps/figures_link.py). Killing its figures process
(SIGKILL, as the kernel's OOM killer would) must not lose a figure: the stage process
starts it again, /health says so meanwhile, and once the rest of the workload is in,
every figure in Redis equals the independent reference. Killing the stage process alone
(by its PID, not its process group) must take the figures process with it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

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
from tests.integration.workers import WorkerProcess, wait_for, worker_env
from tests.reference import reference_series, reference_snapshots


def gone(pid: int) -> bool:
    """No such process, or a zombie (dead, waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_a_killed_figures_process_is_restarted_and_loses_no_figure(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=2)
    lines = simulate(
        tmp_path / "workload.jsonl",
        *("--start", "2025-07-01", "--days", "20", "--seed", "41", "--scale", "0.01"),
    )
    events = events_of(lines)
    keys = [e.dossier_id.encode() for e in events]
    half = len(lines) // 2
    t = clock_of(events)
    want = expected_view(reference_snapshots(events, t), reference_series(events, t))
    env = worker_env(stack, names, tmp_path) | {"DOSSIER_CLOCK": "event"}
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        publish_raw(stack.kafka_bootstrap, names.events_topic, lines[:half], keys[:half])
        assert wait_for(
            lambda: meta(redis_client, names.redis_prefix).get("events_in") == str(half), 120
        ), worker.log_tail()
        first = worker.health()["figures_process"]
        assert first["ready"] and first["restarts"] == 0, first
        os.kill(first["pid"], signal.SIGKILL)
        assert wait_for(lambda: worker.health()["figures_process"]["restarts"] == 1, 60), (
            worker.log_tail()
        )
        restarted = worker.health()["figures_process"]
        assert restarted["pid"] != first["pid"]
        assert gone(first["pid"])
        publish_raw(stack.kafka_bootstrap, names.events_topic, lines[half:], keys[half:])
        got = wait_until_equal(lambda: contract_view(redis_client, names.redis_prefix), want, 120)
        assert got == want, view_difference(want, got)
        assert meta(redis_client, names.redis_prefix)["events_in"] == str(len(lines))
        health = worker.health()
        assert health["status"] == "ok" and health["figures_process"]["ready"], health
        log = worker.log_path.read_text(errors="replace")
        assert f"figures process {first['pid']} exited with code -9" in log
        assert "starting it again (restart 1)" in log
        assert worker.stop() == 0
        assert gone(restarted["pid"])  # stopped with the worker


def test_the_figures_process_dies_with_the_stage_process(
    stack, names, make_topics, tmp_path: Path
) -> None:
    make_topics(names, partitions=1)
    env = worker_env(stack, names, tmp_path)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        assert wait_for(lambda: worker.health()["figures_process"]["ready"], 60), worker.log_tail()
        figures_pid = worker.health()["figures_process"]["pid"]
        assert not gone(figures_pid)
        assert worker.proc is not None
        os.kill(worker.proc.pid, signal.SIGKILL)  # the stage process alone, not its group
        worker.proc.wait(10)
        deadline = time.monotonic() + 10
        while not gone(figures_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone(figures_pid), f"figures process {figures_pid} outlived its worker"
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.kill()
