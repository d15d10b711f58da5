"""The tests' truth, tests/reference.py, checked against cases worked out by hand.

Every expected value below is written out literally, reasoned from the rules (the
reference's docstring) and Vietnam's real 2025 calendar:

- Wed 1 Jan 2025 New Year's Day.
- Tết: Mon 27 Jan - Sat 1 Feb 2025 holidays, so Sat 25 Jan - Sun 2 Feb off; Fri 24 Jan
  is the last working day before it and Mon 3 Feb the first after.
- Mon 7 Apr 2025 Hùng Kings' day.
- Sat 26 Apr 2025 a working Saturday, swapped for Fri 2 May: 30 Apr (Wed) - 4 May (Sun)
  off.
- National Day: Mon 1 and Tue 2 Sep 2025 (both in the library; the override table is
  empty), so Sat 30 Aug - Tue 2 Sep off.
- October 2025 has no holiday: Wed 1 Oct, Sat 4, Sun 5, Mon 6, Fri 10, Mon 13 Oct.

The last tests compare the reference calendar with `domain.calendar.WorkingCalendar`
day by day and on a grid of due instants: two implementations written apart must agree.
"""

from __future__ import annotations

import ast
import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from domain.calendar import WorkingCalendar
from schemas.enums import TimeUnit
from schemas.events import DossierEvent
from tests.factories import event
from tests.reference import (
    COUNTS,
    ReferenceCalendar,
    default_calendar,
    final_states,
    reference_facts,
    reference_series,
    reference_snapshots,
)

VN = timezone(timedelta(hours=7))
WD, CD, H = TimeUnit.WORKING_DAYS, TimeUnit.CALENDAR_DAYS, TimeUnit.HOURS
D = "HP-SO-YTE-2510-000001"  # the factory's dossier id


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=VN)


