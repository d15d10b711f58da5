"""Brute-force reference of the live figures, straight from a list of events: the tests' truth.

The simulator's own "truth" (producers/truth.py, from the plans of producers/simulator.py)
computes every deadline with the worker's calendar, `domain.calendar.WorkingCalendar`, so
a calendar bug would be in both; the truth the tests compare the worker with is this
module, which imports nothing from domain/, stream_apps/ or producers/ (from schemas/ only
the event model and its enums).

It states every rule again, slowly and plainly: a working-day calendar that counts days one
by one (read from the `holidays` package and the JSON override table as data), a
lifecycle that replays each dossier's events, and the figures, each a loop over every
dossier. Tests compare `FigureBook` (and the worker's Redis) against it and expect EQUAL
results.

Calendar (the rules of domain/calendar.py's docstring, with its default settings):
- A date is a working day when, in this order: it is an override working day (yes); it
  is an override day off, or a library holiday not listed in `not_days_off` (no); it is a
  declared weekend working day of the library (yes); otherwise it is Monday to Friday.
- Receipt date: the local (UTC+7) date of receipt, or the next working day when that date
  is a day off or the local time is at or after the 17:00 cut-off.
- Due instants are exclusive (on time iff resolved before it). Working days: 00:00 of the
  day after the value-th working day after the receipt date. Calendar days: receipt date
  + value days, moved on to the next working day when that is a day off; due 00:00 of the
  day after. Hours: working hours are 08:00-17:00 of working days (no lunch break),
  counted from the receipt instant, or from 08:00 of the receipt date when received
  outside them; due when `value` working hours have elapsed.
- Near-due (sắp trễ): day units, 00:00 of the last (1st last) working day on or before
  the appointment date; hours, due minus a quarter of the wall-clock time from receipt
  to due, rounded down to the second; never before the receipt.
- Supplement answered with `resume`: day units move the appointment date on by the
  working days in (paused date, resumed date]; hours move the due instant on by the
  working time in [paused, resumed). With `restart`: the full limit counted again from
  the resumption, as a new receipt.

Lifecycle (per dossier; the reference receives contract-valid `DossierEvent`s only):
1. Events apply in sequence order. Of several messages with one sequence, the first
   received (list order) that is this dossier's event counts; later ones change nothing.
2. An event impossible from the current status (`ALLOWED_NEXT`) is rejected; it still
   uses up its sequence.
3. Identity: the first applied event fixes agency (code, level), procedure (code, field),
   channel and online mode. A later event whose procedure, channel or online mode
   differs, or whose agency differs unless it is `transferred`, is a conflict: it is not
   this dossier's event, changes nothing and does not use up its sequence (so a later
   message with that sequence may still count). A `transferred` event naming another
   agency moves the dossier there: it counts under that agency and level for
   everything, as if it had always been there. `transferred` and `apology_issued` never
   change the status.
4. An event earlier than the latest occurred_at already applied to the dossier is applied
   at that latest time.
5. `supplement_requested` at p stops the deadline only if p < due. Otherwise the dossier
   stays overdue: its due instant stays, through the pause and the answer (resume and
   restart move nothing), it counts in overdue_now while waiting, and it became overdue at
   that due instant. Every request counts toward the second-supplement rule.
6. A sequence that never arrives is skipped: the present sequences apply in order.
7. With `now`, events whose occurred_at is more than `future_tolerance_s` after it are
   dropped before anything else (dead letters, never counted).

Figures (the contract of domain/figures.py, restated):
- A dossier counts once received (accepted) in agency:{code}, level:{level},
  field:{field} and city, with its agency and level after any transfer.
- Instants in whole epoch seconds: receipt and resolution rounded down, due and near-due
  instants rounded up. On time iff resolved before the due instant (exact), and late
  anyway after two or more supplement requests (when that rule is on).
- Paused (the deadline stopped, rule 5): no due instant, no near-due instant, never
  overdue, no became-overdue instant. Near-due is only kept for open, unpaused dossiers,
  and is at most the due instant (it is the due instant when the due is before receipt).
- Became overdue at the due instant if it was still unresolved then (resolution or
  closure at or after the due instant, or neither yet).
- Gauges at T over open dossiers: overdue = unpaused with due <= T; near-due = unpaused
  with near <= T < due; not yet due = open - overdue.
- Windows at T count instants x with start <= x <= T: 1h from the start of the minute
  59 minutes before T's minute; 24h / 7d / 30d from the start of the hour 23 / 167 / 719
  hours before T's hour; mtd / qtd / ytd from Vietnam midnight of the first day of T's
  month / quarter / year.
- Ratios: online = (full + partial) / received, full online = full / received,
  on time (766) = (on time + not yet due) / (on time + late + open); "" when the
  denominator is 0, otherwise 6 decimals rounded half up.
- Series: hour buckets of the last 168 hours and Vietnam-day buckets of the last 90
  days, both ending at T, of instants <= T; zero buckets left out; JSON objects.
"""

