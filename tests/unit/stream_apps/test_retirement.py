"""Closed, old dossiers leave the store; every figure and count stays what it was.

A simulated year runs through two stores checkpointed as the dossier stage does it: one
retires (`DOSSIER_RETIRE_AFTER_DAYS`, 40) and one never does. Their figures must be
equal at every month end, equal to the brute-force reference at the end, and survive a
restore from the changelog, including one cut short anywhere in a retiring batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from producers.simulator import SimulationConfig, WorkloadSimulator
from schemas.events import DossierEvent
from schemas.registry import AgencyRegistry
from stream_apps.book import PartitionBook, new_partition_book
from stream_apps.retirement import GROUP_PREFIX, RETIRABLE, Retirement
from stream_apps.settings import WorkerSettings
from stream_apps.store import PartitionStore, Verdict
from tests.reference import reference_series, reference_snapshots

CAL = WorkingCalendar()
REG = AgencyRegistry.default()
DAY = 86400
AFTER_DAYS = 40
NOW = datetime(2026, 6, 1, tzinfo=UTC).timestamp()  # the wall clock: after every event
CHECKPOINT_EVERY = 400  # messages between checkpoints


@functools.cache
def year() -> tuple[DossierEvent, ...]:
    config = SimulationConfig(start=date(2025, 1, 1), days=365, seed=3, scale=0.004, communes=False)
    sim = WorkloadSimulator(config, registry=REG, calendar=CAL)
    return tuple(ev.to_event(REG) for ev in sim.events())


def new_store(retire: bool) -> PartitionStore:
    return PartitionStore(
        0,
        Lifecycle(calendar_resume(CAL)),
        REG,
        clock_mode="event",
        alert_inputs=False,
        retirement=Retirement(AFTER_DAYS * DAY) if retire else None,
    )


def new_book() -> PartitionBook:
    return new_partition_book(CAL, second_supplement_late=True)


class Run:
    """A store and its book, fed messages and checkpointed as the dossier stage does:
    retire (below the last committed offset), write the changes, then commit."""

    def __init__(self, retire: bool) -> None:
        self.store, self.book = new_store(retire), new_book()
        self.changelog: list[tuple[bytes, bytes | None]] = []
        self.batches: list[tuple[int, int, int]] = []  # (changelog start, end, committed before)
        self.offset = self.committed = 0

    def feed(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        for key, value in messages:
            self.store.process(self.offset, key, value, self.book, now=NOW)
            self.offset += 1
            if self.offset % CHECKPOINT_EVERY == 0:
                self.checkpoint()

    def checkpoint(self) -> None:
        start = len(self.changelog)
        self.store.retire(self.committed, self.book)
        self.changelog += self.store.take_changes()
        self.batches.append((start, len(self.changelog), self.committed))
        self.committed = self.offset

    @property
    def clock(self) -> int:
        return int(self.store.meta.max_event_time)


def messages(events: Sequence[DossierEvent]) -> list[tuple[bytes, bytes]]:
    return [(ev.dossier_id.encode(), ev.model_dump_json().encode()) for ev in events]


def figures(book: PartitionBook, t: int) -> dict[str, object]:
    return {
        scope: (book.snapshot(scope, t).to_redis_hash(), book.series(scope, t).to_redis_hash())
        for scope in book.scopes()
    }


@functools.cache
def year_runs() -> tuple[Run, Run, list[int]]:
    """The year through a retiring and a never-retiring run; the month ends compared."""
    retiring, keeping = Run(retire=True), Run(retire=False)
    events = messages(year())
    month_ends: list[int] = []
    month = None
    for i in range(0, len(events), 100):
        chunk = events[i : i + 100]
        retiring.feed(chunk)
        keeping.feed(chunk)
        t = retiring.clock
        this_month = datetime.fromtimestamp(t, UTC).month
        if month is not None and this_month != month:
            month_ends.append(t)
            assert figures(retiring.book, t) == figures(keeping.book, t), t
        month = this_month
    retiring.checkpoint()
    keeping.checkpoint()
    return retiring, keeping, month_ends


def test_after_a_year_closed_old_dossiers_hold_no_record_and_no_figure_changed() -> None:
    retiring, keeping, month_ends = year_runs()  # equal at every month end (asserted there)
    assert len(month_ends) == 11
    t = retiring.clock
    assert figures(retiring.book, t) == figures(keeping.book, t)
    assert retiring.store.counts() == keeping.store.counts()
    held, retired = retiring.store.dossiers()
    dossiers = len(keeping.store.records)
    assert held + retired == dossiers
    assert retired > dossiers * 0.75  # all but the last weeks' and the open ones
    # No record left that a sweep should have taken: resolved or closed, unflagged, and
    # older than the horizon at the last sweep (a day before the clock at most).
    horizon = t - (AFTER_DAYS + 1) * DAY
    stale = [
        r.state.dossier_id
        for r in retiring.store.records.values()
        if r.state.status in RETIRABLE
        and not r.state.flags
        and r.state.last_at is not None
        and r.state.last_at.timestamp() < horizon
    ]
    assert stale == []
    # And the year's figures are the brute-force reference's.
    expected_snapshots = reference_snapshots(year(), t, now=int(NOW))
    expected_series = reference_series(year(), t, now=int(NOW))
    for scope in retiring.book.scopes():
        assert retiring.book.snapshot(scope, t).to_redis_hash() == expected_snapshots[scope]
        assert retiring.book.series(scope, t).to_redis_hash() == expected_series[scope]
    assert {"city", "agency:SO-XD"} <= set(retiring.book.scopes())


def restored(changelog: list[tuple[bytes, bytes | None]]) -> tuple[PartitionStore, PartitionBook]:
    store, book = new_store(retire=True), new_book()
    store.restore(changelog)
    clock = store.restored_clock(NOW)
    for _ in store.seeding(book, now=clock, keep_hours_from=None, step=1000):
        pass
    return store, book


def test_a_restore_after_retirement_gives_the_same_figures_counts_and_records() -> None:
    retiring, _, _ = year_runs()
    assert any(k.startswith(GROUP_PREFIX) for k, _ in retiring.changelog)
    store, book = restored(retiring.changelog)
    t = retiring.clock
    assert figures(book, t) == figures(retiring.book, t)
    assert store.counts() == retiring.store.counts()
    assert store.dossiers() == retiring.store.dossiers()
    assert set(store.records) == set(retiring.store.records)
    assert store.take_changes()[:-1] == []  # nothing left over to write but the meta


def retiring_batch(run: Run) -> tuple[int, int, int]:
    """The first checkpoint batch that retired dossiers: (start, end, committed before)."""
    for start, end, committed in run.batches:
        keys = [k for k, _ in run.changelog[start:end]]
        if any(k.startswith(GROUP_PREFIX) for k in keys) and keys.count(None) == 0:
            tombstones = sum(1 for _, v in run.changelog[start:end] if v is None)
            if tombstones >= 4:
                return start, end, committed
    raise AssertionError("no checkpoint retired dossiers")


@pytest.mark.parametrize("cut", ["before the group", "after the group", "mid tombstones", "all"])
def test_a_crash_anywhere_in_a_retiring_checkpoint_changes_no_final_figure(cut: str) -> None:
    retiring, _, _ = year_runs()
    start, end, committed = retiring_batch(retiring)
    batch = retiring.changelog[start:end]
    group_at = next(i for i, (k, _) in enumerate(batch) if k.startswith(GROUP_PREFIX))
    tombstones = [i for i, (_, v) in enumerate(batch) if v is None]
    at = {
        "before the group": group_at,
        "after the group": group_at + 1,
        "mid tombstones": tombstones[len(tombstones) // 2],
        "all": len(batch),
    }[cut]
    # The worker dies after writing a prefix of the batch and before its commit: the
    # next one restores that and reads the input again from the last commit.
    store, book = restored(retiring.changelog[: start + at])
    rerun = Run(retire=True)
    rerun.store, rerun.book = store, book
    rerun.offset = rerun.committed = committed
    rerun.feed(messages(year())[committed:])
    rerun.checkpoint()
    t = retiring.clock
    assert figures(rerun.book, t) == figures(retiring.book, t)
    assert rerun.store.counts() == retiring.store.counts()
    assert rerun.store.dossiers() == retiring.store.dossiers()
    again, again_book = restored(
        rerun.changelog and retiring.changelog[: start + at] + rerun.changelog
    )
    assert figures(again_book, t) == figures(retiring.book, t)
    assert again.counts() == retiring.store.counts()


def test_a_copy_of_a_retired_dossiers_event_is_dead_lettered_as_late() -> None:
    retiring, _, _ = year_runs()
    store, book = restored(retiring.changelog)
    held = set(store.records)
    first = next(ev for ev in year() if ev.dossier_id not in held and ev.event_type == "accepted")
    t = retiring.clock
    before, counts = figures(book, t), store.counts()
    verdict, letters = store.process(
        10**9, first.dossier_id.encode(), first.model_dump_json().encode(), book, now=NOW
    )
    assert verdict is Verdict.DEAD_LETTER
    assert letters[0].reason.startswith(f"late: dossier '{first.dossier_id}' is not held")
    assert figures(book, t) == before
    after = store.counts()
    assert after["dead_lettered"] == counts["dead_lettered"] + 1
    assert after["events_in"] == counts["events_in"] + 1
    assert first.dossier_id not in store.records
    # A new dossier dated after the retired ones still applies: the year's last receipt,
    # under another id.
    last = next(ev for ev in reversed(year()) if ev.event_type == "accepted" and ev.sequence == 1)
    assert last.occurred_at.timestamp() > store.retirement.through  # type: ignore[union-attr]
    fresh = last.model_copy(update={"dossier_id": "NEW-1"}).model_dump_json().encode()
    verdict, _ = store.process(10**9 + 1, b"NEW-1", fresh, book, now=NOW)
    assert verdict is Verdict.APPLIED
    assert book.snapshot("city", t).open_now == retiring.book.snapshot("city", t).open_now + 1


def test_retiring_sooner_than_the_hour_buckets_reach_is_refused() -> None:
    with pytest.raises(ValueError, match="no sooner than 34 days"):
        Retirement(33 * DAY)
    with pytest.raises(ValidationError, match="retire_after_days"):
        WorkerSettings(retire_after_days=20)
    assert WorkerSettings(retire_after_days=0).retire_after_days == 0
    assert WorkerSettings().retire_after_days == AFTER_DAYS


def test_a_dossier_is_retired_only_once_its_last_message_is_committed() -> None:
    # A quarter old closed dossier arrives late, after a recent one moved the clock: its
    # messages are not committed yet, so after a crash they would be read again.
    events = year()
    closed = [ev for ev in events if ev.dossier_id == events[0].dossier_id]
    assert closed[-1].event_type in ("returned", "refused", "withdrawn", "stopped")
    recent = next(ev for ev in events if ev.occurred_at.month == 6 and ev.sequence == 1)
    run = Run(retire=True)
    run.feed(messages([recent, *closed]))
    assert run.committed == 0  # no checkpoint yet
    assert run.store.retire(run.committed, run.book) == 0
    assert events[0].dossier_id in run.store.records
    run.checkpoint()  # commits every message read
    run.store.retirement.swept_day = -1  # type: ignore[union-attr]  # a day later
    assert run.store.retire(run.committed, run.book) == 1
    assert events[0].dossier_id not in run.store.records
