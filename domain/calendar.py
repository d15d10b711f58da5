"""Working-day calendar (lịch làm việc) of Vietnam's public administration, and due instants.

Days off come from the `holidays` package (country VN: public holidays, substituted days
off, declared working Saturdays in its `weekend_workdays`) plus an override table for
announcements the installed release lacks (`domain/data/calendar_overrides.json`).

A date is a working day when, in this order: it is an override working day (yes); it is
an override day off, or a library holiday not listed in `not_days_off` (no); it is a
declared working Saturday or Sunday (yes); otherwise it is Monday to Friday.

Semantics:

- Every datetime argument must be timezone-aware (a naive one raises `CalendarError`, a
  `ValueError`, naming the argument); every returned datetime is aware, in `VN_TZ` (UTC+7).
- The calendar covers the years it was built for (by default 2000-2111: the contract's
  years 2000-2100 plus the longest time limit); a date outside them raises
  `CalendarError` rather than guessing. Years far ahead hold only the holidays the
  `holidays` package computes (fixed dates and the lunar new year); days off announced
  later go in the override table. Override dates outside those years are ignored.
- Effective receipt date: the local date of receipt, or the next working day when that
  date is a day off or the local time is at or after `receipt_cutoff`.
- `due_at` is an EXCLUSIVE instant: on time iff resolved_at < due_at; overdue iff
  now >= due_at while unresolved. For day units it is 00:00 of the day after the
  appointment date (ngày hẹn trả), so anything on the appointment date is on time.
- WORKING_DAYS (ngày làm việc): the clock starts the working day after the receipt
  date; appointment = the value-th working day after the receipt date.
- CALENDAR_DAYS (ngày): appointment = receipt date + value days, moved to the next
  working day when it is a day off.
- HOURS (giờ làm việc): working hours are [workday_start, workday_end) of working days,
  with no lunch break modelled, counted from the receipt instant (from the next
  working-hours start when received outside them). Decision: the receipt cut-off
  applies here too, so a receipt at or after the cut-off starts counting at the next
  working day's start. due_at is the instant at which `value` working hours have
  elapsed (8 hours from 09:00 is 17:00 the same day).
- Near-due (sắp trễ), day units: 00:00 of the N-th last working day on or before the
  appointment date (N = near_due_working_days; N = 1 is the appointment day itself),
  never earlier than received_at. HOURS: due minus 25% of the wall-clock time from
  received_at to due, rounded down to the second, never earlier than received_at.
  Decision: `near_due_at` takes an optional `unit`; without it a due instant at local
  midnight is taken as a day unit (an hour-unit due never falls at midnight unless the
  working day starts at 00:00).
- Supplement pause (chờ bổ sung), policy "pause": day units move the appointment on by
  the number of working days in (paused date, resumed date], local dates (a pause that
  starts and ends on the same day extends nothing; one across a holiday extends only by
  working days); this holds for CALENDAR_DAYS limits too. HOURS move due_at on by the
  working seconds between paused_at and resumed_at. Policy "restart": the full time
  limit counted again from resumed_at, as if it were a new receipt.
- `holiday_name` gives the library's Vietnamese names (language "vi") unless the
  calendar is built with another `language`.
- Decision: a due instant earlier than the receipt, or a resumption earlier than its
  pause, is an input error (`CalendarError`), not something to clamp.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from domain.errors import CalendarError
from schemas.enums import TimeUnit

__all__ = [
    "DEFAULT_OVERRIDES_PATH",
    "OVERRIDE_DAY_OFF_NAME",
    "VN_TZ",
    "CalendarOverrides",
    "CalendarRules",
    "WorkingCalendar",
    "default_overrides",
    "load_overrides",
]


def _vietnam_tz() -> tzinfo:
    try:
        return ZoneInfo("Asia/Ho_Chi_Minh")
    except ZoneInfoNotFoundError:  # no tz database on the host; Vietnam has no DST
        return timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


VN_TZ: tzinfo = _vietnam_tz()
# Found through the package, not this file: compiled (common.native), this module's file
# lies outside the source tree.
DEFAULT_OVERRIDES_PATH = Path(str(files("domain").joinpath("data", "calendar_overrides.json")))
# Name `holiday_name` gives to a day off that only the override table knows.
OVERRIDE_DAY_OFF_NAME = "Ngày nghỉ (theo thông báo bổ sung)"

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OVERRIDE_LISTS = ("days_off", "working_days", "not_days_off")
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CalendarRules:
    """Settings of the deadline rules that the law leaves to the province or to us."""

    receipt_cutoff: time | None = time(17, 0)
    workday_start: time = time(8, 0)
    workday_end: time = time(17, 0)
    near_due_working_days: int = 1
    supplement_policy: Literal["pause", "restart"] = "pause"

    def __post_init__(self) -> None:
        for name in ("receipt_cutoff", "workday_start", "workday_end"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, time) or value.tzinfo is not None):
                raise CalendarError(
                    f"CalendarRules.{name} must be a naive local time, got {value!r}"
                )
        if self.workday_start >= self.workday_end:
            raise CalendarError(
                f"CalendarRules.workday_start ({self.workday_start}) must be before "
                f"workday_end ({self.workday_end})"
            )
        if isinstance(self.near_due_working_days, bool) or not isinstance(
            self.near_due_working_days, int
        ):
            raise CalendarError("CalendarRules.near_due_working_days must be an int")
        if self.near_due_working_days < 1:
            raise CalendarError(
                "CalendarRules.near_due_working_days must be >= 1, "
                f"got {self.near_due_working_days}"
            )
        if self.supplement_policy not in ("pause", "restart"):
            raise CalendarError(
                "CalendarRules.supplement_policy must be 'pause' or 'restart', "
                f"got {self.supplement_policy!r}"
            )


@dataclass(frozen=True)
class CalendarOverrides:
    """Announcements the `holidays` release lacks: extra days off and working days."""

    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    not_days_off: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        for a, b in (("days_off", "working_days"), ("days_off", "not_days_off")):
            both = getattr(self, a) & getattr(self, b)
            if both:
                listed = ", ".join(d.isoformat() for d in sorted(both))
                raise CalendarError(f"calendar overrides: {listed} listed in both {a} and {b}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalendarOverrides:
        """Parse {"days_off": [...], "working_days": [...], "not_days_off": [...], "notes": {}}.

        Dates are "YYYY-MM-DD" strings; errors name the list and index of the bad entry.
        """
        if not isinstance(data, Mapping):
            raise CalendarError(
                f"calendar overrides: expected a JSON object, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - {*_OVERRIDE_LISTS, "notes"})
        if unknown:
            raise CalendarError(
                f"calendar overrides: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"expected {', '.join(_OVERRIDE_LISTS)}, notes"
            )
        notes = data.get("notes", {})
        if not isinstance(notes, Mapping):
            raise CalendarError("calendar overrides: notes must be an object")
        parsed = {key: _parse_dates(key, data.get(key, [])) for key in _OVERRIDE_LISTS}
        return cls(**parsed)


def _parse_dates(key: str, entries: object) -> frozenset[date]:
    if not isinstance(entries, list):
        raise CalendarError(f"calendar overrides: {key} must be a list of YYYY-MM-DD dates")
    out: set[date] = set()
    for i, entry in enumerate(entries):
        if isinstance(entry, date) and not isinstance(entry, datetime):
            out.add(entry)
            continue
        try:
            if not isinstance(entry, str) or not _ISO_DATE.fullmatch(entry):
                raise ValueError("not in YYYY-MM-DD form")
            out.add(date.fromisoformat(entry))
        except ValueError as exc:
            raise CalendarError(
                f"calendar overrides: {key}[{i}] = {entry!r} is not a date ({exc})"
            ) from exc
    return frozenset(out)


def load_overrides(path: Path | str) -> CalendarOverrides:
    """Read an override table from a JSON file; errors name the file and the bad entry."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CalendarError(f"{p}: not valid JSON: {exc}") from exc
    try:
        return CalendarOverrides.from_dict(data)
    except CalendarError as exc:
        raise CalendarError(f"{p}: {exc}") from exc