from __future__ import annotations

import calendar as _cal
import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import holidays

from schemas.enums import TimeUnit
from schemas.events import DossierEvent

# -- the calendar ---------------------------------------------------------------------

VN = timezone(timedelta(hours=7))  # Vietnam: UTC+7 all year, no daylight saving
# The settings of domain/calendar.py's CalendarRules defaults, stated again here.
RECEIPT_CUTOFF = time(17, 0)
WORK_START = time(8, 0)
WORK_END = time(17, 0)
NEAR_DUE_WORKING_DAYS = 1
# The contract's years (2000-2100) and up to 11 years of time limit after them.
YEARS = range(2000, 2112)
OVERRIDES_FILE = Path(__file__).resolve().parents[1] / "domain" / "data" / "calendar_overrides.json"
ONE_DAY = timedelta(days=1)


def midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=VN)


def at_time(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=VN)


def local(dt: datetime) -> datetime:
    assert dt.tzinfo is not None, f"naive datetime {dt}"
    return dt.astimezone(VN)


class ReferenceCalendar:
    """Working days of Vietnam's public administration, counted one day at a time."""

    def __init__(self, overrides_file: Path = OVERRIDES_FILE, years: range = YEARS) -> None:
        with open(overrides_file, encoding="utf-8") as fh:
            table = json.load(fh)
        self.override_working_days = {date.fromisoformat(s) for s in table.get("working_days", [])}
        self.override_days_off = {date.fromisoformat(s) for s in table.get("days_off", [])}
        self.not_days_off = {date.fromisoformat(s) for s in table.get("not_days_off", [])}
        library = holidays.country_holidays("VN", years=years, language="vi", expand=False)
        self.library_days_off = set(library.keys())
        self.weekend_workdays = set(library.weekend_workdays)
        self.first = date(years[0], 1, 1)
        self.last = date(years[-1], 12, 31)
        self._working: dict[date, bool] = {}
        self._after: dict[tuple[date, int], date] = {}
        self._dues: dict[tuple[date, int, TimeUnit], datetime] = {}

    # -- days --

    def is_working_day(self, d: date) -> bool:
        known = self._working.get(d)
        if known is not None:
            return known
        if not self.first <= d <= self.last:
            raise ValueError(f"{d} is outside the reference calendar's years")
        if d in self.override_working_days:
            working = True
        elif d in self.override_days_off or (
            d in self.library_days_off and d not in self.not_days_off
        ):
            working = False
        elif d in self.weekend_workdays:
            working = True
        else:
            working = d.weekday() < 5  # Monday to Friday
        self._working[d] = working
        return working

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after d."""
        d += ONE_DAY
        while not self.is_working_day(d):
            d += ONE_DAY
        return d

    def working_day_on_or_after(self, d: date) -> date:
        return d if self.is_working_day(d) else self.next_working_day(d)

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after d (n >= 1), counted one by one."""
        key = (d, n)
        if key not in self._after:
            day, counted = d, 0
            while counted < n:
                day += ONE_DAY
                if self.is_working_day(day):
                    counted += 1
            self._after[key] = day
        return self._after[key]

    def last_working_days_back(self, d: date, n: int) -> date:
        """The n-th last working day on or before d (n = 1: d itself if it is one)."""
        day, counted = d, 0
        while True:
            if self.is_working_day(day):
                counted += 1
                if counted == n:
                    return day
            day -= ONE_DAY

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]."""
        count, day = 0, start + ONE_DAY
        while day <= end:
            if self.is_working_day(day):
                count += 1
            day += ONE_DAY
        return count

    # -- receipt and working time --

    def receipt_date(self, received_at: datetime) -> date:
        here = local(received_at)
        d = here.date()
        if self.is_working_day(d) and here.time() < RECEIPT_CUTOFF:
            return d
        return self.next_working_day(d)

    def hours_start(self, received_at: datetime) -> datetime:
        """When working hours start counting for a receipt."""
        here = local(received_at)
        received = self.receipt_date(here)
        if received != here.date() or here.time() < WORK_START:
            return at_time(received, WORK_START)
        if here.time() >= WORK_END:
            return at_time(self.next_working_day(received), WORK_START)
        return here

    def add_working_time(self, at: datetime, amount: timedelta) -> datetime:
        """The instant at which `amount` of working time after `at` has elapsed."""
        at = local(at)
        if amount <= timedelta(0):
            return at
        remaining = amount
        day, cur = at.date(), at
        while True:
            if self.is_working_day(day):
                begin = max(cur, at_time(day, WORK_START))
                end = at_time(day, WORK_END)
                if begin < end:
                    if remaining <= end - begin:
                        return begin + remaining
                    remaining -= end - begin
            day += ONE_DAY
            cur = midnight(day)

    def working_time(self, a: datetime, b: datetime) -> timedelta:
        """Working time inside [a, b)."""
        a, b = local(a), local(b)
        total = timedelta(0)
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                begin = max(a, at_time(day, WORK_START))
                end = min(b, at_time(day, WORK_END))
                if end > begin:
                    total += end - begin
            day += ONE_DAY
        return total

    # -- due instants --

    def due_at(self, received_at: datetime, value: int, unit: TimeUnit) -> datetime:
        """Exclusive due instant of a limit of `value` `unit`s received at received_at."""
        unit = TimeUnit(unit)
        if unit is TimeUnit.HOURS:
            return self.add_working_time(self.hours_start(received_at), timedelta(hours=value))
        received = self.receipt_date(received_at)
        key = (received, value, unit)
        if key not in self._dues:
            if unit is TimeUnit.WORKING_DAYS:
                appointment = self.add_working_days(received, value)
            else:
                appointment = self.working_day_on_or_after(received + timedelta(days=value))
            self._dues[key] = midnight(appointment + ONE_DAY)
        return self._dues[key]

    @staticmethod
    def appointment_date(due_at: datetime) -> date:
        """The last date before an exclusive due instant."""
        return (local(due_at) - timedelta(microseconds=1)).date()

    def near_due_at(self, received_at: datetime, due_at: datetime, unit: TimeUnit) -> datetime:
        received, due = local(received_at), local(due_at)
        if TimeUnit(unit) is TimeUnit.HOURS:
            span_us = (due - received) // timedelta(microseconds=1)
            due_us = (due - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            near_s = (4 * due_us - span_us) // 4_000_000  # due - span/4, down to the second
            near = datetime.fromtimestamp(near_s, VN)
        else:
            last = self.appointment_date(due)
            near = midnight(self.last_working_days_back(last, NEAR_DUE_WORKING_DAYS))
        return max(near, received)

    def due_after_resume(
        self, due_at: datetime, paused_at: datetime, resumed_at: datetime, unit: TimeUnit
    ) -> datetime:
        """Due instant after a pause answered with `resume`."""
        if TimeUnit(unit) is TimeUnit.HOURS:
            return self.add_working_time(due_at, self.working_time(paused_at, resumed_at))
        extra = self.working_days_between(local(paused_at).date(), local(resumed_at).date())
        if extra == 0:
            return local(due_at)
        moved = self.add_working_days(self.appointment_date(due_at), extra)
        return midnight(moved + ONE_DAY)

    def due_after_restart(self, resumed_at: datetime, value: int, unit: TimeUnit) -> datetime:
        """Due instant after a pause answered with `restart`: a new receipt at resumed_at."""
        return self.due_at(resumed_at, value, unit)


_DEFAULT_CALENDAR: list[ReferenceCalendar] = []


def default_calendar() -> ReferenceCalendar:
    if not _DEFAULT_CALENDAR:
        _DEFAULT_CALENDAR.append(ReferenceCalendar())
    return _DEFAULT_CALENDAR[0]


# -- the lifecycle --------------------------------------------------------------------

# Event types each status allows next; None: nothing applied yet. 3, 7, 8, 10 are final.
_WHILE_OPEN = {
    "processing",
    "supplement_requested",
    "fee_requested",
    "resolved",
    "withdrawn",
    "stopped",
    "transferred",
    "apology_issued",
}
ALLOWED_NEXT: dict[int | None, set[str]] = {
    None: {"submitted", "accepted", "refused"},
    1: {"accepted", "refused", "withdrawn"},
    2: _WHILE_OPEN,
    3: set(),
    4: _WHILE_OPEN,
    5: {"supplement_received", "withdrawn", "stopped", "transferred", "apology_issued"},
    6: {"fee_paid", "resolved", "withdrawn", "stopped", "transferred", "apology_issued"},
    7: set(),
    8: set(),
    9: {"returned"},
    10: set(),
}
NO_STATUS_CHANGE = {"transferred", "apology_issued"}


@dataclass
class RefDossier:
    """One dossier as the reference replays it."""

    dossier_id: str
    agency: str | None = None
    level: str | None = None
    procedure: str | None = None
    field: str | None = None
    channel: str | None = None
    online_mode: str | None = None
    status: int | None = None
    latest_at: datetime | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None  # kept while paused; hidden from the figures then
    limit_value: int | None = None
    limit_unit: TimeUnit | None = None
    paused_at: datetime | None = None  # the deadline stopped (a pause made before due)
    supplements: int = 0
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    applied: list[int] = dataclasses.field(default_factory=list)  # sequences applied
    rejected: list[int] = dataclasses.field(default_factory=list)  # sequences used up, impossible
    conflicts: list[DossierEvent] = dataclasses.field(default_factory=list)  # not this dossier's
    clamped: list[int] = dataclasses.field(
        default_factory=list
    )  # sequences applied at an earlier time

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @property
    def is_open(self) -> bool:
        return self.received_at is not None and self.resolved_at is None and self.closed_at is None

    @property
    def channel_kind(self) -> str:
        if self.channel == "online":
            return "online_full" if self.online_mode == "full" else "online_partial"
        return str(self.channel)

    def is_conflict(self, e: DossierEvent) -> bool:
        if self.status is None:
            return False  # nothing applied yet: the identity is not fixed
        if (e.procedure.code, e.procedure.field.value) != (self.procedure, self.field):
            return True
        mode = None if e.online_mode is None else e.online_mode.value
        if (e.channel.value, mode) != (self.channel, self.online_mode):
            return True
        same_agency = (e.agency.code, e.agency.level.value) == (self.agency, self.level)
        return not same_agency and e.event_type != "transferred"

    def apply(self, e: DossierEvent, calendar: ReferenceCalendar) -> None:
        """Apply (or reject) this dossier's event for its sequence."""
        kind = e.event_type.value
        if kind not in ALLOWED_NEXT[self.status]:
            self.rejected.append(e.sequence)
            return
        at = e.occurred_at
        if self.latest_at is not None and at < self.latest_at:
            at = self.latest_at
            self.clamped.append(e.sequence)
        self.latest_at = at
        if self.status is None:
            self.agency, self.level = e.agency.code, e.agency.level.value
            self.procedure, self.field = e.procedure.code, e.procedure.field.value
            self.channel = e.channel.value
            self.online_mode = None if e.online_mode is None else e.online_mode.value
        if kind == "accepted":
            assert e.appointment_at is not None and e.time_limit is not None
            self.received_at = at
            self.limit_value, self.limit_unit = e.time_limit.value, e.time_limit.unit
            appointment = local(e.appointment_at)
            if self.limit_unit is TimeUnit.HOURS:
                self.due_at = appointment  # an hour limit falls due at the appointment instant
            else:  # a day limit: on time through the whole appointment date
                self.due_at = midnight(appointment.date() + ONE_DAY)
        elif kind == "supplement_requested":
            self.supplements += 1
            if self.due_at is None or at < self.due_at:
                self.paused_at = at  # otherwise already overdue: it stays overdue (rule 5)
        elif kind == "supplement_received":
            if self.paused_at is not None and self.due_at is not None:
                assert self.limit_value is not None and self.limit_unit is not None
                if e.clock is not None and e.clock.value == "restart":
                    self.due_at = calendar.due_after_restart(at, self.limit_value, self.limit_unit)
                else:
                    self.due_at = calendar.due_after_resume(
                        self.due_at, self.paused_at, at, self.limit_unit
                    )
            self.paused_at = None
        elif kind == "transferred":
            self.agency, self.level = e.agency.code, e.agency.level.value
        elif kind == "resolved":
            self.resolved_at = at
        elif kind in ("refused", "withdrawn", "stopped"):
            self.closed_at = at
        if kind not in NO_STATUS_CHANGE:
            self.status = int(e.status)
        self.applied.append(e.sequence)


