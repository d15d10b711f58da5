"""A year through real workers: closed, old dossiers leave memory and the changelog, and
every figure in Redis still equals the reference, through a SIGKILL and a restart.

The simulated year (city departments, 2025) is published first; a worker (event clock,
`DOSSIER_RETIRE_AFTER_DAYS` at its default of 40) is killed past half of it, when it has
retired months of dossiers, and a second one restores from the changelog (retired
groups included) and finishes.
"""

from __future__ import annotations

from pathlib import Path

import redis

from common.kafka_admin import read_topic
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


def test_after_a_year_closed_old_dossiers_are_gone_and_every_figure_is_exact(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    lines = simulate(
        tmp_path / "year.jsonl",
        *("--start", "2025-01-01", "--days", "365", "--scale", "0.006"),
        *("--no-communes", "--seed", "13"),
    )
    events = events_of(lines)
    keys: list[bytes | None] = [e.dossier_id.encode() for e in events]
    publish_raw(stack.kafka_bootstrap, names.events_topic, lines, keys)
    t = clock_of(events)
    want = expected_view(reference_snapshots(events, t), reference_series(events, t))
    dossiers = {e.dossier_id for e in events}
    total = len(lines)
    env = worker_env(stack, names, tmp_path) | {"DOSSIER_CLOCK": "event"}
    log = tmp_path / "worker.log"

    def progress() -> int:
        return int(meta(redis_client, names.redis_prefix).get("events_in", "0"))

    first = WorkerProcess(env, log).start()
    assert wait_for(lambda: progress() >= total * 0.6, 180), first.log_tail()
    first.kill()  # a crash, mid-year
    second = WorkerProcess(env, log).start(timeout_s=120)
    try:
        assert wait_for(lambda: progress() == total, 240), second.log_tail()
        got = wait_until_equal(lambda: contract_view(redis_client, names.redis_prefix), want, 90)
        assert got == want, view_difference(want, got)

        # Idle, the worker retires what its last sweeps put off until committed.
        def retired_enough() -> dict[str, int] | None:
            counts: dict[str, int] = second.health()["dossiers"]
            return counts if counts["retired"] > len(dossiers) * 0.75 else None

        held = wait_for(retired_enough, 30) or second.health()["dossiers"]
        assert held["held"] + held["retired"] == len(dossiers)
        assert held["retired"] > len(dossiers) * 0.75, held
        assert "closed dossiers retired" in log.read_text()
    finally:
        second.stop()
    # The changelog holds a record for the held dossiers only: the others are tombstoned.
    live: dict[bytes, bool] = {}
    for record in read_topic(stack.kafka_bootstrap, f"{names.group_id}-dossier-state"):
        if not record.key.startswith(b"\x00"):
            live[record.key] = record.value is not None
    assert sum(live.values()) == held["held"]
    assert len(live) == len(dossiers)  # ... and every dossier had one once
