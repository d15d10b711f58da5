"""Working-day calendar: expected dates reasoned from Vietnam's real 2025-2026 calendar.

Days off used below (weekdays checked): Tết 2026 = Sat 14 - Sun 22 Feb 2026 (Mon 16 - Fri 20
holidays); 30 Apr (Wed) - 2 May (Fri) 2025, 2 May swapped with the working Sat 26 Apr 2025;
National Day 2025 = Mon 1 - Tue 2 Sep; National Day 2026 = Mon 31 Aug (swapped with the
working Sat 22 Aug 2026) - Wed 2 Sep. March 2026 has no holiday.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from domain.calendar import (
    OVERRIDE_DAY_OFF_NAME,
    VN_TZ,
    CalendarOverrides,
    CalendarRules,
    WorkingCalendar,
    default_overrides,
    load_overrides,
)
from domain.errors import CalendarError, DomainError
from schemas.enums import TimeUnit

WD = TimeUnit.WORKING_DAYS
CD = TimeUnit.CALENDAR_DAYS
H = TimeUnit.HOURS


def vn(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=VN_TZ)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    # Empty overrides: the expectations below are about the library calendar alone.
    return WorkingCalendar(overrides=CalendarOverrides())


# -- days ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        pytest.param(date(2026, 2, 13), True, id="fri-13-feb-2026-last-day-before-tet"),
        pytest.param(date(2026, 2, 14), False, id="sat-14-feb-2026-weekend-start-of-tet"),
        pytest.param(date(2026, 2, 16), False, id="mon-16-feb-2026-lunar-new-years-eve"),
        pytest.param(date(2026, 2, 17), False, id="tue-17-feb-2026-tet"),
        pytest.param(date(2026, 2, 20), False, id="fri-20-feb-2026-fourth-day-of-tet"),
        pytest.param(date(2026, 2, 22), False, id="sun-22-feb-2026-end-of-tet"),
        pytest.param(date(2026, 2, 23), True, id="mon-23-feb-2026-back-to-work"),
        pytest.param(date(2025, 4, 26), True, id="sat-26-apr-2025-declared-working-saturday"),
        pytest.param(date(2025, 4, 27), False, id="sun-27-apr-2025-ordinary-sunday"),
        pytest.param(date(2025, 4, 29), True, id="tue-29-apr-2025-ordinary-working-day"),
        pytest.param(date(2025, 4, 30), False, id="wed-30-apr-2025-reunification-day"),
        pytest.param(date(2025, 5, 1), False, id="thu-1-may-2025-labour-day"),
        pytest.param(date(2025, 5, 2), False, id="fri-2-may-2025-swapped-for-26-apr"),
        pytest.param(date(2025, 5, 5), True, id="mon-5-may-2025-back-to-work"),
        pytest.param(date(2025, 8, 29), True, id="fri-29-aug-2025-before-national-day"),
        pytest.param(date(2025, 9, 1), False, id="mon-1-sep-2025-day-next-to-national-day"),
        pytest.param(date(2025, 9, 2), False, id="tue-2-sep-2025-national-day"),
        pytest.param(date(2025, 9, 3), True, id="wed-3-sep-2025-back-to-work"),
        pytest.param(date(2026, 8, 22), True, id="sat-22-aug-2026-declared-working-saturday"),
        pytest.param(date(2026, 8, 31), False, id="mon-31-aug-2026-swapped-for-22-aug"),
        pytest.param(date(2026, 9, 1), False, id="tue-1-sep-2026-day-next-to-national-day"),
        pytest.param(date(2026, 9, 2), False, id="wed-2-sep-2026-national-day"),
        pytest.param(date(2026, 9, 3), True, id="thu-3-sep-2026-back-to-work"),
        pytest.param(date(2026, 4, 27), False, id="mon-27-apr-2026-hung-kings-observed"),
    ],
)
def test_is_working_day(cal: WorkingCalendar, day: date, working: bool) -> None:
    assert cal.is_working_day(day) is working


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(date(2026, 2, 17), "Tết Nguyên Đán", id="tet-2026"),
        pytest.param(date(2025, 9, 2), "Quốc khánh", id="national-day-2025"),
        pytest.param(date(2026, 2, 14), None, id="weekend-inside-tet-is-not-a-holiday"),
        pytest.param(date(2025, 4, 26), None, id="working-saturday-has-no-name"),
        pytest.param(date(2026, 3, 10), None, id="ordinary-tuesday"),
    ],
)
def test_holiday_name(cal: WorkingCalendar, day: date, expected: str | None) -> None:
    assert cal.holiday_name(day) == expected


def test_holiday_name_of_a_swapped_day_off_names_the_saturday(cal: WorkingCalendar) -> None:
    name = cal.holiday_name(date(2025, 5, 2))
    assert name is not None and "26/04/2025" in name


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        pytest.param(date(2026, 2, 13), 1, date(2026, 2, 23), id="one-after-fri-before-tet"),
        pytest.param(date(2026, 2, 13), 3, date(2026, 2, 25), id="three-after-fri-before-tet"),
        pytest.param(date(2026, 2, 14), 0, date(2026, 2, 23), id="zero-on-day-off-is-next"),
        pytest.param(date(2026, 2, 23), 0, date(2026, 2, 23), id="zero-on-working-day-is-itself"),
        pytest.param(date(2026, 2, 23), -1, date(2026, 2, 13), id="one-back-across-tet"),
        pytest.param(date(2026, 2, 15), -1, date(2026, 2, 13), id="one-back-from-sunday"),
        pytest.param(date(2025, 5, 5), -1, date(2025, 4, 29), id="one-back-across-30-apr"),
        pytest.param(date(2025, 4, 28), -1, date(2025, 4, 26), id="back-to-working-saturday"),
        pytest.param(date(2025, 4, 25), 1, date(2025, 4, 26), id="fri-to-working-saturday"),
    ],
)
def test_add_working_days(cal: WorkingCalendar, start: date, n: int, expected: date) -> None:
    assert cal.add_working_days(start, n) == expected


def test_next_working_day_is_strictly_after(cal: WorkingCalendar) -> None:
    assert cal.next_working_day(date(2026, 2, 23)) == date(2026, 2, 24)
    assert cal.next_working_day(date(2026, 2, 13)) == date(2026, 2, 23)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(date(2026, 2, 13), date(2026, 2, 23), 1, id="across-tet-counts-only-23-feb"),
        pytest.param(date(2026, 2, 12), date(2026, 2, 24), 3, id="13-23-24-feb"),
        pytest.param(date(2026, 2, 24), date(2026, 2, 12), -3, id="reversed-is-negative"),
        pytest.param(date(2025, 4, 25), date(2025, 5, 5), 4, id="26-28-29-apr-and-5-may-2025"),
        pytest.param(date(2026, 3, 9), date(2026, 3, 9), 0, id="same-day"),
    ],
)
def test_working_days_between(cal: WorkingCalendar, start: date, end: date, expected: int) -> None:
    assert cal.working_days_between(start, end) == expected


# -- receipt ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received_at", "expected"),
    [
        pytest.param(vn(2026, 3, 9, 10), date(2026, 3, 9), id="monday-morning"),
        pytest.param(vn(2026, 3, 9, 7), date(2026, 3, 9), id="before-office-hours-same-day"),
        pytest.param(vn(2026, 3, 9, 16, 59, 59), date(2026, 3, 9), id="one-second-before-cutoff"),
        pytest.param(vn(2026, 3, 9, 17), date(2026, 3, 10), id="at-cutoff-next-working-day"),
        pytest.param(vn(2026, 3, 13, 18), date(2026, 3, 16), id="friday-after-cutoff-to-monday"),
        pytest.param(vn(2026, 3, 7, 10), date(2026, 3, 9), id="saturday-to-monday"),
        pytest.param(vn(2026, 2, 17, 10), date(2026, 2, 23), id="during-tet-to-23-feb"),
        pytest.param(vn(2025, 4, 26, 9), date(2025, 4, 26), id="declared-working-saturday"),
        pytest.param(vn(2025, 5, 1, 9), date(2025, 5, 5), id="labour-day-2025-to-5-may"),
        pytest.param(
            datetime(2026, 3, 8, 23, 30, tzinfo=UTC),
            date(2026, 3, 9),
            id="utc-sunday-night-is-monday-morning-in-vietnam",
        ),
        pytest.param(
            datetime(2026, 3, 9, 10, 0, tzinfo=UTC),
            date(2026, 3, 10),
            id="utc-10h-is-17h-in-vietnam-after-cutoff",
        ),
    ],
)
def test_receipt_date(cal: WorkingCalendar, received_at: datetime, expected: date) -> None:
    assert cal.receipt_date(received_at) == expected


def test_receipt_without_cutoff_keeps_the_evening() -> None:
    cal = WorkingCalendar(CalendarRules(receipt_cutoff=None), CalendarOverrides())
    assert cal.receipt_date(vn(2026, 3, 9, 20)) == date(2026, 3, 9)
    assert cal.receipt_date(vn(2026, 3, 7, 10)) == date(2026, 3, 9)  # a day off still moves


# -- due instants ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received_at", "value", "unit", "expected"),
    [
        # working days
        pytest.param(vn(2026, 2, 13, 10), 3, WD, vn(2026, 2, 26), id="wd-tet-2026-fri-13-feb+3"),
        pytest.param(vn(2026, 2, 13, 17, 30), 1, WD, vn(2026, 2, 25), id="wd-fri-before-tet-late"),
        pytest.param(vn(2026, 2, 18, 10), 1, WD, vn(2026, 2, 25), id="wd-received-during-tet"),
        pytest.param(vn(2026, 2, 15, 10), 1, WD, vn(2026, 2, 25), id="wd-received-sunday-in-tet"),
        pytest.param(vn(2025, 4, 25, 10), 1, WD, vn(2025, 4, 27), id="wd-lands-on-working-sat"),
        pytest.param(vn(2025, 4, 25, 10), 3, WD, vn(2025, 4, 30), id="wd-sat-26-28-29-apr"),
        pytest.param(vn(2025, 4, 29, 10), 1, WD, vn(2025, 5, 6), id="wd-skips-30-apr-2-may-2025"),
        pytest.param(vn(2025, 4, 26, 9), 1, WD, vn(2025, 4, 29), id="wd-received-working-sat"),
        pytest.param(vn(2025, 8, 29, 10), 1, WD, vn(2025, 9, 4), id="wd-skips-1-2-sep-2025"),
        pytest.param(vn(2025, 8, 28, 10), 2, WD, vn(2025, 9, 4), id="wd-29-aug-then-3-sep-2025"),
        pytest.param(vn(2026, 8, 28, 10), 1, WD, vn(2026, 9, 4), id="wd-skips-31-aug-2-sep-2026"),
        pytest.param(vn(2026, 8, 21, 10), 1, WD, vn(2026, 8, 23), id="wd-working-sat-22-aug-2026"),
        pytest.param(vn(2026, 3, 7, 10), 2, WD, vn(2026, 3, 12), id="wd-received-on-saturday"),
        pytest.param(vn(2026, 3, 9, 16, 59), 1, WD, vn(2026, 3, 11), id="wd-just-before-cutoff"),
        pytest.param(vn(2026, 3, 9, 17), 1, WD, vn(2026, 3, 12), id="wd-at-cutoff"),
        pytest.param(vn(2026, 3, 13, 18), 1, WD, vn(2026, 3, 18), id="wd-fri-after-cutoff"),
        pytest.param(vn(2026, 3, 9, 10), 0, WD, vn(2026, 3, 10), id="wd-zero-same-day"),
        # calendar days
        pytest.param(vn(2026, 3, 9, 10), 3, CD, vn(2026, 3, 13), id="cd-mon+3-thursday"),
        pytest.param(vn(2026, 3, 9, 10), 5, CD, vn(2026, 3, 17), id="cd-lands-on-sat-to-mon"),
        pytest.param(vn(2026, 2, 12, 10), 5, CD, vn(2026, 2, 24), id="cd-lands-in-tet-to-23-feb"),
        pytest.param(vn(2025, 4, 25, 10), 1, CD, vn(2025, 4, 27), id="cd-lands-on-working-sat"),
        pytest.param(vn(2026, 3, 7, 10), 3, CD, vn(2026, 3, 13), id="cd-received-saturday"),
        pytest.param(vn(2026, 3, 9, 10), 30, CD, vn(2026, 4, 9), id="cd-30-days"),
        # working hours, 08:00-17:00
        pytest.param(vn(2026, 3, 9, 10), 4, H, vn(2026, 3, 9, 14), id="h-same-day"),
        pytest.param(vn(2026, 3, 9, 9), 8, H, vn(2026, 3, 9, 17), id="h-ends-at-closing-time"),
        pytest.param(vn(2026, 3, 9, 15), 4, H, vn(2026, 3, 10, 10), id="h-crosses-a-night"),
        pytest.param(vn(2026, 3, 13, 15), 8, H, vn(2026, 3, 16, 14), id="h-crosses-a-weekend"),
        pytest.param(vn(2026, 3, 14, 10), 2, H, vn(2026, 3, 16, 10), id="h-received-saturday"),
        pytest.param(vn(2026, 3, 9, 7), 1, H, vn(2026, 3, 9, 9), id="h-received-before-opening"),
        pytest.param(vn(2026, 3, 9, 17, 30), 3, H, vn(2026, 3, 10, 11), id="h-received-evening"),
        pytest.param(vn(2026, 3, 9, 8), 24, H, vn(2026, 3, 11, 14), id="h-24-hours-is-3-days"),
        pytest.param(vn(2026, 2, 13, 16), 2, H, vn(2026, 2, 23, 9), id="h-crosses-tet"),
        pytest.param(vn(2025, 4, 25, 16), 3, H, vn(2025, 4, 26, 10), id="h-into-working-sat"),
        pytest.param(
            vn(2026, 3, 9, 10, 15, 30), 1, H, vn(2026, 3, 9, 11, 15, 30), id="h-keeps-seconds"
        ),
    ],
)
def test_due_at(
    cal: WorkingCalendar, received_at: datetime, value: int, unit: TimeUnit, expected: datetime
) -> None:
    due = cal.due_at(received_at, value, unit)
    assert due == expected
    assert due.tzinfo is VN_TZ


def test_due_at_tet_2026_example_is_exclusive_midnight(cal: WorkingCalendar) -> None:
    due = cal.due_at(vn(2026, 2, 13, 10), 3, WD)
    assert due.isoformat() == "2026-02-26T00:00:00+07:00"
    assert cal.appointment_date(due) == date(2026, 2, 25)
    assert vn(2026, 2, 25, 23, 59, 59) < due  # resolved late on the appointment day: on time


@pytest.mark.parametrize(
    ("rules", "received_at", "value", "expected"),
    [
        pytest.param(
            CalendarRules(receipt_cutoff=time(16)),
            vn(2026, 3, 9, 16, 30),
            2,
            vn(2026, 3, 10, 10),
            id="hours-after-an-earlier-cutoff-start-next-morning",
        ),
        pytest.param(
            CalendarRules(receipt_cutoff=None),
            vn(2026, 3, 9, 17, 30),
            2,
            vn(2026, 3, 10, 10),
            id="hours-without-cutoff-still-skip-the-evening",
        ),
        pytest.param(
            CalendarRules(workday_start=time(7, 30), workday_end=time(16, 30)),
            vn(2026, 3, 9, 15, 30),
            2,
            vn(2026, 3, 10, 8, 30),
            id="custom-office-hours",
        ),
    ],
)
def test_due_at_hours_with_rules(
    rules: CalendarRules, received_at: datetime, value: int, expected: datetime
) -> None:
    cal = WorkingCalendar(rules, CalendarOverrides())
    assert cal.due_at(received_at, value, H) == expected


def test_due_at_accepts_unit_string(cal: WorkingCalendar) -> None:
    assert cal.due_at(vn(2026, 2, 13, 10), 3, "working_days") == vn(2026, 2, 26)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "unit", "match"),
    [
        pytest.param(-1, WD, "value", id="negative-value"),
        pytest.param(1, "weeks", "unit", id="unknown-unit"),
    ],
)
def test_due_at_bad_input(cal: WorkingCalendar, value: int, unit: Any, match: str) -> None:
    with pytest.raises(CalendarError, match=match):
        cal.due_at(vn(2026, 3, 9, 10), value, unit)


# -- near-due ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "received_at", "due_at", "expected"),
    [
        pytest.param(1, vn(2026, 2, 13, 10), vn(2026, 2, 26), vn(2026, 2, 25), id="n1-appt-day"),
        pytest.param(2, vn(2026, 2, 13, 10), vn(2026, 2, 26), vn(2026, 2, 24), id="n2-day-before"),
        pytest.param(3, vn(2026, 2, 13, 10), vn(2026, 2, 26), vn(2026, 2, 23), id="n3-23-feb"),
        pytest.param(
            4, vn(2026, 2, 13, 10), vn(2026, 2, 26), vn(2026, 2, 13, 10), id="n4-clamped-receipt"
        ),
        pytest.param(2, vn(2026, 3, 9, 10), vn(2026, 3, 17), vn(2026, 3, 13), id="n2-over-weekend"),
        pytest.param(2, vn(2025, 4, 21, 10), vn(2025, 5, 6), vn(2025, 4, 29), id="n2-over-30-apr"),
        pytest.param(2, vn(2025, 4, 21, 10), vn(2025, 4, 29), vn(2025, 4, 26), id="n2-working-sat"),
    ],
)
def test_near_due_day_units(
    n: int, received_at: datetime, due_at: datetime, expected: datetime
) -> None:
    cal = WorkingCalendar(CalendarRules(near_due_working_days=n), CalendarOverrides())
    assert cal.near_due_at(received_at, due_at) == expected
    assert cal.near_due_at(received_at, due_at, unit=WD) == expected


@pytest.mark.parametrize(
    ("received_at", "due_at", "expected"),
    [
        pytest.param(vn(2026, 3, 9, 10), vn(2026, 3, 9, 14), vn(2026, 3, 9, 13), id="4h-last-hour"),
        pytest.param(
            vn(2026, 3, 9, 15), vn(2026, 3, 10, 10), vn(2026, 3, 10, 5, 15), id="19h-wall-clock"
        ),
        pytest.param(
            vn(2026, 3, 9, 10), vn(2026, 3, 9, 10, 0, 7), vn(2026, 3, 9, 10, 0, 5), id="rounds-down"
        ),
        pytest.param(vn(2026, 3, 9, 10), vn(2026, 3, 9, 10), vn(2026, 3, 9, 10), id="zero-length"),
    ],
)
def test_near_due_hours(
    cal: WorkingCalendar, received_at: datetime, due_at: datetime, expected: datetime
) -> None:
    assert cal.near_due_at(received_at, due_at, unit=H) == expected
    if due_at.time() != time(0):
        assert cal.near_due_at(received_at, due_at) == expected  # unit inferred


def test_near_due_rejects_due_before_receipt(cal: WorkingCalendar) -> None:
    with pytest.raises(CalendarError, match="before received_at"):
        cal.near_due_at(vn(2026, 3, 9, 10), vn(2026, 3, 9, 9))


# -- supplement pause ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("due_at", "paused_at", "resumed_at", "unit", "expected"),
    [
        pytest.param(
            vn(2026, 2, 25),  # received Tue 10 Feb 2026 with 5 working days: appointment 24 Feb
            vn(2026, 2, 12, 10),
            vn(2026, 2, 24, 9),
            WD,
            vn(2026, 2, 28),  # (12 Feb, 24 Feb] holds 13, 23, 24 Feb: appointment Fri 27 Feb
            id="pause-across-tet-extends-by-3-working-days",
        ),
        pytest.param(
            vn(2025, 5, 8),  # received Mon 21 Apr 2025 with 10 working days: appointment 7 May
            vn(2025, 4, 29, 10),
            vn(2025, 5, 6, 10),
            WD,
            vn(2025, 5, 10),  # (29 Apr, 6 May] holds 5 and 6 May: appointment Fri 9 May
            id="pause-across-30-apr-2025-extends-by-2",
        ),
        pytest.param(
            vn(2026, 3, 17),
            vn(2026, 3, 13, 10),
            vn(2026, 3, 16, 10),
            WD,
            vn(2026, 3, 18),
            id="pause-over-a-weekend-extends-by-1",
        ),
        pytest.param(
            vn(2026, 3, 17),
            vn(2026, 3, 9, 9),
            vn(2026, 3, 9, 15),
            WD,
            vn(2026, 3, 17),
            id="pause-within-one-day-extends-nothing",
        ),
        pytest.param(
            vn(2026, 3, 17),
            vn(2026, 3, 13, 10),
            vn(2026, 3, 16, 10),
            CD,
            vn(2026, 3, 18),
            id="calendar-day-limit-also-extends-by-working-days",
        ),
        pytest.param(
            vn(2026, 3, 10, 10),
            vn(2026, 3, 9, 16),
            vn(2026, 3, 10, 9),
            H,
            vn(2026, 3, 10, 12),  # 16-17 Mon + 08-09 Tue = 2 working hours
            id="hours-pause-overnight-adds-2h",
        ),
        pytest.param(
            vn(2026, 3, 16, 14),
            vn(2026, 3, 13, 16, 30),
            vn(2026, 3, 16, 8, 30),
            H,
            vn(2026, 3, 16, 15),
            id="hours-pause-over-weekend-adds-1h",
        ),
        pytest.param(
            vn(2026, 3, 9, 16),
            vn(2026, 3, 9, 10),
            vn(2026, 3, 9, 12),
            H,
            vn(2026, 3, 10, 9),
            id="hours-extension-spills-into-next-day",
        ),
        pytest.param(
            vn(2026, 2, 23, 9),
            vn(2026, 2, 13, 16),
            vn(2026, 2, 23, 8),
            H,
            vn(2026, 2, 23, 10),  # only 16-17 on 13 Feb counts: Tết is no working time
            id="hours-pause-across-tet-adds-1h",
        ),
    ],
)
def test_due_after_resume_pause(
    cal: WorkingCalendar,
    due_at: datetime,
    paused_at: datetime,
    resumed_at: datetime,
    unit: TimeUnit,
    expected: datetime,
) -> None:
    assert cal.due_after_resume(due_at, paused_at, resumed_at, value=5, unit=unit) == expected


@pytest.mark.parametrize(
    ("resumed_at", "value", "unit", "expected"),
    [
        pytest.param(vn(2026, 2, 24, 9), 5, WD, vn(2026, 3, 4), id="restart-5-wd-after-tet"),
        pytest.param(vn(2026, 3, 13, 17, 30), 2, WD, vn(2026, 3, 19), id="restart-after-cutoff"),
        pytest.param(vn(2026, 3, 9, 15), 4, H, vn(2026, 3, 10, 10), id="restart-hours"),
    ],
)
def test_due_after_resume_restart(
    resumed_at: datetime, value: int, unit: TimeUnit, expected: datetime
) -> None:
    cal = WorkingCalendar(CalendarRules(supplement_policy="restart"), CalendarOverrides())
    original_due = vn(2026, 2, 25)
    paused_at = vn(2026, 2, 12, 10)
    assert cal.due_after_resume(original_due, paused_at, resumed_at, value=value, unit=unit) == (
        expected
    )


def test_due_after_resume_rejects_resume_before_pause(cal: WorkingCalendar) -> None:
    with pytest.raises(CalendarError, match="before paused_at"):
        cal.due_after_resume(
            vn(2026, 3, 17), vn(2026, 3, 10, 10), vn(2026, 3, 9, 10), value=5, unit=WD
        )


# -- input errors --------------------------------------------------------------------

NAIVE = datetime(2026, 3, 9, 10)
AWARE = vn(2026, 3, 9, 10)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        pytest.param(lambda c: c.receipt_date(NAIVE), "received_at", id="receipt_date"),
        pytest.param(lambda c: c.due_at(NAIVE, 1, WD), "received_at", id="due_at-days"),
        pytest.param(lambda c: c.due_at(NAIVE, 1, H), "received_at", id="due_at-hours"),
        pytest.param(lambda c: c.near_due_at(NAIVE, AWARE), "received_at", id="near-received"),
        pytest.param(lambda c: c.near_due_at(AWARE, NAIVE), "due_at", id="near-due"),
        pytest.param(
            lambda c: c.due_after_resume(NAIVE, AWARE, AWARE, value=1, unit=WD),
            "due_at",
            id="resume-due",
        ),
        pytest.param(
            lambda c: c.due_after_resume(AWARE, NAIVE, AWARE, value=1, unit=WD),
            "paused_at",
            id="resume-paused",
        ),
        pytest.param(
            lambda c: c.due_after_resume(AWARE, AWARE, NAIVE, value=1, unit=WD),
            "resumed_at",
            id="resume-resumed",
        ),
    ],
)
def test_naive_datetimes_are_rejected(cal: WorkingCalendar, call: Any, argument: str) -> None:
    with pytest.raises(ValueError, match=rf"{argument} must be timezone-aware") as info:
        call(cal)
    assert isinstance(info.value, CalendarError)
    assert isinstance(info.value, DomainError)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda c: c.is_working_day(date(1999, 12, 31)), "outside", id="before-years"),
        pytest.param(lambda c: c.add_working_days(date(2111, 12, 31), 1), "outside", id="past-end"),
        pytest.param(lambda c: c.add_working_days(date(2000, 1, 3), -1), "outside", id="pre-start"),
        pytest.param(lambda c: c.is_working_day(AWARE), "must be a date", id="datetime-for-date"),
    ],
)
def test_dates_outside_the_calendar(cal: WorkingCalendar, call: Any, match: str) -> None:
    with pytest.raises(CalendarError, match=match):
        call(cal)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"workday_start": time(17), "workday_end": time(8)}, "workday_start", id="hrs"
        ),
        pytest.param({"near_due_working_days": 0}, "near_due_working_days", id="near-due-zero"),
        pytest.param({"supplement_policy": "skip"}, "supplement_policy", id="bad-policy"),
    ],
)
def test_bad_rules(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(CalendarError, match=match):
        CalendarRules(**kwargs)


# -- overrides -----------------------------------------------------------------------


def test_override_day_off() -> None:
    cal = WorkingCalendar(overrides=CalendarOverrides(days_off=frozenset({date(2026, 3, 9)})))
    assert not cal.is_working_day(date(2026, 3, 9))
    assert cal.holiday_name(date(2026, 3, 9)) == OVERRIDE_DAY_OFF_NAME
    # Fri 6 Mar + 1 working day skips the weekend and the new day off: Tue 10 Mar.
    assert cal.due_at(vn(2026, 3, 6, 10), 1, WD) == vn(2026, 3, 11)


def test_override_working_day() -> None:
    cal = WorkingCalendar(overrides=CalendarOverrides(working_days=frozenset({date(2026, 3, 8)})))
    assert cal.is_working_day(date(2026, 3, 8))
    assert cal.due_at(vn(2026, 3, 6, 10), 1, WD) == vn(2026, 3, 9)  # Sun 8 Mar is the 1st day
    assert cal.receipt_date(vn(2026, 3, 7, 10)) == date(2026, 3, 8)


def test_override_not_day_off() -> None:
    # Hypothetical: were 24 Nov 2026 not given as a day off, it would be a plain Tuesday.
    cal = WorkingCalendar(overrides=CalendarOverrides(not_days_off=frozenset({date(2026, 11, 24)})))
    assert cal.is_working_day(date(2026, 11, 24))
    assert cal.holiday_name(date(2026, 11, 24)) is None


def test_overrides_from_dict_and_file(tmp_path: Path) -> None:
    data = {
        "notes": {"2026-03-09": "hypothetical announcement"},
        "days_off": ["2026-03-09"],
        "working_days": ["2026-03-08"],
        "not_days_off": [],
    }
    expected = CalendarOverrides(
        days_off=frozenset({date(2026, 3, 9)}), working_days=frozenset({date(2026, 3, 8)})
    )
    assert CalendarOverrides.from_dict(data) == expected
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_overrides(path) == expected


def test_packaged_overrides_load_and_are_the_default() -> None:
    assert isinstance(default_overrides(), CalendarOverrides)
    assert WorkingCalendar().overrides == default_overrides()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param({"days_off": ["2026-02-30"]}, r"days_off\[0\] = '2026-02-30'", id="no-30-feb"),
        pytest.param(
            {"working_days": ["2026-03-08", "8/3/2026"]},
            r"working_days\[1\] = '8/3/2026'",
            id="dmy",
        ),
        pytest.param({"days_off": ["20260309"]}, r"days_off\[0\] = '20260309'", id="compact-iso"),
        pytest.param({"not_days_off": [20261124]}, r"not_days_off\[0\] = 20261124", id="number"),
        pytest.param({"days_off": "2026-03-09"}, "days_off must be a list", id="not-a-list"),
        pytest.param({"holidays": []}, "unknown key.*'holidays'", id="unknown-key"),
        pytest.param({"notes": "x"}, "notes must be an object", id="notes-not-object"),
        pytest.param(
            {"days_off": ["2026-03-09"], "working_days": ["2026-03-09"]},
            "2026-03-09 listed in both days_off and working_days",
            id="conflict",
        ),
        pytest.param(["2026-03-09"], "expected a JSON object", id="not-an-object"),
    ],
)
def test_bad_override_entries(data: Any, match: str) -> None:
    with pytest.raises(CalendarError, match=match):
        CalendarOverrides.from_dict(data)


def test_bad_override_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"days_off": ["2026-13-01"]}', encoding="utf-8")
    with pytest.raises(CalendarError, match=r"bad\.json: .*days_off\[0\]"):
        load_overrides(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CalendarError, match=r"bad\.json: not valid JSON"):
        load_overrides(path)


def test_calendar_years_must_be_a_plain_range() -> None:
    with pytest.raises(CalendarError, match="years"):
        WorkingCalendar(overrides=CalendarOverrides(), years=range(2026, 2026))
    assert WorkingCalendar(overrides=CalendarOverrides(), years=range(2026, 2027)).is_working_day(
        date(2026, 2, 23)
    )