FUTURE_TOLERANCE_S = 300


def final_states(
    events: Iterable[DossierEvent],
    *,
    now: int | None = None,
    future_tolerance_s: float = FUTURE_TOLERANCE_S,
) -> dict[str, RefDossier]:
    """Each dossier after its events, by the rules above (`now`: epoch seconds)."""
    calendar = default_calendar()
    limit = None
    if now is not None:
        limit = datetime.fromtimestamp(now, UTC) + timedelta(seconds=future_tolerance_s)
    by_dossier: dict[str, dict[int, list[DossierEvent]]] = {}
    for e in events:
        if limit is not None and e.occurred_at > limit:
            continue  # from the future: a dead letter
        by_dossier.setdefault(e.dossier_id, {}).setdefault(e.sequence, []).append(e)
    states = {}
    for dossier_id, by_sequence in by_dossier.items():
        dossier = RefDossier(dossier_id)
        for seq in sorted(by_sequence):
            for candidate in by_sequence[seq]:  # in the order received
                if dossier.is_conflict(candidate):
                    dossier.conflicts.append(candidate)
                    continue
                dossier.apply(candidate, calendar)
                break  # the sequence is used up; later messages with it change nothing
        states[dossier_id] = dossier
    return states


# -- facts of one dossier -------------------------------------------------------------