def ep(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    """Epoch seconds of a Vietnam wall-clock time."""
    return int(vn(y, m, d, hh, mm, ss).timestamp())


@pytest.fixture(scope="module")
def cal() -> ReferenceCalendar:
    return default_calendar()


def test_the_reference_imports_nothing_from_the_code_it_judges() -> None:
    tree = ast.parse((Path(__file__).parents[1] / "reference.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    ours = {m for m in imported if m.split(".")[0] in ("domain", "stream_apps", "producers")}
    assert ours == set()
    assert {m for m in imported if m.startswith("schemas")} <= {"schemas.events", "schemas.enums"}


# -- the calendar by hand -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2024, 12, 31), True),
        (date(2025, 1, 1), False),  # New Year
        (date(2025, 1, 24), True),  # Fri before Tết
        (date(2025, 1, 25), False),
        (date(2025, 1, 27), False),  # Tết
        (date(2025, 1, 31), False),
        (date(2025, 2, 1), False),
        (date(2025, 2, 2), False),
        (date(2025, 2, 3), True),
        (date(2025, 4, 7), False),  # Hùng Kings
        (date(2025, 4, 26), True),  # the working Saturday
        (date(2025, 4, 27), False),
        (date(2025, 4, 30), False),
        (date(2025, 5, 1), False),
        (date(2025, 5, 2), False),  # swapped for 26 Apr
        (date(2025, 5, 5), True),
        (date(2025, 8, 29), True),
        (date(2025, 8, 30), False),
        (date(2025, 9, 1), False),  # National Day, first day
        (date(2025, 9, 2), False),
        (date(2025, 9, 3), True),
        (date(2025, 10, 4), False),
        (date(2025, 10, 6), True),
    ],
)
def test_working_days(cal: ReferenceCalendar, day: date, working: bool) -> None:
    assert cal.is_working_day(day) is working


@pytest.mark.parametrize(
    ("received_at", "expected"),
    [
        (vn(2025, 1, 1, 9), date(2025, 1, 2)),  # on New Year's Day
        (vn(2025, 1, 23, 16, 59, 59), date(2025, 1, 23)),
        (vn(2025, 1, 23, 17), date(2025, 1, 24)),  # at the cut-off
        (vn(2025, 1, 24, 17), date(2025, 2, 3)),  # after the cut-off, before Tết
        (vn(2025, 4, 26, 10), date(2025, 4, 26)),  # the working Saturday
        (vn(2025, 4, 29, 18), date(2025, 5, 5)),
        (datetime(2025, 10, 6, 10, 30, tzinfo=UTC), date(2025, 10, 7)),  # 17:30 VN
    ],
)
def test_receipt_dates(cal: ReferenceCalendar, received_at: datetime, expected: date) -> None:
    assert cal.receipt_date(received_at) == expected


@pytest.mark.parametrize(
    ("received_at", "value", "unit", "due", "near"),
    [
        # 5 working days across Tết: Fri 24 Jan, Mon 3, Tue 4, Wed 5, Thu 6 Feb.
        (vn(2025, 1, 23, 10), 5, WD, vn(2025, 2, 7), vn(2025, 2, 6)),
        # after the cut-off on Fri 24 Jan: received Mon 3 Feb; Tue 4, Wed 5, Thu 6.
        (vn(2025, 1, 24, 17), 3, WD, vn(2025, 2, 7), vn(2025, 2, 6)),
        # the working Saturday counts: Sat 26, Mon 28, Tue 29 Apr.
        (vn(2025, 4, 25, 16), 3, WD, vn(2025, 4, 30), vn(2025, 4, 29)),
        # the 4th working day jumps 30 Apr - 4 May: Mon 5 May.
        (vn(2025, 4, 25, 16), 4, WD, vn(2025, 5, 6), vn(2025, 5, 5)),
        # 6 calendar days from Mon 6 Oct is Sun 12 Oct: moved to Mon 13 Oct.
        (vn(2025, 10, 6, 10), 6, CD, vn(2025, 10, 14), vn(2025, 10, 13)),
        # 10 calendar days from Fri 22 Aug is Mon 1 Sep (National Day): Wed 3 Sep.
        (vn(2025, 8, 22, 9), 10, CD, vn(2025, 9, 4), vn(2025, 9, 3)),
        # 7 calendar days from Mon 20 Jan is Mon 27 Jan (Tết): Mon 3 Feb.
        (vn(2025, 1, 20, 9), 7, CD, vn(2025, 2, 4), vn(2025, 2, 3)),
        # 8 hours from Fri 15:00: 2 h on Friday, 6 h from Mon 08:00. Near: 71 h / 4 before.
        (vn(2025, 10, 10, 15), 8, H, vn(2025, 10, 13, 14), vn(2025, 10, 12, 20, 15)),
        # received on Saturday: counting starts Mon 08:00. Near: 50 h / 4 before.
        (vn(2025, 10, 11, 10), 4, H, vn(2025, 10, 13, 12), vn(2025, 10, 12, 23, 30)),
        # 9 hours fill a working day exactly. Near: 9 h / 4 = 2 h 15 before.
        (vn(2025, 10, 13, 8), 9, H, vn(2025, 10, 13, 17), vn(2025, 10, 13, 14, 45)),
        # after the cut-off: from Tue 08:00. Near: 16.5 h / 4 = 4 h 07 30 before.
        (vn(2025, 10, 13, 17, 30), 2, H, vn(2025, 10, 14, 10), vn(2025, 10, 14, 5, 52, 30)),
        # hours across Tết: 3 h on Fri 24 Jan, 3 h from Mon 3 Feb 08:00. Near: the span
        # is 237 h, a quarter 59 h 15 before 3 Feb 11:00.
        (vn(2025, 1, 24, 14), 6, H, vn(2025, 2, 3, 11), vn(2025, 1, 31, 23, 45)),
    ],
)
def test_due_and_near_due_instants(
    cal: ReferenceCalendar,
    received_at: datetime,
    value: int,
    unit: TimeUnit,
    due: datetime,
    near: datetime,
) -> None:
    got = cal.due_at(received_at, value, unit)
    assert got == due
    assert cal.near_due_at(received_at, got, unit) == near


def test_near_due_edges(cal: ReferenceCalendar) -> None:
    # Appointment on Sat 4 Oct (due Sun 5 Oct 00:00): the last working day is Fri 3 Oct.
    assert cal.near_due_at(vn(2025, 10, 1, 8), vn(2025, 10, 5), WD) == vn(2025, 10, 3)
    # Never before the receipt: appointment Wed 8 Oct, received that afternoon.
    assert cal.near_due_at(vn(2025, 10, 8, 16), vn(2025, 10, 9), WD) == vn(2025, 10, 8, 16)
    # Hours: a quarter of 3601 s is 900.25 s; 09:00:01 - 900.25 s = 08:45:00.75, down.
    assert cal.near_due_at(vn(2025, 10, 13, 8), vn(2025, 10, 13, 9, 0, 1), H) == vn(
        2025, 10, 13, 8, 45
    )


@pytest.mark.parametrize(
    ("due", "paused", "resumed", "unit", "moved"),
    [
        # Across Tết: working days in (Fri 24 Jan, Tue 4 Feb] are Mon 3 and Tue 4 Feb;
        # the appointment Thu 6 Feb moves on two working days to Mon 10 Feb.
        (vn(2025, 2, 7), vn(2025, 1, 24, 10), vn(2025, 2, 4, 9), WD, vn(2025, 2, 11)),
        # Paused and resumed the same day: nothing moves.
        (vn(2025, 2, 7), vn(2025, 1, 24, 10), vn(2025, 1, 24, 15), WD, vn(2025, 2, 7)),
        # Across a weekend only, (Fri 10, Sun 12 Oct]: no working day, nothing moves.
        (vn(2025, 10, 14), vn(2025, 10, 10, 10), vn(2025, 10, 12, 9), CD, vn(2025, 10, 14)),
        # Across 30 Apr - 4 May: (Tue 29 Apr, Tue 6 May] holds Mon 5 and Tue 6 May;
        # appointment Thu 8 May + 2 working days = Mon 12 May.
        (vn(2025, 5, 9), vn(2025, 4, 29, 9), vn(2025, 5, 6, 9), WD, vn(2025, 5, 13)),
        # Hours: 10:00-16:30 on Mon 13 Oct is 6.5 working hours; 14:00 + 6.5 h is
        # 3 h on Monday and 3.5 h from Tue 08:00.
        (
            vn(2025, 10, 13, 14),
            vn(2025, 10, 13, 10),
            vn(2025, 10, 13, 16, 30),
            H,
            vn(2025, 10, 14, 11, 30),
        ),
        # Hours across a weekend: Fri 16-17 and Mon 08-09 are 2 working hours.
        (vn(2025, 10, 13, 14), vn(2025, 10, 10, 16), vn(2025, 10, 13, 9), H, vn(2025, 10, 13, 16)),
    ],
)
def test_resume_moves_the_due_instant(
    cal: ReferenceCalendar,
    due: datetime,
    paused: datetime,
    resumed: datetime,
    unit: TimeUnit,
    moved: datetime,
) -> None:
    assert cal.due_after_resume(due, paused, resumed, unit) == moved


def test_restart_counts_the_full_limit_again(cal: ReferenceCalendar) -> None:
    # Resumed Tue 4 Feb 2025 09:00, 5 working days: Wed 5, Thu 6, Fri 7, Mon 10, Tue 11.
    assert cal.due_after_restart(vn(2025, 2, 4, 9), 5, WD) == vn(2025, 2, 12)
    # Resumed Fri 10 Oct 2025 16:00, 8 hours: 1 h Friday, 7 h from Mon 08:00.
    assert cal.due_after_restart(vn(2025, 10, 10, 16), 8, H) == vn(2025, 10, 13, 15)


def test_the_override_table_is_read_as_data(tmp_path: Any) -> None:
    table = {
        "notes": {},
        "days_off": ["2025-10-10"],
        "working_days": ["2025-10-11"],
        "not_days_off": ["2025-09-01"],
    }
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    mine = ReferenceCalendar(path, years=range(2025, 2026))
    assert not mine.is_working_day(date(2025, 10, 10))  # a Friday made a day off
    assert mine.is_working_day(date(2025, 10, 11))  # a Saturday made a working day
    assert mine.is_working_day(date(2025, 9, 1))  # a library holiday taken back
    assert not mine.is_working_day(date(2025, 9, 2))
    with pytest.raises(ValueError, match="outside"):
        mine.is_working_day(date(2026, 1, 2))


# -- the lifecycle by hand ----------------------------------------------------------------

ACCEPTED_1_OCT = {"at": vn(2025, 10, 1, 8), "appointment_at": "2025-10-08T17:00:00+07:00"}


def one(events: list[DossierEvent]) -> Any:
    states = final_states(events)
    assert list(states) == [events[0].dossier_id]
    return states[events[0].dossier_id]


def test_a_pause_before_the_due_instant_stops_the_deadline() -> None:
    # Due Thu 9 Oct 00:00; paused Wed 8 Oct 16:00; resumed Mon 13 Oct 09:00: (8, 13 Oct]
    # holds Thu 9, Fri 10, Mon 13, so the appointment Wed 8 Oct moves to Mon 13 Oct.
    e1 = event("accepted", **ACCEPTED_1_OCT)
    e2 = event("supplement_requested", sequence=2, at=vn(2025, 10, 8, 16))
    e3 = event("supplement_received", sequence=3, at=vn(2025, 10, 13, 9))
    paused = one([e1, e2])
    assert paused.paused and paused.due_at == vn(2025, 10, 9)
    t = ep(2025, 10, 10, 12)
    city = reference_snapshots([e1, e2], t)["city"]
    assert (city["overdue_now"], city["not_yet_due_now"], city["mtd.became_overdue"]) == (
        "0",
        "1",
        "0",
    )
    resumed = one([e1, e2, e3])
    assert not resumed.paused and resumed.due_at == vn(2025, 10, 14)


@pytest.mark.parametrize("clock", ["resume", "restart"])
def test_a_pause_after_the_due_instant_leaves_the_dossier_overdue(clock: str) -> None:
    e1 = event("accepted", **ACCEPTED_1_OCT)  # due Thu 9 Oct 00:00
    e2 = event("supplement_requested", sequence=2, at=vn(2025, 10, 10, 10))
    e3 = event("supplement_received", sequence=3, at=vn(2025, 10, 14, 9), clock=clock)
    e4 = event("resolved", sequence=4, at=vn(2025, 10, 15, 10))
    waiting = one([e1, e2])
    assert waiting.status == 5 and not waiting.paused and waiting.supplements == 1
    city = reference_snapshots([e1, e2], ep(2025, 10, 13, 12))["city"]
    assert city["open_now"] == city["overdue_now"] == city["mtd.became_overdue"] == "1"
    assert city["not_yet_due_now"] == city["near_due_now"] == "0"
    done = one([e1, e2, e3, e4])
    assert done.due_at == vn(2025, 10, 9)  # neither resume nor restart moved it
    f = reference_facts(done)
    assert f is not None and f.on_time is False and f.became == ep(2025, 10, 9)


def test_a_pause_at_the_due_instant_itself_is_already_overdue() -> None:
    e1 = event("accepted", **ACCEPTED_1_OCT)
    e2 = event("supplement_requested", sequence=2, at=vn(2025, 10, 9))
    state = one([e1, e2])
    assert not state.paused and state.due_at == vn(2025, 10, 9)


def test_a_transfer_moves_every_figure_to_the_new_agency() -> None:
    moved = {"agency": {"code": "11311", "level": "commune"}}
    e1 = event("accepted", **ACCEPTED_1_OCT)
    e2 = event("transferred", sequence=2, status=2, at=vn(2025, 10, 1, 11), **moved)
    e3 = event("resolved", sequence=3, at=vn(2025, 10, 1, 13), **moved)
    stale = event("returned", sequence=4, at=vn(2025, 10, 1, 14))  # names SO-YTE: a conflict
    e4 = event("returned", sequence=4, at=vn(2025, 10, 1, 15), **moved)
    state = one([e1, e2, e3, stale, e4])
    assert (state.agency, state.level, state.status) == ("11311", "commune", 10)
    assert state.applied == [1, 2, 3, 4] and state.conflicts == [stale]
    snaps = reference_snapshots([e1, e2, e3, stale, e4], ep(2025, 10, 1, 16))
    assert sorted(snaps) == ["agency:11311", "city", "field:health", "level:commune"]
    commune = snaps["agency:11311"]
    assert (commune["1h.received_total"], commune["24h.received_total"]) == ("0", "1")
    assert (commune["24h.resolved_on_time"], commune["24h.on_time_rate"]) == ("1", "1.000000")


def test_identity_conflicts_change_nothing_and_leave_the_sequence_free() -> None:
    e1 = event("accepted", **ACCEPTED_1_OCT)
    by_post = event("processing", sequence=2, at=vn(2025, 10, 2), channel="post", online_mode=None)
    partial = event("processing", sequence=2, at=vn(2025, 10, 2), online_mode="partial")
    other_procedure = event("processing", sequence=2, procedure={"code": "9.9", "field": "health"})
    other_agency = event("processing", sequence=2, agency={"code": "SO-TP", "level": "city"})
    e2 = event("processing", sequence=2, at=vn(2025, 10, 2, 9))
    later = event("resolved", sequence=2, at=vn(2025, 10, 2, 10))  # same sequence, too late
    conflicts = [by_post, partial, other_procedure, other_agency]
    state = one([e1, *conflicts, e2, later])
    assert state.applied == [1, 2] and state.status == 4 and state.resolved_at is None
    assert state.conflicts == conflicts
    assert (state.channel_kind, state.agency, state.procedure) == (
        "online_full",
        "SO-YTE",
        "1.004616",
    )


def test_a_conflict_waiting_for_an_earlier_sequence_does_not_take_the_sequence() -> None:
    # Reading of rules 1 and 3: a message that is not this dossier's event is as if it
    # had never been received, even when it arrived first while sequence 1 was missing.
    e1 = event("accepted", **ACCEPTED_1_OCT)
    foreign = event("processing", sequence=2, channel="post", online_mode=None)
    e2 = event("processing", sequence=2, at=vn(2025, 10, 2, 9))
    state = one([foreign, e2, e1])
    assert state.applied == [1, 2] and state.conflicts == [foreign]


def test_the_first_event_of_a_sequence_counts_and_impossible_ones_use_it_up() -> None:
    e1 = event("accepted", **ACCEPTED_1_OCT)
    returned = event("returned", sequence=2, at=vn(2025, 10, 2))  # impossible from 2
    resolved = event("resolved", sequence=2, at=vn(2025, 10, 2, 1))  # sequence 2 is used
    e3 = event("resolved", sequence=3, at=vn(2025, 10, 3))
    state = one([e1, returned, resolved, e3, e1])
    assert state.applied == [1, 3] and state.rejected == [2]
    assert state.resolved_at == vn(2025, 10, 3)


def test_a_time_going_backwards_is_applied_at_the_latest_time() -> None:
    e1 = event("accepted", **ACCEPTED_1_OCT)  # due Thu 9 Oct 00:00
    e2 = event("processing", sequence=2, at=vn(2025, 10, 10, 9))
    e3 = event("resolved", sequence=3, at=vn(2025, 10, 7, 15))  # a desk clock behind
    state = one([e1, e2, e3])
    assert state.clamped == [3] and state.resolved_at == vn(2025, 10, 10, 9)
    f = reference_facts(state)
    assert f is not None
    assert (f.resolved, f.on_time, f.became) == (ep(2025, 10, 10, 9), False, ep(2025, 10, 9))
    city = reference_snapshots([e1, e2, e3], ep(2025, 10, 10, 9, 30))["city"]
    assert (city["1h.resolved_late"], city["1h.resolved_on_time"]) == ("1", "0")


def test_a_gap_never_filled_is_skipped() -> None:
    e1 = event("accepted", **ACCEPTED_1_OCT)
    e3 = event("resolved", sequence=3, at=vn(2025, 10, 3))
    state = one([e3, e1])
    assert state.applied == [1, 3] and state.resolved_at == vn(2025, 10, 3)


def test_transfers_and_apologies_never_change_the_status() -> None:
    # Every event below carries a status the contract allows it; the transfer and the
    # apology slips carry statuses other than the dossier's.
    events = [
        event("accepted", **ACCEPTED_1_OCT),  # due Thu 9 Oct 00:00
        event("supplement_requested", sequence=2, at=vn(2025, 10, 2, 8)),
        event("transferred", sequence=3, status=4, at=vn(2025, 10, 3, 8)),
        event("apology_issued", sequence=4, status=6, at=vn(2025, 10, 3, 9)),
        # (Thu 2, Mon 6 Oct] holds Fri 3 and Mon 6: the appointment Wed 8 moves to Fri 10.
        event("supplement_received", sequence=5, at=vn(2025, 10, 6, 8)),
        event("apology_issued", sequence=6, status=6, at=vn(2025, 10, 7)),
        event("supplement_requested", sequence=7, at=vn(2025, 10, 8)),  # from 4, not 6
        event("supplement_received", sequence=8, at=vn(2025, 10, 8, 10)),
        event("resolved", sequence=9, at=vn(2025, 10, 9, 10)),
        event("transferred", sequence=10, status=4, at=vn(2025, 10, 9, 11)),  # from 9
        event("returned", sequence=11, at=vn(2025, 10, 9, 12)),
    ]
    state = one(events)
    assert state.applied == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11] and state.rejected == [10]
    assert state.status == 10 and state.supplements == 2
    assert state.due_at == vn(2025, 10, 11)
    f = reference_facts(state)
    assert f is not None and f.on_time is False  # two supplement requests: late (766)
    relaxed = reference_facts(state, second_supplement_late=False)
    assert relaxed is not None and relaxed.on_time is True


