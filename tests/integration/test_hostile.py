"""No input stops the worker: a hostile corpus sent into the live input topic mid-workload.

The corpus (tests/hostile.py) holds what real agency feeds and broken clients send:
undecodable bytes, JSON that is not an event, 1 MB values, invalid UTF-8, events that
break the contract, events dated in the future, the inputs that used to stop the worker
(a calendar date it could not judge, a supplement answered before it was asked), a gap
never filled, conflicting dossiers under one id, resends, transfers, misrouted keys.
The worker must never exit; every hostile message ends in the dead-letter topic with its
reason or is applied by its documented rule; the count identity holds throughout; and
every figure equals the independent reference over the clean workload plus the
messages that apply.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import redis

from domain.calendar import VN_TZ
from schemas.enums import Status
from schemas.serving import flagged_key, stuck_key
from tests import hostile
from tests.integration.pipeline import (
    RedisPoller,
    clock_of,
    contract_view,
    dead_letters,
    events_of,
    expected_view,
    header,
    meta,
    publish_raw,
    simulate,
    view_difference,
    wait_until_equal,
)
from tests.integration.workers import WorkerProcess, read_hash, wait_for, worker_env
from tests.reference import reference_series, reference_snapshots

COUNTS = ("applied", "duplicates", "pending", "dead_lettered")


class IdentityWatch(RedisPoller):
    """Reads the meta hash over and over; records every violation of the count identity."""

    interval_s = 0.02

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        super().__init__(client, prefix)
        self.samples = 0
        self.seen: set[str] = set()  # distinct events_in values: the watch saw the run go by
        self.violations: list[dict[str, str]] = []

    def poll(self) -> None:
        m = meta(self.client, self.prefix)
        if "events_in" in m:
            self.samples += 1
            self.seen.add(m["events_in"])
            if int(m["events_in"]) != sum(int(m[c]) for c in COUNTS):
                self.violations.append(m)


def test_a_hostile_corpus_never_stops_the_worker_and_every_message_is_accounted_for(
    stack, names, make_topics, redis_client: redis.Redis, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    lines = simulate(
        tmp_path / "workload.jsonl",
        *("--start", "2025-09-22", "--days", "14", "--scale", "0.05", "--seed", "12"),
        *("--duplicates", "0.02", "--reorder", "0.02"),
    )
    events = events_of(lines)
    half = len(lines) // 2
    # An anchor: a dossier returned to its applicant, every event of it in the first half.
    last_index: dict[str, int] = {}
    for i, e in enumerate(events):
        last_index[e.dossier_id] = i
    done = next(
        e
        for i, e in enumerate(events[:half])
        if e.status is Status.RETURNED and last_index[e.dossier_id] < half
    )
    at = datetime.fromtimestamp(clock_of(events[:half]), VN_TZ)
    corpus = hostile.corpus(hostile.Anchors(done, at), names.redis_prefix[-8:])
    kinds = {h.name for h in corpus}
    assert len(kinds) >= 30, len(kinds)

    counted = events + hostile.applied_events(corpus)
    t = clock_of(events)
    assert clock_of(counted) == t  # the corpus moves the event clock nowhere
    # The feed problems the rules leave behind, listed for the agency (all are SO-YTE's).
    flagged = {str(h.dossier_id): h.flags for h in corpus if h.flags}
    want = expected_view(
        reference_snapshots(counted, t),
        reference_series(counted, t),
        feeds={"flagged:SO-YTE": flagged},
    )

    keys = [e.dossier_id.encode() for e in events]
    env = worker_env(stack, names, tmp_path) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_GAP_TIMEOUT_S": "3600",
    }
    watch = IdentityWatch(redis_client, names.redis_prefix)
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        watch.start()
        total = len(lines) + len(corpus)

        def counted_up_to(n: int) -> bool:
            got = meta(redis_client, names.redis_prefix).get("events_in")
            return got == str(n) or worker.proc.poll() is not None  # type: ignore[union-attr]

        # Three phases, each waited for: the identity is read before, during and after the
        # corpus (the watch must see each phase's count).
        phases = [
            (lines[:half], keys[:half]),
            ([h.value for h in corpus], [h.key for h in corpus]),
            (lines[half:], keys[half:]),
        ]
        marks = [half, half + len(corpus), total]
        for (values, phase_keys), mark in zip(phases, marks, strict=True):
            publish_raw(stack.kafka_bootstrap, names.events_topic, values, phase_keys)
            settled = wait_for(lambda m=mark: counted_up_to(m), 180)
            assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
            assert settled, (mark, meta(redis_client, names.redis_prefix), worker.health())

        got = wait_until_equal(lambda: contract_view(redis_client, names.redis_prefix), want, 90)
        watch.stop.set()
        watch.join(5)
        assert got == want, view_difference(want, got)
        assert {str(m) for m in marks} <= watch.seen, watch.seen
        assert watch.violations == [], watch.violations

        # Every message is accounted for: the counts, then each dead letter and its reason.
        m = meta(redis_client, names.redis_prefix)
        dead = [h for h in corpus if h.fate == hostile.DEAD]
        distinct = len({(e.dossier_id, e.sequence) for e in events})
        applied_hostile = sum(h.fate == hostile.APPLIED for h in corpus)
        assert int(m["applied"]) == distinct + applied_hostile
        assert int(m["duplicates"]) == len(events) - distinct + 1
        assert (m["pending"], m["dead_lettered"]) == ("0", str(len(dead)))
        assert m["stuck_dossiers"] == "0"
        letters = dead_letters(stack.kafka_bootstrap, names.dead_letter_topic, len(dead))
        assert len(letters) == len(dead)
        unmatched = list(letters)
        for h in dead:
            match = next(
                (
                    r
                    for r in unmatched
                    if h.value.startswith(r.value or b"") and h.reason in header(r, "reason")
                ),
                None,
            )
            assert match is not None, f"{h.name}: no dead letter with {h.reason!r}"
            unmatched.remove(match)
        truncated = [r for r in letters if header(r, "truncated-from")]
        assert len(truncated) == 1 and int(header(truncated[0], "truncated-from")) > 10**6

        # Dossiers the rules applied to carry their flags, listed per agency; none is stuck.
        assert len(flagged) == 2
        assert read_hash(redis_client, flagged_key(names.redis_prefix, "SO-YTE")) == flagged
        assert read_hash(redis_client, stuck_key(names.redis_prefix, "SO-YTE")) == {}
        assert m["flagged_dossiers"] == "2"
        assert m["clock"] == datetime.fromtimestamp(t, UTC).isoformat()
        assert worker.stop() == 0