def _down(dt: datetime) -> int:
    return _cal.timegm(dt.utctimetuple())


def _up(dt: datetime) -> int:
    return _down(dt) + (1 if dt.microsecond else 0)


@dataclass
class RefFacts:
    scopes: list[str]
    channel: str
    received: int
    resolved: int | None
    on_time: bool | None
    open: bool
    paused: bool
    due: int | None
    near: int | None
    became: int | None


def reference_facts(
    state: RefDossier,
    calendar: ReferenceCalendar | None = None,
    *,
    second_supplement_late: bool = True,
) -> RefFacts | None:
    if state.received_at is None:
        return None
    cal = calendar or default_calendar()
    on_time = None
    if state.resolved_at is not None:
        if second_supplement_late and state.supplements >= 2:
            on_time = False
        else:
            on_time = state.due_at is not None and state.resolved_at < state.due_at
    is_open = state.is_open
    due = near = became = None
    if not state.paused and state.due_at is not None:
        due = _up(state.due_at)
        end = state.resolved_at or state.closed_at
        if end is None or end >= state.due_at:
            became = due
        if is_open:
            if state.due_at < state.received_at:
                near = due
            else:
                assert state.limit_unit is not None
                near_dt = cal.near_due_at(state.received_at, state.due_at, state.limit_unit)
                near = min(_up(near_dt), due)
    return RefFacts(
        scopes=[
            "agency:" + str(state.agency),
            "level:" + str(state.level),
            "field:" + str(state.field),
            "city",
        ],
        channel=state.channel_kind,
        received=_down(state.received_at),
        resolved=None if state.resolved_at is None else _down(state.resolved_at),
        on_time=on_time,
        open=is_open,
        paused=state.paused,
        due=due,
        near=near,
        became=became,
    )