@cache
def default_overrides() -> CalendarOverrides:
    """The packaged override table (read once)."""
    return load_overrides(DEFAULT_OVERRIDES_PATH)


DEFAULT_RULES = CalendarRules()
# The event contract accepts dates in the years 2000-2100, and a time limit may reach up
# to 3,650 days (ten years) past its receipt: the calendar covers every date an accepted
# event can lead to, so no valid event meets a date the calendar cannot judge.
CONTRACT_YEARS = range(2000, 2101)
MAX_LIMIT_YEARS = 11
DEFAULT_YEARS = range(CONTRACT_YEARS.start, CONTRACT_YEARS.stop + MAX_LIMIT_YEARS)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=VN_TZ)


def _as_unit(unit: TimeUnit | str) -> TimeUnit:
    if isinstance(unit, TimeUnit):
        return unit  # what `TimeUnit(unit)` returns, without an Enum call (every event)
    try:
        return TimeUnit(unit)
    except ValueError as exc:
        raise CalendarError(f"unit {unit!r} is not one of {[u.value for u in TimeUnit]}") from exc


class WorkingCalendar:
    """Working days, receipt dates and due instants for the years it was built for."""

    def __init__(
        self,
        rules: CalendarRules = DEFAULT_RULES,
        overrides: CalendarOverrides | None = None,
        years: range = DEFAULT_YEARS,
        *,
        language: str = "vi",
    ) -> None:
        if len(years) == 0 or years.step != 1:
            raise CalendarError(f"years must be a non-empty range with step 1, got {years!r}")
        self.rules = rules
        self.overrides = default_overrides() if overrides is None else overrides
        self.years = years
        self._first = date(years[0], 1, 1)
        self._last = date(years[-1], 12, 31)

        ov = self.overrides
        lib = holidays.country_holidays("VN", years=years, language=language, expand=False)
        names: dict[date, str] = {
            d: str(name) for d, name in lib.items() if d not in ov.not_days_off
        }
        for d in ov.days_off:
            names.setdefault(d, OVERRIDE_DAY_OFF_NAME)
        for d in ov.working_days:
            names.pop(d, None)
        self._names = {d: n for d, n in names.items() if self._first <= d <= self._last}
        declared = set(lib.weekend_workdays) | ov.working_days

        working: list[date] = []
        d = self._first
        while d <= self._last:
            if d in ov.working_days or (
                d not in self._names and (d in declared or d.weekday() < 5)
            ):
                working.append(d)
            d += _ONE_DAY
        self._working = working
        self._working_set = frozenset(working)
        # Day-unit near-due starts depend on the due instant alone; most dossiers share
        # a few midnights, so each is worked out once.
        self._near_by_due: dict[datetime, datetime] = {}

    # -- days -----------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """True if d is a working day (ngày làm việc)."""
        return self._check_date(d, "d") in self._working_set

    def holiday_name(self, d: date) -> str | None:
        """Name of the public holiday or day off on d, if any (Vietnamese by default)."""
        return self._names.get(self._check_date(d, "d"))

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after d."""
        return self.add_working_days(d, 1)

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after d (before d if n < 0); n == 0: d, or the next working day."""
        self._check_date(d, "d")
        if n == 0:
            return d if d in self._working_set else self.add_working_days(d, 1)
        i = bisect_right(self._working, d) + n - 1 if n > 0 else bisect_left(self._working, d) + n
        if not 0 <= i < len(self._working):
            raise CalendarError(
                f"{n} working day(s) from {d} falls outside the calendar's years "
                f"{self.years[0]}-{self.years[-1]}"
            )
        return self._working[i]

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in the half-open range (start, end]; negative if end < start."""
        self._check_date(start, "start")
        self._check_date(end, "end")
        return bisect_right(self._working, end) - bisect_right(self._working, start)

    def receipt_date(self, received_at: datetime) -> date:
        """Receipt date: a day off or a time past the cut-off moves to the next working day."""
        local = self._local(received_at, "received_at")
        d = local.date()
        cutoff = self.rules.receipt_cutoff
        if self.is_working_day(d) and (cutoff is None or local.time() < cutoff):
            return d
        return self.next_working_day(d)

    def appointment_date(self, due_at: datetime) -> date:
        """Appointment date (ngày hẹn trả) of an exclusive due instant: the last date before it."""
        local = self._local(due_at, "due_at")
        return (local - timedelta(microseconds=1)).date()

    # -- due instants -----------------------------------------------------------

    def due_at(self, received_at: datetime, value: int, unit: TimeUnit) -> datetime:
        """Exclusive due instant of a time limit of `value` `unit`s received at received_at."""
        local = self._local(received_at, "received_at")
        unit = _as_unit(unit)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CalendarError(f"value must be an int >= 0, got {value!r}")
        if unit is TimeUnit.HOURS:
            return self._add_working_time(self._hours_start(local), timedelta(hours=value))
        received = self.receipt_date(local)
        if unit is TimeUnit.WORKING_DAYS:
            appointment = self.add_working_days(received, value)
        else:
            appointment = self.add_working_days(received + timedelta(days=value), 0)
        return _midnight(appointment + _ONE_DAY)

    def near_due_at(
        self, received_at: datetime, due_at: datetime, *, unit: TimeUnit | None = None
    ) -> datetime:
        """Start of near-due (sắp trễ). unit None: a due at local midnight means day units."""
        received = self._local(received_at, "received_at")
        due = self._local(due_at, "due_at")
        if due < received:
            raise CalendarError(f"due_at {due.isoformat()} is before received_at {received}")
        hours = due.time() != time(0) if unit is None else _as_unit(unit) is TimeUnit.HOURS
        if hours:
            near = (due - (due - received) / 4).replace(microsecond=0)
        else:
            cached = self._near_by_due.get(due)
            if cached is None:
                day_after = self.appointment_date(due) + _ONE_DAY
                n = self.rules.near_due_working_days
                cached = _midnight(self.add_working_days(day_after, -n))
                if len(self._near_by_due) < 100_000:
                    self._near_by_due[due] = cached
            near = cached
        return max(near, received)

    def due_after_resume(
        self,
        due_at: datetime,
        paused_at: datetime,
        resumed_at: datetime,
        *,
        value: int,
        unit: TimeUnit,
    ) -> datetime:
        """Due instant after a supplement pause, per `rules.supplement_policy`."""
        due = self._local(due_at, "due_at")
        paused = self._local(paused_at, "paused_at")
        resumed = self._local(resumed_at, "resumed_at")
        unit = _as_unit(unit)
        if resumed < paused:
            raise CalendarError(
                f"resumed_at {resumed.isoformat()} is before paused_at {paused.isoformat()}"
            )
        if self.rules.supplement_policy == "restart":
            return self.due_at(resumed, value, unit)
        if unit is TimeUnit.HOURS:
            return self._add_working_time(due, self._working_time(paused, resumed))
        extra = self.working_days_between(paused.date(), resumed.date())
        if extra == 0:
            return due
        return _midnight(self.add_working_days(self.appointment_date(due), extra) + _ONE_DAY)

    # -- helpers ----------------------------------------------------------------

    def _check_date(self, d: date, name: str) -> date:
        if isinstance(d, datetime) or not isinstance(d, date):
            raise CalendarError(f"{name} must be a date, got {type(d).__name__} {d!r}")
        if not self._first <= d <= self._last:
            raise CalendarError(
                f"{name} {d} is outside the calendar's years {self.years[0]}-{self.years[-1]}"
            )
        return d

    @staticmethod
    def _local(value: datetime, name: str) -> datetime:
        if not isinstance(value, datetime):
            raise CalendarError(f"{name} must be a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise CalendarError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
        return value.astimezone(VN_TZ)

    def _at(self, d: date, t: time) -> datetime:
        return datetime.combine(d, t, tzinfo=VN_TZ)

    def _hours_start(self, local: datetime) -> datetime:
        """When hour counting starts for a receipt at `local`."""
        start = self.rules.workday_start
        received = self.receipt_date(local)
        if received != local.date() or local.time() < start:
            return self._at(received, start)
        if local.time() >= self.rules.workday_end:
            return self._at(self.next_working_day(received), start)
        return local

    def _add_working_time(self, at: datetime, amount: timedelta) -> datetime:
        """The instant `amount` of working time after `at` (at itself when amount is zero)."""
        start, end = self.rules.workday_start, self.rules.workday_end
        remaining = amount
        cur = at
        while remaining > timedelta(0):
            d = cur.date()
            if not self.is_working_day(d) or cur.time() >= end:
                cur = self._at(self.next_working_day(d), start)
                continue
            if cur.time() < start:
                cur = self._at(d, start)
            available = self._at(d, end) - cur
            if remaining <= available:
                return cur + remaining
            remaining -= available
            cur = self._at(self.next_working_day(d), start)
        return cur

    def _working_time(self, a: datetime, b: datetime) -> timedelta:
        """Working time inside [a, b)."""
        total = timedelta(0)
        if b <= a:
            return total
        self._check_date(a.date(), "paused_at")
        self._check_date(b.date(), "resumed_at")
        lo = bisect_left(self._working, a.date())
        hi = bisect_right(self._working, b.date())
        for d in self._working[lo:hi]:
            begin = max(a, self._at(d, self.rules.workday_start))
            finish = min(b, self._at(d, self.rules.workday_end))
            if finish > begin:
                total += finish - begin
        return total
