"""Every Redis figure equals the ground truth computed independently from the same events.

The workload comes from the simulator with duplicates and out-of-order events mixed in,
plus undecodable messages; supplement pauses, late resolutions and dossiers that become
overdue with no event of their own (their due instant passes before the clock) are part
of it. The simulator's own truth (producers/truth.py, producers/simulator.py) computes its
deadlines with the worker's calendar, domain.calendar.WorkingCalendar, so it is not the
judge here: the truth comes from tests/reference.py, which imports nothing from domain/,
stream_apps/ or producers/ and states the calendar, lifecycle and figure rules itself.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from common import native
from common.kafka_admin import read_topic
from producers.publisher import DossierPublisher
from tests.factories import event
from tests.integration.pipeline import (
    clock_of,
    contract_view,
    events_of,
    expected_view,
    first_difference,
    meta,
    publish_raw,
    redis_figures,
    simulate,
    view_difference,
    wait_until_equal,
)
from tests.integration.workers import WorkerProcess, wait_for, worker_env
from tests.reference import reference_series, reference_snapshots

PARTITIONS_SHARED = 16
GARBAGE = [b"not json at all", b'{"dossier_id": "X", "sequence": "one"}']


def _scopes(expected: dict) -> list[str]:
    return sorted(expected)


def test_replayed_workload_gives_exactly_the_reference_figures(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    lines = simulate(
        tmp_path / "workload.jsonl",
        "--start",
        "2025-09-22",
        "--days",
        "14",
        "--scale",
        "0.05",
        "--seed",
        "11",
        "--duplicates",
        "0.03",
        "--reorder",
        "0.03",
    )
    events = events_of(lines)
    assert len(events) > 2000
    assert len({e.event_id for e in events}) < len(events)  # duplicates are really there
    t = clock_of(events)
    expected = reference_snapshots(events, t)
    expected_series = reference_series(events, t)
    assert int(expected["city"]["became_overdue" if False else "qtd.became_overdue"]) > 0
    keys = [e.dossier_id.encode() for e in events] + [b"garbage"] * len(GARBAGE)
    publish_raw(stack.kafka_bootstrap, names.events_topic, lines + GARBAGE, keys)

    env = worker_env(stack, names, tmp_path) | {"DOSSIER_CLOCK": "event"}
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        # The compiled core runs exactly when a build of these sources exists (`make test`
        # makes one), so this test judges what a deployed worker runs.
        health = worker.health()
        assert health["native"] is (native.built() is not None), worker.log_tail()
        build = native.built()
        rust = build is not None and native.RUST_MODULE in native.compiled_files(build)
        assert health["figure_book"] == ("rust" if rust else "python"), worker.log_tail()
        total = str(len(lines) + len(GARBAGE))
        settled = wait_for(
            lambda: meta(redis_client, names.redis_prefix).get("events_in") == total, 120
        )
        assert settled, worker.log_tail()
        m = meta(redis_client, names.redis_prefix)
        distinct = len({(e.dossier_id, e.sequence) for e in events})
        assert int(m["applied"]) == distinct
        assert int(m["duplicates"]) == len(events) - distinct
        assert (m["pending"], m["dead_lettered"]) == ("0", str(len(GARBAGE)))
        assert m["clock"] == datetime.fromtimestamp(t, UTC).isoformat()

        want = expected_view(expected, expected_series)
        got = wait_until_equal(lambda: contract_view(redis_client, names.redis_prefix), want, 60)
        assert got == want, view_difference(want, got)
        assert worker.stop() == 0


def test_live_clock_turns_a_dossier_overdue_with_no_new_event(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=2)
    now = datetime.now(UTC).replace(microsecond=0)
    due = now + timedelta(seconds=20)
    accepted = event(
        "accepted",
        dossier_id="LIVE-TIMER-1",
        at=now - timedelta(minutes=1),
        time_limit={"value": 1, "unit": "hours"},
        appointment_at=due.isoformat(),
    )
    env = worker_env(stack, names, tmp_path)  # live clock
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        with DossierPublisher(stack.kafka_bootstrap, names.events_topic) as pub:
            pub.publish(accepted)

        def city() -> dict[str, str]:
            return redis_figures(redis_client, names.redis_prefix, ["city"])[0]["city"]

        first = wait_for(lambda: city().get("open_now") == "1" and city(), 15)
        assert first, worker.log_tail()
        # Judged against the wall clock: before the due instant it is not overdue...
        assert time.time() < due.timestamp(), "the dossier reached Redis only after its due"
        assert first["overdue_now"] == "0" and first["1h.became_overdue"] == "0"
        later = wait_for(lambda: city().get("overdue_now") == "1" and city(), 40)
        # ...and it turns overdue at the due instant, within a flush or two, with no event.
        turned = time.time()
        assert later, f"no overdue transition without an event:\n{worker.log_tail()}"
        assert due.timestamp() <= turned <= due.timestamp() + 5, turned - due.timestamp()
        assert later["1h.became_overdue"] == "1"
        assert later["not_yet_due_now"] == "0"
        assert meta(redis_client, names.redis_prefix)["events_in"] == "1"
        assert worker.stop() == 0


def test_two_workers_sharing_the_partitions_give_the_exact_figures(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Per-agency figures add up from dossiers spread over every partition: with two
    # workers each owning 8 of 16 partitions, the figures stage still merges them
    # exactly, and no partials message comes near the broker's 1 MiB limit.
    make_topics(names, partitions=PARTITIONS_SHARED)
    lines = simulate(
        tmp_path / "workload.jsonl",
        "--start",
        "2025-10-06",
        "--days",
        "7",
        "--scale",
        "0.04",
        "--seed",
        "5",
    )
    events = events_of(lines)
    t = clock_of(events)
    expected = reference_snapshots(events, t)
    env = worker_env(stack, names, tmp_path) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_PARTITIONS": str(PARTITIONS_SHARED),
    }
    first = WorkerProcess(env, tmp_path / "w1.log").start()
    second = WorkerProcess(env, tmp_path / "w2.log").start()
    try:

        def health(w: WorkerProcess) -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{w.port}/health", timeout=2) as r:
                return json.loads(r.read())

        def split() -> bool:
            half = PARTITIONS_SHARED // 2
            return all(len(health(w)["partitions"]) == half for w in (first, second))

        assert wait_for(split, 60), first.log_tail() + second.log_tail()
        publish_raw(
            stack.kafka_bootstrap,
            names.events_topic,
            lines,
            [e.dossier_id.encode() for e in events],
        )
        total = str(len(lines))
        settled = wait_for(
            lambda: meta(redis_client, names.redis_prefix).get("events_in") == total, 120
        )
        assert settled, (
            f"expected {total}: meta {meta(redis_client, names.redis_prefix)}, "
            f"health {[health(w) for w in (first, second)]}"
        )

        want = expected_view(expected, reference_series(events, t))
        got = wait_until_equal(lambda: contract_view(redis_client, names.redis_prefix), want, 60)
        assert got == want, view_difference(want, got)
        partials = f"{names.group_id}-partials"
        sizes = [len(r.value or b"") for r in read_topic(stack.kafka_bootstrap, partials)]
        assert sizes and max(sizes) < 768 * 1024, max(sizes)  # the broker's limit is 1 MiB
    finally:
        assert first.stop() == 0
        assert second.stop() == 0


def test_live_and_replay_clocks_both_give_the_reference_figures_at_their_clock(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # History that ends today: a live worker shows it as of the wall clock, a replaying
    # worker as of the last event. Both are the same function of (dossier states, clock),
    # so a replay shows what the live run showed at that moment.
    make_topics(names, partitions=4)
    lines = simulate(tmp_path / "recent.jsonl", "--days", "7", "--scale", "0.03", "--seed", "9")
    events = events_of(lines)
    publish_raw(
        stack.kafka_bootstrap, names.events_topic, lines, [e.dossier_id.encode() for e in events]
    )
    live_prefix, replay_prefix = names.redis_prefix + ":live", names.redis_prefix + ":replay"
    base = worker_env(stack, names, tmp_path)
    live_env = base | {
        "DOSSIER_REDIS_PREFIX": live_prefix,
        "DOSSIER_APP_ID": names.group_id + "-live",
    }
    replay_env = base | {
        "DOSSIER_REDIS_PREFIX": replay_prefix,
        "DOSSIER_APP_ID": names.group_id + "-replay",
        "DOSSIER_CLOCK": "event",
    }
    total = str(len(lines))
    with (
        WorkerProcess(live_env, tmp_path / "live.log") as live,
        WorkerProcess(replay_env, tmp_path / "replay.log") as replay,
    ):
        for prefix, worker in ((live_prefix, live), (replay_prefix, replay)):
            done = wait_for(lambda p=prefix: meta(redis_client, p).get("events_in") == total, 120)
            assert done, worker.log_tail()
        assert (
            meta(redis_client, replay_prefix)["clock"]
            == datetime.fromtimestamp(clock_of(events), UTC).isoformat()
        )
        # Replay: as of the last event.
        t = clock_of(events)
        expected = reference_snapshots(events, t)
        got = redis_figures(redis_client, replay_prefix, sorted(expected))[0]
        assert got == expected, f"replay: {first_difference(expected, got)}"
        # Live: as of the wall clock. The figures read between two wall-clock readings must
        # be the reference's at one of those seconds (less a flush interval or two).
        matched = False
        for _attempt in range(3):
            wall0 = int(time.time())
            got = redis_figures(redis_client, live_prefix, sorted(expected))[0]
            wall1 = int(time.time())
            for second in range(wall1, wall0 - 3, -1):
                if got == reference_snapshots(events, second):
                    matched = True
                    break
            if matched:
                break
        assert matched, "live figures equal the reference at no second around the wall clock"