def all_facts(
    events: Iterable[DossierEvent],
    *,
    second_supplement_late: bool = True,
    now: int | None = None,
    future_tolerance_s: float = FUTURE_TOLERANCE_S,
) -> list[RefFacts]:
    out = []
    states = final_states(events, now=now, future_tolerance_s=future_tolerance_s)
    for state in states.values():
        f = reference_facts(state, second_supplement_late=second_supplement_late)
        if f is not None:
            out.append(f)
    return out


# -- figures --------------------------------------------------------------------------

WINDOW_NAMES = ["1h", "24h", "7d", "30d", "mtd", "qtd", "ytd"]
COUNTS = [
    "received_total",
    "received_in_person",
    "received_online_full",
    "received_online_partial",
    "received_post",
    "resolved_on_time",
    "resolved_late",
    "became_overdue",
]


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def window_starts(t: int) -> dict[str, int]:
    now = datetime.fromtimestamp(t, VN)
    minute = now.replace(second=0, microsecond=0)
    hour = minute.replace(minute=0)
    midnight_today = hour.replace(hour=0)
    first_month_of_quarter = 3 * ((now.month - 1) // 3) + 1
    return {
        "1h": _epoch(minute - timedelta(minutes=59)),
        "24h": _epoch(hour - timedelta(hours=23)),
        "7d": _epoch(hour - timedelta(hours=167)),
        "30d": _epoch(hour - timedelta(hours=719)),
        "mtd": _epoch(midnight_today.replace(day=1)),
        "qtd": _epoch(midnight_today.replace(month=first_month_of_quarter, day=1)),
        "ytd": _epoch(midnight_today.replace(month=1, day=1)),
    }


def _instants(f: RefFacts) -> list[tuple[str, int]]:
    """(metric, instant) pairs of one dossier for the windowed counts."""
    pairs = [("received_total", f.received), ("received_" + f.channel, f.received)]
    if f.resolved is not None:
        pairs.append(("resolved_on_time" if f.on_time else "resolved_late", f.resolved))
    if f.became is not None:
        pairs.append(("became_overdue", f.became))
    return pairs


def _ratio_text(num: int, den: int) -> str:
    if den == 0:
        return ""
    scaled = Fraction(num, den) * 1_000_000
    rounded = math.floor(scaled + Fraction(1, 2))
    whole, frac = divmod(rounded, 1_000_000)
    return str(whole) + "." + str(frac).rjust(6, "0")


def _by_scope(facts: list[RefFacts]) -> dict[str, list[RefFacts]]:
    out: dict[str, list[RefFacts]] = {}
    for f in facts:
        for scope in f.scopes:
            out.setdefault(scope, []).append(f)
    return dict(sorted(out.items()))


def snapshots_from_facts(facts: list[RefFacts], t: int) -> dict[str, dict[str, str]]:
    starts = window_starts(t)
    out: dict[str, dict[str, str]] = {}
    for scope, mine in _by_scope(facts).items():
        open_now = sum(1 for f in mine if f.open)
        overdue = 0
        near = 0
        for f in mine:
            if f.open and not f.paused and f.due is not None:
                if f.due <= t:
                    overdue += 1
                elif f.near is not None and f.near <= t:
                    near += 1
        not_yet = open_now - overdue
        fields = {
            "open_now": str(open_now),
            "overdue_now": str(overdue),
            "near_due_now": str(near),
            "not_yet_due_now": str(not_yet),
        }
        for w in WINDOW_NAMES:
            counts = dict.fromkeys(COUNTS, 0)
            for f in mine:
                for metric, x in _instants(f):
                    if starts[w] <= x <= t:
                        counts[metric] += 1
            for metric in COUNTS:
                fields[w + "." + metric] = str(counts[metric])
            received = counts["received_total"]
            online = counts["received_online_full"] + counts["received_online_partial"]
            fields[w + ".online_ratio"] = _ratio_text(online, received)
            fields[w + ".full_online_ratio"] = _ratio_text(counts["received_online_full"], received)
            on_time, late = counts["resolved_on_time"], counts["resolved_late"]
            fields[w + ".on_time_rate"] = _ratio_text(on_time + not_yet, on_time + late + open_now)
        out[scope] = fields
    return out


def series_from_facts(facts: list[RefFacts], t: int) -> dict[str, dict[str, str]]:
    now = datetime.fromtimestamp(t, VN)
    first_hour = t - t % 3600 - 167 * 3600
    today = now.date()
    out: dict[str, dict[str, str]] = {}
    for scope, mine in _by_scope(facts).items():
        hourly: dict[str, dict[int, int]] = {m: {} for m in COUNTS}
        daily: dict[str, dict[int, int]] = {m: {} for m in COUNTS}
        for f in mine:
            for metric, x in _instants(f):
                if x > t:
                    continue
                if x >= first_hour:
                    bucket = x - x % 3600
                    hourly[metric][bucket] = hourly[metric].get(bucket, 0) + 1
                here = datetime.fromtimestamp(x, VN)
                if (today - here.date()).days < 90:
                    day = _epoch(here.replace(hour=0, minute=0, second=0, microsecond=0))
                    daily[metric][day] = daily[metric].get(day, 0) + 1
        fields = {}
        for name, table in (("hourly", hourly), ("daily", daily)):
            for metric in COUNTS:
                ordered = {str(k): table[metric][k] for k in sorted(table[metric])}
                fields[name + "." + metric] = json.dumps(ordered, separators=(",", ":"))
        out[scope] = fields
    return out


def reference_snapshots(
    events: Iterable[DossierEvent],
    t: int,
    *,
    second_supplement_late: bool = True,
    now: int | None = None,
    future_tolerance_s: float = FUTURE_TOLERANCE_S,
) -> dict[str, dict[str, str]]:
    """Every scope's flattened snapshot hash at clock t, by brute force."""
    facts = all_facts(
        events,
        second_supplement_late=second_supplement_late,
        now=now,
        future_tolerance_s=future_tolerance_s,
    )
    return snapshots_from_facts(facts, t)


def reference_series(
    events: Iterable[DossierEvent],
    t: int,
    *,
    second_supplement_late: bool = True,
    now: int | None = None,
    future_tolerance_s: float = FUTURE_TOLERANCE_S,
) -> dict[str, dict[str, str]]:
    """Every scope's flattened series hash at clock t, by brute force."""
    facts = all_facts(
        events,
        second_supplement_late=second_supplement_late,
        now=now,
        future_tolerance_s=future_tolerance_s,
    )
    return series_from_facts(facts, t)