def test_events_from_the_future_are_dropped_when_a_clock_is_given() -> None:
    e1 = event("accepted", **ACCEPTED_1_OCT)
    e2 = event("resolved", sequence=2, at=vn(2025, 10, 1, 8, 10))
    now = ep(2025, 10, 1, 8)
    assert final_states([e1, e2])[D].applied == [1, 2]
    assert final_states([e1, e2], now=now)[D].applied == [1]  # 600 s ahead > 300 s
    assert final_states([e1, e2], now=now, future_tolerance_s=600)[D].applied == [1, 2]


# -- figures of a small set, by hand --------------------------------------------------------

T = ep(2025, 10, 9, 12)  # Thu 9 Oct 2025 12:00
ONLINE_FULL = {"channel": "online", "online_mode": "full"}
ONLINE_PARTIAL = {"channel": "online", "online_mode": "partial"}
IN_PERSON = {"channel": "in_person", "online_mode": None}
POST = {"channel": "post", "online_mode": None}
J_IDENTITY = {
    "agency": {"code": "11311", "level": "commune"},
    "procedure": {"code": "1.001193", "field": "civil_status"},
    **IN_PERSON,
}


def accepted(name: str, at: datetime, appointment: str, **kw: Any) -> DossierEvent:
    return event("accepted", dossier_id=name, at=at, appointment_at=appointment, **kw)


