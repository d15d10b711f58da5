"""The dossier store freezes the alert inputs of each hour before the event that passes it
applies (event clock), or when told the wall clock passed it (live); the frozen counts
survive the changelog and ignore later changes of the dossiers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.calendar import VN_TZ, WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from stream_apps.book import PartitionBook, new_partition_book
from stream_apps.store import PartitionStore, Verdict
from tests.factories import T0, event

CALENDAR = WorkingCalendar()
NOW = (T0 + timedelta(days=400)).timestamp()  # the wall clock: after every test event
HOUR = 3600


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN_TZ)


def ts(dt: datetime) -> int:
    return int(dt.timestamp())


# Dossier A: accepted Wed 1 Oct 2025 08:00 (T0) with the appointment (ngày hẹn trả) on
# Wed 8 Oct (T0 + 7 days). A day-limit dossier is on time through its whole appointment
# date: it falls due at 00:00 of the day after, Thu 9 Oct 2025 00:00 Vietnam time, and,
# still open then, became overdue in the hour bucket [00:00, 01:00) of 9 Oct.
DUE = ts(vn(2025, 10, 9))
NEAR = ts(vn(2025, 10, 8))  # near due (sắp trễ) from 00:00 of the appointment day
FROZEN_A = {"agency:SO-YTE": {DUE: 1}, "level:city": {DUE: 1}, "city": {DUE: 1}}
A_OPEN = [
    event("accepted", dossier_id="A"),
    event("processing", dossier_id="A", sequence=2, at=T0 + timedelta(days=1)),
]
COMMUNE = {"agency": {"code": "11311", "level": "commune"}}


def b_event(step: str, seq: int, at: datetime) -> Any:
    return event(
        step,
        dossier_id="B",
        sequence=seq,
        at=at,
        agency={"code": "CA-TP", "level": "city"},
        procedure={"code": "1.000001", "field": "justice"},
    )


def store(mode: str) -> PartitionStore:
    return PartitionStore(
        0, Lifecycle(calendar_resume(CALENDAR)), AgencyRegistry.default(), clock_mode=mode
    )


def book() -> PartitionBook:
    return new_partition_book(CALENDAR, second_supplement_late=True)


def run(s: PartitionStore, b: PartitionBook, events: list[Any], first: int = 0) -> None:
    for offset, ev in enumerate(events, start=first):
        verdict, letters = s.process(
            offset, ev.dossier_id.encode(), ev.model_dump_json().encode(), b, now=NOW
        )
        assert verdict is Verdict.APPLIED, letters


def test_event_clock_freezes_the_became_overdue_hour_when_an_event_passes_its_end() -> None:
    s, b = store("event"), book()
    run(s, b, A_OPEN)
    assert s.overdue.start == ts(vn(2025, 10, 1, 8))  # the first event's hour
    assert s.overdue.hours == {}
    # B's first event, 01:30 on 9 Oct, passes the end of A's became-overdue hour.
    run(s, b, [b_event("accepted", 1, vn(2025, 10, 9, 1, 30))], first=2)
    assert s.overdue.hours == FROZEN_A  # its agency, level and the city; never its field
    assert s.overdue.upto == ts(vn(2025, 10, 9, 1))
    assert s.overdue.unpublished == set(FROZEN_A)


def test_a_transfer_after_the_freeze_does_not_change_the_frozen_count() -> None:
    s, b = store("event"), book()
    run(s, b, [*A_OPEN, b_event("accepted", 1, vn(2025, 10, 9, 1, 30))])
    moved = event("transferred", dossier_id="A", sequence=3, at=vn(2025, 10, 9, 2, 30), **COMMUNE)
    run(s, b, [moved, b_event("processing", 2, vn(2025, 10, 9, 5, 10))], first=3)
    assert s.overdue.upto == ts(vn(2025, 10, 9, 5))
    # The figures now put A's became-overdue hour in the commune, as if it had always been
    # there; what the partition froze when the hour ended stays.
    assert b.overdue_between(DUE, DUE + HOUR) == {
        "agency:11311": {DUE: 1},
        "level:commune": {DUE: 1},
        "city": {DUE: 1},
    }
    assert s.overdue.hours == FROZEN_A


def test_a_late_resolution_dated_before_the_due_instant_does_not_change_the_frozen_count() -> None:
    s, b = store("event"), book()
    run(s, b, [*A_OPEN, b_event("accepted", 1, vn(2025, 10, 9, 1, 30))])
    # A desk reports late that A was resolved on 8 Oct 16:00: on time, never overdue.
    late = event("resolved", dossier_id="A", sequence=3, at=vn(2025, 10, 8, 16))
    run(s, b, [late, b_event("processing", 2, vn(2025, 10, 9, 3, 10))], first=3)
    assert b.overdue_between(DUE, DUE + HOUR) == {}
    assert s.overdue.hours == FROZEN_A
    assert s.overdue.upto == ts(vn(2025, 10, 9, 3))


def test_the_event_that_passes_the_hour_applies_after_the_freeze() -> None:
    """A's own transfer is the first event after 01:00: the hour is frozen as it was before
    the transfer (under SO-YTE), then the transfer applies."""
    s, b = store("event"), book()
    moved = event("transferred", dossier_id="A", sequence=3, at=vn(2025, 10, 9, 1, 30), **COMMUNE)
    run(s, b, [*A_OPEN, moved])
    assert s.overdue.hours == FROZEN_A
    assert "agency:11311" in b.scopes()  # the transfer did apply


def test_near_due_samples_are_taken_at_each_hour_end_before_the_event_applies() -> None:
    s, b = store("event"), book()
    run(s, b, [*A_OPEN, b_event("accepted", 1, vn(2025, 10, 9, 1, 30))])
    samples = s.overdue.take_samples()
    ends = range(ts(vn(2025, 10, 1, 9)), ts(vn(2025, 10, 9, 1)) + 1, HOUR)
    assert samples["agency:SO-YTE"] == {
        str(g): [1 if NEAR <= g < DUE else 0] for g in ends
    }  # A is near due from 00:00 of 8 Oct until it falls due
    assert set(samples) == {"agency:SO-YTE"}  # B's agency had no dossier before B's event


def test_the_frozen_hours_survive_the_changelog() -> None:
    s, b = store("event"), book()
    run(s, b, [*A_OPEN, b_event("accepted", 1, vn(2025, 10, 9, 1, 30))])
    restored = store("event")
    restored.restore(s.take_changes())
    assert restored.overdue.hours == FROZEN_A
    assert (restored.overdue.start, restored.overdue.upto) == (
        ts(vn(2025, 10, 1, 8)),
        ts(vn(2025, 10, 9, 1)),
    )
    assert set(restored.records) == {"A", "B"}


def test_live_mode_freezes_only_when_told_the_clock() -> None:
    s, b = store("live"), book()
    s.freeze_clock(ts(vn(2025, 10, 1, 8, 5)), b)  # the worker starts: the span starts
    assert (s.overdue.start, s.overdue.upto) == (ts(vn(2025, 10, 1, 8)), ts(vn(2025, 10, 1, 8)))
    run(s, b, [*A_OPEN, b_event("accepted", 1, vn(2025, 10, 9, 1, 30))])
    assert s.overdue.upto == ts(vn(2025, 10, 1, 8))  # events do not move the live history
    assert s.overdue.hours == {} and s.overdue.samples == {}
    s.freeze_clock(ts(vn(2025, 10, 9, 1, 30)), b)
    assert s.overdue.hours == FROZEN_A
    assert s.overdue.upto == ts(vn(2025, 10, 9, 1))
    assert set(s.overdue.take_samples()) == {"agency:SO-YTE", "agency:CA-TP"}
    s.freeze_clock(ts(vn(2025, 10, 9, 1, 59)), b)  # within the frozen hour: nothing to do
    assert s.overdue.upto == ts(vn(2025, 10, 9, 1)) and s.overdue.take_samples() == {}


def test_a_partition_read_far_ahead_of_its_own_clock_still_freezes_its_hours() -> None:
    s, b = store("event"), book()
    run(s, b, A_OPEN)
    # DossierStage.partials(t) with t = the stage's event clock (its fastest partition),
    # 45 days ahead of this one, as a replay that reads the partitions unevenly can be.
    b.snapshot("city", ts(vn(2025, 11, 15)))
    run(s, b, [b_event("accepted", 1, vn(2025, 10, 9, 1, 30))], first=2)
    assert s.overdue.hours == FROZEN_A