def small_set() -> list[DossierEvent]:
    wd5 = {"time_limit": {"value": 5, "unit": "working_days"}}
    return [
        # A: due Thu 9 Oct 00:00, open: overdue at T.
        accepted("A", vn(2025, 10, 1, 8), "2025-10-08T17:00:00+07:00", **ONLINE_FULL, **wd5),
        # B: due Fri 10 Oct 00:00, near-due from Thu 9 Oct 00:00.
        accepted("B", vn(2025, 10, 2, 10), "2025-10-09T17:00:00+07:00", **ONLINE_PARTIAL),
        # C: due Thu 16 Oct 00:00, near-due from Wed 15 Oct.
        accepted("C", vn(2025, 10, 8, 14), "2025-10-15T17:00:00+07:00", **IN_PERSON),
        # D: 8 hours from Thu 11:30: due Fri 10 Oct 10:30, near-due from Fri 04:45.
        accepted(
            "D",
            vn(2025, 10, 9, 11, 30),
            "2025-10-10T10:30:00+07:00",
            time_limit={"value": 8, "unit": "hours"},
            **POST,
        ),
        # E: resolved on time Tue 7 Oct 15:00.
        accepted("E", vn(2025, 10, 1, 9), "2025-10-08T17:00:00+07:00", **ONLINE_FULL),
        event("resolved", dossier_id="E", sequence=2, at=vn(2025, 10, 7, 15), **ONLINE_FULL),
        # F: resolved late Thu 9 Oct 11:30; became overdue Thu 9 Oct 00:00.
        accepted("F", vn(2025, 10, 1, 10), "2025-10-08T17:00:00+07:00", **ONLINE_FULL),
        event("resolved", dossier_id="F", sequence=2, at=vn(2025, 10, 9, 11, 30), **ONLINE_FULL),
        # G: paused Tue 7 Oct before its due (Fri 10 Oct 00:00): not yet due.
        accepted("G", vn(2025, 10, 2, 8), "2025-10-09T17:00:00+07:00", **IN_PERSON),
        event(
            "supplement_requested", dossier_id="G", sequence=2, at=vn(2025, 10, 7, 9), **IN_PERSON
        ),
        # H: received in September, became overdue Thu 2 Oct 00:00, withdrawn Fri 3 Oct.
        accepted("H", vn(2025, 9, 26, 10), "2025-10-01T17:00:00+07:00", **ONLINE_PARTIAL),
        event("withdrawn", dossier_id="H", sequence=2, at=vn(2025, 10, 3, 9), **ONLINE_PARTIAL),
        # I: submitted, not received; K: refused at intake. Neither counts.
        event("submitted", dossier_id="I", at=vn(2025, 10, 9, 11, 45), **ONLINE_FULL),
        event("refused", dossier_id="K", at=vn(2025, 10, 9, 9), **IN_PERSON),
        # J: a commune's civil-status dossier, due Thu 9 Oct 00:00, open: overdue.
        accepted("J", vn(2025, 10, 6, 8), "2025-10-08T17:00:00+07:00", **J_IDENTITY),
    ]


def window_row(snap: dict[str, str], w: str) -> tuple[str, ...]:
    names = (*COUNTS, "online_ratio", "full_online_ratio", "on_time_rate")
    return tuple(snap[f"{w}.{n}"] for n in names)


# Windows at T: 1h from 11:01; 24h from Wed 8 Oct 13:00; 7d from Thu 2 Oct 13:00;
# 30d from Wed 10 Sep 13:00; mtd and qtd from 1 Oct; ytd from 1 Jan 2025.
CITY_WINDOWS = {
    # D received, F resolved late. on time: (0 + 4) / (0 + 1 + 6) = 4/7.
    "1h": ("1", "0", "0", "0", "1", "0", "1", "0", "0.000000", "0.000000", "0.571429"),
    # C, D received; A, F, J became overdue at 00:00.
    "24h": ("2", "1", "0", "0", "1", "0", "1", "3", "0.000000", "0.000000", "0.571429"),
    # C, D, J received; E on time, F late. (1 + 4) / (1 + 1 + 6) = 5/8.
    "7d": ("3", "2", "0", "0", "1", "1", "1", "3", "0.000000", "0.000000", "0.625000"),
    # all nine; H became overdue 2 Oct. online 5/9, full 3/9.
    "30d": ("9", "3", "3", "2", "1", "1", "1", "4", "0.555556", "0.333333", "0.625000"),
    # all but H (September); H's 2 Oct counts. online 4/8, full 3/8.
    "mtd": ("8", "3", "3", "1", "1", "1", "1", "4", "0.500000", "0.375000", "0.625000"),
    "qtd": ("8", "3", "3", "1", "1", "1", "1", "4", "0.500000", "0.375000", "0.625000"),
    "ytd": ("9", "3", "3", "2", "1", "1", "1", "4", "0.555556", "0.333333", "0.625000"),
}
SO_YTE_WINDOWS = {
    # open A, B, C, D, G: (0 + 4) / (0 + 1 + 5) = 4/6.
    "1h": ("1", "0", "0", "0", "1", "0", "1", "0", "0.000000", "0.000000", "0.666667"),
    "24h": ("2", "1", "0", "0", "1", "0", "1", "2", "0.000000", "0.000000", "0.666667"),
    # (1 + 4) / (1 + 1 + 5) = 5/7.
    "7d": ("2", "1", "0", "0", "1", "1", "1", "2", "0.000000", "0.000000", "0.714286"),
    "30d": ("8", "2", "3", "2", "1", "1", "1", "3", "0.625000", "0.375000", "0.714286"),
    # A, B, C, D, E, F, G: online 4/7, full 3/7.
    "mtd": ("7", "2", "3", "1", "1", "1", "1", "3", "0.571429", "0.428571", "0.714286"),
    "qtd": ("7", "2", "3", "1", "1", "1", "1", "3", "0.571429", "0.428571", "0.714286"),
    "ytd": ("8", "2", "3", "2", "1", "1", "1", "3", "0.625000", "0.375000", "0.714286"),
}
# J alone: open and overdue, so the 766 rate is 0 / 1 everywhere.
COMMUNE_WINDOWS = {
    "1h": ("0", "0", "0", "0", "0", "0", "0", "0", "", "", "0.000000"),
    "24h": ("0", "0", "0", "0", "0", "0", "0", "1", "", "", "0.000000"),
    **{
        w: ("1", "1", "0", "0", "0", "0", "0", "1", "0.000000", "0.000000", "0.000000")
        for w in ("7d", "30d", "mtd", "qtd", "ytd")
    },
}


def test_the_figures_of_a_small_set_of_dossiers() -> None:
    snaps = reference_snapshots(small_set(), T)
    assert sorted(snaps) == [
        "agency:11311",
        "agency:SO-YTE",
        "city",
        "field:civil_status",
        "field:health",
        "level:city",
        "level:commune",
    ]
    gauges = ("open_now", "overdue_now", "near_due_now", "not_yet_due_now")
    # open A, B, C, D, G, J; overdue A, J; near-due B; G paused counts as not yet due.
    assert tuple(snaps["city"][g] for g in gauges) == ("6", "2", "1", "4")
    assert tuple(snaps["agency:SO-YTE"][g] for g in gauges) == ("5", "1", "1", "4")
    assert tuple(snaps["agency:11311"][g] for g in gauges) == ("1", "1", "0", "0")
    for w in CITY_WINDOWS:
        assert window_row(snaps["city"], w) == CITY_WINDOWS[w], w
        assert window_row(snaps["agency:SO-YTE"], w) == SO_YTE_WINDOWS[w], w
        assert window_row(snaps["agency:11311"], w) == COMMUNE_WINDOWS[w], w
    assert snaps["level:city"] == snaps["field:health"] == snaps["agency:SO-YTE"]
    assert snaps["level:commune"] == snaps["field:civil_status"] == snaps["agency:11311"]


def test_the_series_of_a_small_set_of_dossiers() -> None:
    city = reference_series(small_set(), T)["city"]
    got = {k: json.loads(v) for k, v in city.items()}
    # Hour buckets from Thu 2 Oct 13:00: J (Mon 6 08:00), C (Wed 8 14:00), D (Thu 9 11:00).
    assert got["hourly.received_total"] == {
        str(ep(2025, 10, 6, 8)): 1,
        str(ep(2025, 10, 8, 14)): 1,
        str(ep(2025, 10, 9, 11)): 1,
    }
    assert got["daily.received_total"] == {
        str(ep(2025, 9, 26)): 1,
        str(ep(2025, 10, 1)): 3,
        str(ep(2025, 10, 2)): 2,
        str(ep(2025, 10, 6)): 1,
        str(ep(2025, 10, 8)): 1,
        str(ep(2025, 10, 9)): 1,
    }
    assert got["hourly.became_overdue"] == {str(ep(2025, 10, 9)): 3}
    assert got["daily.became_overdue"] == {str(ep(2025, 10, 2)): 1, str(ep(2025, 10, 9)): 3}
    assert got["hourly.resolved_on_time"] == {str(ep(2025, 10, 7, 15)): 1}
    assert got["hourly.resolved_late"] == {str(ep(2025, 10, 9, 11)): 1}
    assert got["daily.received_post"] == {str(ep(2025, 10, 9)): 1}
    assert got["hourly.received_online_partial"] == {}  # B came Thu 2 Oct 10:00, before 13:00


# -- two calendars written apart agree ----------------------------------------------------


@pytest.fixture(scope="module")
def domain_cal() -> WorkingCalendar:
    return WorkingCalendar()


def test_working_days_agree_with_the_domain_calendar_2024_to_2027(
    cal: ReferenceCalendar, domain_cal: WorkingCalendar
) -> None:
    day, differ, checked = date(2024, 1, 1), [], 0
    while day <= date(2027, 12, 31):
        if cal.is_working_day(day) != domain_cal.is_working_day(day):
            differ.append(day)
        checked += 1
        day += timedelta(days=1)
    assert checked == 1461 and differ == []


LIMITS = [
    *((v, WD) for v in (1, 2, 5, 10, 22)),
    *((v, CD) for v in (1, 6, 10, 30)),
    *((v, H) for v in (1, 4, 8, 9, 16, 40)),
]
TIMES = [(7, 59, 59), (8, 0, 0), (12, 34, 56), (16, 59, 59), (17, 0, 0)]


def test_due_and_near_due_instants_agree_with_the_domain_calendar(
    cal: ReferenceCalendar, domain_cal: WorkingCalendar
) -> None:
    """Every day of 2024-2027 at 5 times of day, 15 limits: receipt, due and near-due."""
    day, checked = date(2024, 1, 1), 0
    differ: list[tuple[object, ...]] = []
    while day <= date(2027, 12, 31):
        for hh, mm, ss in TIMES:
            received = vn(day.year, day.month, day.day, hh, mm, ss)
            if cal.receipt_date(received) != domain_cal.receipt_date(received):
                differ.append(("receipt", received))
            for value, unit in LIMITS:
                due = cal.due_at(received, value, unit)
                near = cal.near_due_at(received, due, unit)
                want = domain_cal.due_at(received, value, unit)
                want_near = domain_cal.near_due_at(received, want, unit=unit)
                if (due, near) != (want, want_near):
                    differ.append((received, value, unit, due, want, near, want_near))
                checked += 1
        day += timedelta(days=1)
    assert checked == 1461 * len(TIMES) * len(LIMITS)
    assert differ[:5] == []


def test_pauses_agree_with_the_domain_calendar(
    cal: ReferenceCalendar, domain_cal: WorkingCalendar
) -> None:
    """3,000 random pauses in 2024-2027 (seconds-exact), answered with resume and restart."""
    rng = random.Random(118)
    start = vn(2024, 1, 1)
    differ = []
    for _ in range(3000):
        received = start + timedelta(seconds=rng.randrange(4 * 365 * 86400 - 90 * 86400))
        value, unit = rng.choice(LIMITS)
        due = domain_cal.due_at(received, value, unit)
        paused = received + timedelta(seconds=rng.randrange(20 * 86400))
        resumed = paused + timedelta(seconds=rng.choice([0, rng.randrange(30 * 86400)]))
        got = cal.due_after_resume(due, paused, resumed, unit)
        want = domain_cal.due_after_resume(due, paused, resumed, value=value, unit=unit)
        restart = cal.due_after_restart(resumed, value, unit)
        want_restart = domain_cal.due_at(resumed, value, unit)
        if (got, restart) != (want, want_restart):
            differ.append((received, value, unit, paused, resumed, got, want))
    assert differ[:5] == []
