"""Live figures of dossiers per scope: gauges at a clock, windowed counts, ratios, time series.

Pure core: no I/O and no clock reads; the clock T (integer epoch seconds) is always
passed in. The worker records what each dossier contributes (`DossierFacts`) before
and after every change and moves the difference (`FigureBook.move`); every figure is
then a function of the dossier states and T alone, so rebuilding from the states after
a restart gives the same numbers. This is the contract of the figures:

Scopes. Every received dossier counts in `agency:{code}`, `level:{city|commune}`,
`field:{procedure field}` and `city`.

Facts of one dossier (`dossier_facts`), None until it is received (accepted, status 2).
Instants are whole epoch seconds: what happened (receipt, resolution) is rounded down,
deadlines (due, near-due) are rounded up, so "the clock T has reached the deadline" is
exactly `deadline <= T`. On-time and became-overdue are judged on the exact instants.
- `received_at`; `resolved_at` (None while unresolved); `channel` (ChannelKind).
- `resolved_on_time`: None while unresolved; on time iff resolved_at < due_at, and with
  `second_supplement_late` a dossier with two or more supplement requests is late.
- `open`: received and neither resolved nor closed (withdrawn, stopped).
- `paused`: waiting for a supplement (chờ bổ sung) with the deadline stopped; `due_at`
  is None while paused. Decision (overdue under a pause): a dossier that was already
  overdue when the supplement was requested is not paused here: it keeps its due
  instant, stays in `overdue_now` and keeps its `became_overdue_at`, so a late request
  for documents never hides a late dossier and `became_overdue` never shrinks after
  the fact (`DossierState.overdue_at_pause`).
- `near_at`: start of near-due (sắp trễ), `WorkingCalendar.near_due_at(received_at,
  due_at, unit=limit unit)`. Decision: None unless the dossier is open and not paused
  (it only feeds the gauges).
- `became_overdue_at`: due_at if due_at is not None and the dossier was still unresolved
  at that instant (end is None or end >= due_at, end = resolved_at or closed_at).
  Whether T has reached it is decided at evaluation. A dossier paused before its due
  instant has no due_at while paused, so no became_overdue_at either; on resumption the
  moved due instant counts.

Gauges at T (from the current states; they do not look at received_at):
- `open_now`: open dossiers.
- `overdue_now` (quá hạn): open, not paused, due_at <= T.
- `near_due_now` (sắp trễ): open, not paused, near_at <= T < due_at.
- `not_yet_due_now` (chưa đến hạn): open and not overdue (paused counts as not yet due).
Decision: the second-supplement rule only judges resolutions; an open dossier is judged
by its due instant.

Buckets: minutes (epoch // 60) and hours (epoch // 3600). Vietnam is UTC+7 without
daylight saving, so its days, months, quarters and years start on whole hours.

Windows at T, each the set of instants x <= T (an instant after T is not counted: a
replay's clock may lag) that are at or after the window's start:
- `1h`: the 60 minute buckets ending with T's minute (inclusive).
- `24h`, `7d`, `30d`: the last 24 / 168 / 720 hour buckets ending with T's hour.
- `mtd`, `qtd`, `ytd`: from 00:00 (Vietnam) of the first day of T's month / quarter /
  year.

Windowed metrics: `received_total`, `received_in_person`, `received_online_full`,
`received_online_partial`, `received_post` (instant received_at); `resolved_on_time`,
`resolved_late` (resolved_at); `became_overdue` (became_overdue_at). Ratios per window,
None when the denominator is 0:
- `online_ratio` = (online_full + online_partial) / received_total
- `full_online_ratio` = online_full / received_total
- `on_time_rate` (766) = (resolved_on_time + not_yet_due_now)
  / (resolved_on_time + resolved_late + open_now)

Time series at T: per metric above (except ratios), the 168 hour buckets ending with T's
hour and the 90 Vietnam-day buckets ending with T's day; bucket start (epoch seconds) ->
count of instants <= T, zero buckets omitted.

Time alone changes figures (a dossier becomes overdue at its due instant, windows slide)
with no event and no timer per dossier: `FigureBook.scopes_changed_between(t0, t1)` names
the scopes to publish again.

Redis hashes (`ScopeSnapshot.to_redis_hash`, `ScopeSeries.to_redis_hash`): counts as
decimal integers; ratios rounded half up to 6 decimals ("0.666667"), "" when None; series
as compact JSON objects {"<bucket start>": count} in ascending bucket order.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from functools import cache
from typing import NamedTuple, Protocol

from domain.calendar import WorkingCalendar
from domain.errors import DomainError
from domain.lifecycle import ChannelKind, DossierState
from schemas.serving import COUNT_METRICS, GAUGES, RATIO_METRICS, WINDOWS

__all__ = [
    "CHANNEL_SLOTS",
    "CITY",
    "COUNT_FIELDS",
    "COUNT_METRICS",
    "DAILY_BUCKETS",
    "DAYS_KEPT",
    "GAUGES",
    "HOURLY_BUCKETS",
    "RATIO_METRICS",
    "SERIES_FIELDS",
    "SNAPSHOT_FIELDS",
    "WINDOWS",
    "ClockTooOldError",
    "DossierFacts",
    "FigureBook",
    "RetiredRows",
    "ScopeSeries",
    "ScopeSnapshot",
    "WindowFigures",
    "dossier_facts",
    "epoch_ceil",
    "epoch_floor",
    "quotient_text",
    "ratio_text",
    "rebuild_in_steps",
    "scopes_of",
    "series_tables",
    "snapshot_of",
    "vn_day",
    "window_start",
]

# The names are the read contract's (schemas/serving.py): dashboards read them in Redis.
CITY = "city"
HOURLY_BUCKETS = 168
DAILY_BUCKETS = 90
SNAPSHOT_FIELDS = (
    *GAUGES,
    *(f"{w}.{m}" for w in WINDOWS for m in (*COUNT_METRICS, *RATIO_METRICS)),
)
SERIES_FIELDS = tuple(f"{g}.{m}" for g in ("hourly", "daily") for m in COUNT_METRICS)

_VN_OFFSET = 7 * 3600  # Vietnam is UTC+7 all year
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HOURS_BACK = {"24h": 23, "7d": 167, "30d": 719}
_NESTED = frozenset({"qtd", "ytd"})  # windows that extend the one before them (mtd, qtd)

# Metric slots of the bucket counters: the four channels, then outcomes, then overdue.
_N = 7
_CHANNEL_SLOT = {
    ChannelKind.IN_PERSON: 0,
    ChannelKind.ONLINE_FULL: 1,
    ChannelKind.ONLINE_PARTIAL: 2,
    ChannelKind.POST: 3,
}
_ON_TIME, _LATE, _OVERDUE = 4, 5, 6
_SLOT_METRICS = COUNT_METRICS[1:]  # the metric of each slot; received_total is their sum
# Per window: the Redis names of its counts, received_total first, then one per slot.
_COUNT_KEYS = tuple(tuple(f"{w}.{m}" for m in COUNT_METRICS) for w in WINDOWS)
_NEG_INF = -(2**62)
# Hour buckets are kept this far behind the fine floor: `30d` and the hourly series reach
# 720 hours back, and `mtd` / `qtd` / `ytd` start at midnight, where day buckets take over.
_HOURS_KEPT = 32 * 86400
# Vietnam-day (and month) buckets are kept this many days behind the latest clock: `ytd`
# reaches back at most 366 days and the daily series 90; the rest is margin.
DAYS_KEPT = 400
_DAY_TRIM_STEP = 7  # days the kept range moves before the old buckets are dropped


class ClockTooOldError(DomainError, ValueError):
    """The clock is further behind the latest clock seen than the fine buckets are kept."""


def scopes_of(state: DossierState) -> tuple[str, ...]:
    """The aggregation scopes a dossier counts in."""
    return _scopes(state.agency, state.level, state.field)


@cache
def _scopes(agency: str, level: str, field: str) -> tuple[str, ...]:
    # A few hundred combinations: one tuple each, shared by every dossier that has it.
    return (f"agency:{agency}", f"level:{level}", f"field:{field}", CITY)


def epoch_floor(dt: datetime) -> int:
    """Whole epoch seconds at or before an aware datetime."""
    # A timedelta keeps 0 <= seconds < 86400 and 0 <= microseconds < 10**6 (days carry
    # the sign), so days * 86400 + seconds is its floor in whole seconds: read from the
    # fields, several times cheaper than `delta // timedelta(seconds=1)` (every event).
    delta = dt - _EPOCH
    return delta.days * 86400 + delta.seconds


def epoch_ceil(dt: datetime) -> int:
    """Whole epoch seconds at or after an aware datetime."""
    delta = dt - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return seconds + 1 if delta.microseconds else seconds


class DossierFacts(NamedTuple):
    """What one received dossier contributes to the figures of its scopes (epoch seconds).

    A named tuple: made for every applied event, so it is built as cheaply as Python
    builds anything (a frozen dataclass costs a `__setattr__` call per field).
    """

    scopes: tuple[str, ...]
    channel: ChannelKind
    received_at: int
    resolved_at: int | None
    resolved_on_time: bool | None
    open: bool
    paused: bool
    due_at: int | None
    near_at: int | None
    became_overdue_at: int | None


def dossier_facts(
    state: DossierState, calendar: WorkingCalendar, *, second_supplement_late: bool = True
) -> DossierFacts | None:
    """The contribution of one dossier, or None until it is received."""
    received = state.received_at
    if received is None or state.channel is None:
        return None
    resolved = state.resolved_at
    due = state.due_at
    on_time: bool | None = None
    if resolved is not None:
        on_time = due is not None and resolved < due
        if second_supplement_late and state.supplements >= 2:
            on_time = False
    is_open = resolved is None and state.closed_at is None
    paused = state.paused  # a dossier overdue at its pause is not paused (stays overdue)
    due_s = near_s = became_s = None
    if due is not None and not paused:
        due_s = epoch_ceil(due)
        end = resolved if resolved is not None else state.closed_at
        if end is None or end >= due:
            became_s = due_s
        if is_open:
            near = (
                due
                if due < received
                else calendar.near_due_at(received, due, unit=state.limit_unit)
            )
            near_s = min(epoch_ceil(near), due_s)
    # Made for every event: `_make` takes the fields in their order, in one tuple; the
    # named tuple's own `__new__` (interpreted Python, even compiled) costs three times
    # as much called with keywords.
    return DossierFacts._make(
        (
            scopes_of(state),  # scopes
            state.channel,  # channel
            epoch_floor(received),  # received_at
            None if resolved is None else epoch_floor(resolved),  # resolved_at
            on_time,  # resolved_on_time
            is_open,  # open
            paused,  # paused
            due_s,  # due_at
            near_s,  # near_at
            became_s,  # became_overdue_at
        )
    )


# -- Vietnam calendar buckets ---------------------------------------------------------


def vn_day(t: int) -> int:
    """Index of the Vietnam day of an instant (day 0 is 1970-01-01)."""
    return (t + _VN_OFFSET) // 86400


def _day_start(d: int) -> int:
    return d * 86400 - _VN_OFFSET


@cache
def _month_of_day(d: int) -> int:
    """Month index (year * 12 + month - 1) of a Vietnam day index."""
    day = date.fromordinal(d + _EPOCH_ORDINAL)
    return day.year * 12 + day.month - 1


@cache
def _month_start_day(month: int) -> int:
    return date(month // 12, month % 12 + 1, 1).toordinal() - _EPOCH_ORDINAL


def window_start(window: str, t: int) -> int:
    """First epoch second of a window at clock t (the window ends at t, inclusive)."""
    if window == "1h":
        return (t // 60 - 59) * 60
    back = _HOURS_BACK.get(window)
    if back is not None:
        return (t // 3600 - back) * 3600
    month = _month_of_day(vn_day(t))
    if window == "qtd":
        month -= month % 12 % 3
    elif window == "ytd":
        month -= month % 12
    elif window != "mtd":
        raise ValueError(f"unknown window {window!r}; expected one of {', '.join(WINDOWS)}")
    return _day_start(_month_start_day(month))


def _series_day_start(t: int) -> int:
    """First epoch second of the daily series at clock t."""
    return _day_start(vn_day(t) - DAILY_BUCKETS + 1)


# -- results --------------------------------------------------------------------------


def _ratio(num: int, den: int) -> Fraction | None:
    return Fraction(num, den) if den else None


def ratio_text(ratio: Fraction | None) -> str:
    """A ratio as a decimal string with 6 digits, rounded half up; "" when None."""
    if ratio is None:
        return ""
    return quotient_text(ratio.numerator, ratio.denominator)


def quotient_text(num: int, den: int) -> str:
    """num/den as `ratio_text` writes it ("" when den is 0), with no Fraction made: the
    rounding depends on the quotient only, so num and den need not be in lowest terms."""
    if not den:
        return ""
    q = (num * 2_000_000 + den) // (2 * den)
    return f"{q // 1_000_000}.{q % 1_000_000:06d}"


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """The counts of one window at one clock, and its ratios (exact fractions)."""

    received_in_person: int
    received_online_full: int
    received_online_partial: int
    received_post: int
    resolved_on_time: int
    resolved_late: int
    became_overdue: int
    on_time_rate: Fraction | None

    @property
    def received_total(self) -> int:
        return (
            self.received_in_person
            + self.received_online_full
            + self.received_online_partial
            + self.received_post
        )

    @property
    def online_ratio(self) -> Fraction | None:
        return _ratio(self.received_online_full + self.received_online_partial, self.received_total)

    @property
    def full_online_ratio(self) -> Fraction | None:
        return _ratio(self.received_online_full, self.received_total)


@dataclass(frozen=True)
class ScopeSnapshot:
    """Gauges and every window's figures of one scope at clock t."""

    scope: str
    t: int
    open_now: int
    overdue_now: int
    near_due_now: int
    not_yet_due_now: int
    windows: Mapping[str, WindowFigures]

    def to_redis_hash(self) -> dict[str, str]:
        """Flat fields: `overdue_now`, ..., `24h.received_total`, `24h.online_ratio`, ..."""
        out = {name: str(getattr(self, name)) for name in GAUGES}
        for w, fig in self.windows.items():
            for m in COUNT_METRICS:
                out[f"{w}.{m}"] = str(getattr(fig, m))
            for r in RATIO_METRICS:
                out[f"{w}.{r}"] = ratio_text(getattr(fig, r))
        return out


@dataclass(frozen=True)
class ScopeSeries:
    """Hourly (168) and Vietnam-daily (90) buckets per metric of one scope at clock t."""

    scope: str
    t: int
    hourly: Mapping[str, Mapping[int, int]]  # metric -> bucket start -> count (no zeros)
    daily: Mapping[str, Mapping[int, int]]

    def to_redis_hash(self) -> dict[str, str]:
        """Fields `hourly.{metric}` and `daily.{metric}`: JSON {"<bucket start>": count}."""
        out: dict[str, str] = {}
        for grain, table in (("hourly", self.hourly), ("daily", self.daily)):
            for m in COUNT_METRICS:
                buckets = table.get(m, {})
                obj = {str(k): buckets[k] for k in sorted(buckets) if buckets[k]}
                out[f"{grain}.{m}"] = json.dumps(obj, separators=(",", ":"))
        return out


class Rebuilds(Protocol):
    """A book rebuilt in steps (`FigureBook` and the Rust one alike)."""

    def begin_rebuild(
        self, *, now: int | None = None, keep_hours_from: int | None = None
    ) -> None: ...
    def add(self, f: DossierFacts | None) -> None: ...
    def end_rebuild(self) -> None: ...


def rebuild_in_steps(
    book: Rebuilds,
    facts: Iterable[DossierFacts | None],
    *,
    now: int | None = None,
    keep_hours_from: int | None = None,
) -> None:
    """`FigureBook.rebuild` of any book: its steps, one after the other."""
    book.begin_rebuild(now=now, keep_hours_from=keep_hours_from)
    for f in facts:
        book.add(f)
    book.end_rebuild()


def snapshot_of(
    scope: str, t: int, gauges: tuple[int, int, int, int], window_counts: Sequence[Sequence[int]]
) -> ScopeSnapshot:
    """A scope's snapshot from its gauges (open, overdue, near due, not yet due) and the
    slot counts of each window of `WINDOWS`, in order (what a book counts)."""
    open_now, overdue, near, not_yet_due = gauges
    windows: dict[str, WindowFigures] = {}
    for w, c in zip(WINDOWS, window_counts, strict=True):
        on_time, late = c[_ON_TIME], c[_LATE]
        windows[w] = WindowFigures(
            c[0],
            c[1],
            c[2],
            c[3],
            on_time,
            late,
            c[_OVERDUE],
            _ratio(on_time + not_yet_due, on_time + late + open_now),
        )
    return ScopeSnapshot(scope, t, open_now, overdue, near, not_yet_due, windows)


# The names of `FigureBook.counts`, in order: the gauges, then per window its total and
# one per slot (what a book written in another language fills in).
COUNT_FIELDS = (*GAUGES, *(key for keys in _COUNT_KEYS for key in keys))
CHANNEL_SLOTS = dict(_CHANNEL_SLOT)


# -- the book -------------------------------------------------------------------------


class _Marks:
    """Deadline instants (due or near-due) of open, unpaused dossiers, counted by hour.

    Most day-limit dossiers share a few midnights, but hour-limit ones have instants of
    their own; counting per hour keeps the sorted keys short and updates cheap.
    """

    __slots__ = ("exact", "hours", "total", "totals")

    def __init__(self) -> None:
        self.total = 0
        self.hours: list[int] = []  # sorted hours that hold an instant
        self.totals: dict[int, int] = {}  # hour -> count
        self.exact: dict[int, dict[int, int]] = {}  # hour -> instant -> count

    def add(self, x: int, sign: int) -> None:
        self.total += sign
        hour = x // 3600
        inner = self.exact.get(hour)
        if inner is None:
            inner = self.exact[hour] = {}
            insort(self.hours, hour)
        c = inner.get(x, 0) + sign
        if c:
            inner[x] = c
        else:
            del inner[x]
        c = self.totals.get(hour, 0) + sign
        if c:
            self.totals[hour] = c
        else:
            del self.totals[hour], self.exact[hour]
            del self.hours[bisect_left(self.hours, hour)]

    def at_or_before(self, t: int) -> int:
        """How many instants are <= t (summing the shorter side of the sorted hours)."""
        hour = t // 3600
        hours = self.hours
        i = bisect_left(hours, hour)
        if 2 * i <= len(hours):
            n = sum(map(self.totals.__getitem__, hours[:i]))
        else:
            n = self.total - sum(map(self.totals.__getitem__, hours[i:]))
        inner = self.exact.get(hour)
        if inner:
            n += sum(c for x, c in inner.items() if x <= t)
        return n

    def any_between(self, lo: int, hi: int) -> bool:
        """True if an instant x has lo < x <= hi."""
        h_lo, h_hi = lo // 3600, hi // 3600
        hours = self.hours
        for hour in hours[bisect_left(hours, h_lo) : bisect_right(hours, h_hi)]:
            if h_lo < hour < h_hi or any(lo < x <= hi for x in self.exact[hour]):
                return True
        return False


class _Store:
    """Counters of one scope."""

    __slots__ = ("days", "due", "fine", "hours", "months", "near", "open")

    def __init__(self) -> None:
        # bucket -> counts per slot; every instant is in its hour, Vietnam-day and
        # Vietnam-month bucket (months keep the year-to-date sums short)
        self.hours: dict[int, list[int]] = {}
        self.days: dict[int, list[int]] = {}
        self.months: dict[int, list[int]] = {}
        # per slot, the sorted instants at or after the book's fine floor
        self.fine: list[list[int]] = [[] for _ in range(_N)]
        self.open = 0
        self.due = _Marks()
        self.near = _Marks()


_EMPTY = _Store()


def _items(f: DossierFacts) -> tuple[tuple[int, int], ...]:
    """The (slot, instant) pairs a dossier adds to the windowed counters."""
    received = (_CHANNEL_SLOT[f.channel], f.received_at)
    resolved = f.resolved_at
    became = f.became_overdue_at
    if resolved is None:
        return (received,) if became is None else (received, (_OVERDUE, became))
    outcome = (_ON_TIME if f.resolved_on_time else _LATE, resolved)
    if became is None:
        return (received, outcome)
    return (received, outcome, (_OVERDUE, became))


def _gauge(f: DossierFacts) -> tuple[int, int] | None:
    if f.open and not f.paused and f.due_at is not None:
        near = f.near_at if f.near_at is not None else f.due_at
        return (f.due_at, near)
    return None


class RetiredRows:
    """What closed dossiers contribute, per Vietnam day, scope and metric slot.

    A closed dossier (resolved and returned, refused, withdrawn, stopped) is in no gauge,
    and once its instants are older than the hour buckets are kept it counts only in the
    day and month buckets: these rows hold exactly that, so its record can be dropped and
    the figures still rebuilt (`FigureBook.add_retired`). Each row holds a count per
    metric slot: received in person, online full, online partial, by post, resolved on
    time, resolved late, became overdue.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: dict[int, dict[str, list[int]]] | None = None) -> None:
        self.rows: dict[int, dict[str, list[int]]] = rows if rows is not None else {}

    def add(self, f: DossierFacts) -> None:
        """Add a closed dossier's contribution (it must be in no gauge)."""
        if f.open or _gauge(f) is not None:
            raise DomainError("only a closed dossier's contribution can be retired")
        rows = self.rows
        for slot, x in _items(f):
            by_scope = rows.get(day := vn_day(x))
            if by_scope is None:
                by_scope = rows[day] = {}
            for scope in f.scopes:
                row = by_scope.get(scope)
                if row is None:
                    row = by_scope[scope] = [0] * _N
                row[slot] += 1

    @property
    def last_day(self) -> int | None:
        """The latest Vietnam day the rows add to, or None when empty."""
        return max(self.rows, default=None)

    def to_doc(self) -> dict[str, dict[str, list[int]]]:
        return {str(day): by_scope for day, by_scope in sorted(self.rows.items())}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Mapping[str, list[int]]]) -> RetiredRows:
        rows: dict[int, dict[str, list[int]]] = {}
        for day, by_scope in doc.items():
            checked: dict[str, list[int]] = {}
            for scope, row in by_scope.items():
                if len(row) != _N or not all(isinstance(n, int) and n >= 0 for n in row):
                    raise DomainError(f"retired row of {scope!r} on day {day}: {row!r}")
                checked[scope] = list(row)
            rows[int(day)] = checked
        return cls(rows)


class FigureBook:
    """Per-scope counters of dossier facts, evaluated at any clock T.

    Windowed instants are counted in Vietnam-day buckets (kept for all time: `ytd` sums
    at most 365 of them), in hour buckets for the last 32 days or so, and, from a "fine
    floor" on, as sorted instants per metric, which give the partial minute and hour at
    T exactly. The floor follows the latest clock seen, `retention` seconds behind it
    (rounded down to an hour, advanced lazily), so the fine lists hold a few hours of
    instants. A clock may lag the latest one seen by up to `retention` - 2 hours;
    further back raises `ClockTooOldError`.

    Gauges come from per-scope counts of the due and near-due instants of open, unpaused
    dossiers, grouped by hour with the sorted hours kept, so they cost a bisect and a
    short sum, not a scan of the dossiers; the same counts tell which scopes' gauges
    change between two clocks.

    `move(before, after)` requires `before` to be the facts last moved in for the same
    dossier (None for a new one).
    """

    def __init__(self, *, retention: int = 4 * 3600) -> None:
        if retention < 3 * 3600:
            raise ValueError(f"retention must be at least 3 hours (10800 s), got {retention}")
        self.retention = retention
        self._reset()

    def _reset(self) -> None:
        self._stores: dict[str, _Store] = {}
        self._store_lists: dict[tuple[str, ...], list[_Store]] = {}
        self._dirty: set[str] = set()
        self._floor = _NEG_INF  # fine lists hold every instant >= this
        self._hour_floor = _NEG_INF  # hour buckets hold every instant >= this
        self._hour_pin: int | None = None  # ... and never start after this (`keep_hours_from`)
        self._max_t = _NEG_INF
        self._day_cut = _NEG_INF  # day and month buckets before this day were dropped
        # During a rebuild, instants older than the fine floor are tallied per (scopes,
        # slot, hour or Vietnam day) and added to the scopes' buckets once at the end.
        self._hour_tally: dict[tuple[tuple[str, ...], int, int], int] = {}
        self._day_tally: dict[tuple[tuple[str, ...], int, int], int] = {}

    # -- changes --------------------------------------------------------------------

    def move(self, before: DossierFacts | None, after: DossierFacts | None) -> None:
        """Replace a dossier's contribution `before` by `after`; marks their scopes dirty."""
        if before == after:
            return
        if before is None or after is None or before.scopes != after.scopes:
            if before is not None:
                self._apply(before, -1)
            if after is not None:
                self._apply(after, +1)
            return
        scopes = after.scopes
        stores = self._stores_for(scopes)
        old, new = _items(before), _items(after)
        if old != new:
            for item in old:
                if item not in new:
                    self._bump_items(stores, item, -1)
            for item in new:
                if item not in old:
                    self._bump_items(stores, item, +1)
        if before.open != after.open:
            delta = 1 if after.open else -1
            for st in stores:
                st.open += delta
        g_old, g_new = _gauge(before), _gauge(after)
        if g_old != g_new:
            if g_old is not None:
                self._bump_gauge(stores, g_old, -1)
            if g_new is not None:
                self._bump_gauge(stores, g_new, +1)
        self._dirty.update(scopes)

    def _apply(self, f: DossierFacts, sign: int) -> None:
        stores = self._stores_for(f.scopes)
        for item in _items(f):
            self._bump_items(stores, item, sign)
        if f.open:
            for st in stores:
                st.open += sign
        g = _gauge(f)
        if g is not None:
            self._bump_gauge(stores, g, sign)
        self._dirty.update(f.scopes)

    def _stores_for(self, scopes: tuple[str, ...]) -> list[_Store]:
        stores = self._store_lists.get(scopes)
        if stores is None:
            stores = [self._stores.setdefault(s, _Store()) for s in scopes]
            self._store_lists[scopes] = stores
        return stores

    def _bump_items(self, stores: list[_Store], item: tuple[int, int], sign: int) -> None:
        slot, x = item
        hour = x // 3600
        day = (x + _VN_OFFSET) // 86400
        month = _month_of_day(day)
        fine = x >= self._floor
        hourly = x >= self._hour_floor
        for st in stores:
            if hourly:
                counts = st.hours.get(hour)
                if counts is None:
                    counts = st.hours[hour] = [0] * _N
                counts[slot] += sign
                if sign < 0 and not any(counts):
                    del st.hours[hour]
            counts = st.days.get(day)
            if counts is None:
                counts = st.days[day] = [0] * _N
            counts[slot] += sign
            if sign < 0 and not any(counts):
                del st.days[day]
            counts = st.months.get(month)
            if counts is None:
                counts = st.months[month] = [0] * _N
            counts[slot] += sign
            if sign < 0 and not any(counts):
                del st.months[month]
            if fine:
                instants = st.fine[slot]
                if sign > 0:
                    if not instants or instants[-1] <= x:
                        instants.append(x)  # where `insort` puts it: events come mostly in order
                    else:
                        insort(instants, x)
                else:
                    del instants[bisect_left(instants, x)]

    @staticmethod
    def _bump_gauge(stores: list[_Store], g: tuple[int, int], sign: int) -> None:
        due, near = g
        for st in stores:
            st.due.add(due, sign)
            st.near.add(near, sign)

    def rebuild(
        self,
        facts: Iterable[DossierFacts | None],
        *,
        now: int | None = None,
        keep_hours_from: int | None = None,
    ) -> None:
        """Start again from these facts (after recovery); every scope is dirty afterwards.

        `now`, a clock the book will not be read before, lets the book keep fine instants
        for the last hours and hour buckets for the last weeks only, so the rebuild costs
        the same per dossier however long the history; without it every instant is kept
        until the first evaluation. `keep_hours_from` pins the hour buckets as
        `keep_hours_from` does. `begin_rebuild`, `add` and `end_rebuild` do the same in
        steps (a caller can yield between them).
        """
        rebuild_in_steps(self, facts, now=now, keep_hours_from=keep_hours_from)

    def begin_rebuild(self, *, now: int | None = None, keep_hours_from: int | None = None) -> None:
        """Empty the book for a rebuild (see `rebuild`)."""
        self._reset()
        self._hour_pin = keep_hours_from
        if now is not None:
            self._max_t = now
            self._floor = (now - self.retention) // 3600 * 3600
            self._hour_floor = self._pinned(self._floor - _HOURS_KEPT)

    def add(self, f: DossierFacts | None) -> None:
        """Add one dossier's contribution during a rebuild (`move(None, f)` without marks)."""
        if f is None:
            return
        scopes = f.scopes
        stores = self._stores_for(scopes)
        floor, hour_floor = self._floor, self._hour_floor
        for item in _items(f):
            x = item[1]
            if x >= floor:
                self._bump_items(stores, item, +1)
            elif x >= hour_floor:
                key = (scopes, item[0], x // 3600)
                self._hour_tally[key] = self._hour_tally.get(key, 0) + 1
            else:
                key = (scopes, item[0], (x + _VN_OFFSET) // 86400)
                self._day_tally[key] = self._day_tally.get(key, 0) + 1
        if f.open:
            for st in stores:
                st.open += 1
        g = _gauge(f)
        if g is not None:
            self._bump_gauge(stores, g, +1)

    def add_retired(self, retired: RetiredRows) -> None:
        """Add retired dossiers' contributions during a rebuild: day and month buckets only.

        They must be older than the hour buckets the book keeps (the store retires a
        dossier only well after that), so no window or series at a clock the book can be
        read at looks at their hours.
        """
        months: dict[int, int] = {}
        for day, by_scope in retired.rows.items():
            month = months.get(day)
            if month is None:
                month = months[day] = _month_of_day(day)
            for scope, counts in by_scope.items():
                st = self._stores.get(scope)
                if st is None:
                    st = self._stores[scope] = _Store()
                for buckets, bucket in ((st.days, day), (st.months, month)):
                    row = buckets.get(bucket)
                    if row is None:
                        row = buckets[bucket] = [0] * _N
                    for slot, n in enumerate(counts):
                        row[slot] += n

    def end_rebuild(self) -> None:
        """Finish a rebuild: the tallied buckets added; every scope is dirty."""
        days: dict[tuple[tuple[str, ...], int, int], int] = self._day_tally
        for (scopes, slot, hour), n in self._hour_tally.items():
            for st in self._stores_for(scopes):
                row = st.hours.get(hour)
                if row is None:
                    row = st.hours[hour] = [0] * _N
                row[slot] += n
            key = (scopes, slot, (hour * 3600 + _VN_OFFSET) // 86400)
            days[key] = days.get(key, 0) + n
        months: dict[int, int] = {}
        for (scopes, slot, day), n in days.items():
            month = months.get(day)
            if month is None:
                month = months[day] = _month_of_day(day)
            for st in self._stores_for(scopes):
                for buckets, bucket in ((st.days, day), (st.months, month)):
                    row = buckets.get(bucket)
                    if row is None:
                        row = buckets[bucket] = [0] * _N
                    row[slot] += n
        self._hour_tally, self._day_tally = {}, {}
        self._dirty = set(self._stores)

    # -- dirty scopes ---------------------------------------------------------------

    def dirty_scopes(self) -> set[str]:
        """Scopes changed by `move` or `rebuild` since the last `clear_dirty`."""
        return set(self._dirty)

    def clear_dirty(self) -> None:
        self._dirty.clear()

    def scopes(self) -> list[str]:
        """Every scope a dossier has counted in since the last rebuild, sorted."""
        return sorted(self._stores)

    def fine_instants(self) -> list[int]:
        """Every instant the fine lists hold, of every scope (what the book keeps exactly)."""
        return [x for st in self._stores.values() for xs in st.fine for x in xs]

    def kept_days(self, scope: str) -> list[int]:
        """The Vietnam days a scope's day buckets hold, in order."""
        st = self._stores.get(scope)
        return sorted(st.days) if st is not None else []

    # -- evaluation -----------------------------------------------------------------

    def _advance(self, t: int) -> None:
        """Note the clock; lift the fine floor (and trim the fine lists) lazily."""
        if t <= self._max_t:
            return
        self._max_t = t
        floor = (t - self.retention) // 3600 * 3600
        if floor < self._floor + 3600:
            return
        self._floor = floor
        self._hour_floor = self._pinned(floor - _HOURS_KEPT)
        last_gone = self._hour_floor // 3600
        cut = vn_day(t) - DAYS_KEPT
        trim_days = cut >= self._day_cut + _DAY_TRIM_STEP
        if trim_days:
            self._day_cut = cut
            month_cut = _month_of_day(cut)
        for st in self._stores.values():
            for instants in st.fine:
                i = bisect_left(instants, floor)
                if i:
                    del instants[:i]
            for hour in [h for h in st.hours if h < last_gone]:
                del st.hours[hour]
            if trim_days:
                for day in [d for d in st.days if d < cut]:
                    del st.days[day]
                for month in [m for m in st.months if m < month_cut]:
                    del st.months[month]

    def keep_hours_from(self, t: int) -> None:
        """Keep the hour buckets from t on, however far the clock runs ahead.

        The spike alert freezes a partition's hours as that partition's own clock passes
        them (`stream_apps.alert_history`); in a replay its book may be read at another
        partition's clock, weeks ahead. Call with a non-decreasing t, before any
        instant older than the current hour floor could arrive (a partition's first
        event, or its restored history).
        """
        self._hour_pin = t
        self._hour_floor = min(self._hour_floor, t)

    def _pinned(self, floor: int) -> int:
        return floor if self._hour_pin is None else min(floor, self._hour_pin)

    def _fine_counts(self, st: _Store, a: int, b: int) -> list[int]:
        return [bisect_left(xs, b) - bisect_left(xs, a) for xs in st.fine]

    def _count(self, st: _Store, a: int, b: int) -> list[int] | None:
        """Counts per slot of instants in [a, b); None when the kept buckets cannot tell."""
        if a >= b:
            return [0] * _N
        if a >= self._floor:
            return self._fine_counts(st, a, b)
        if a % 3600:
            return None
        hour_b = b // 3600
        tail = hour_b * 3600
        if tail != b and tail < self._floor:
            return None
        rows: list[list[int]] = []
        if not self._hour_rows(st, a // 3600, hour_b, rows):
            return None
        counts = [sum(c) for c in zip(*rows, strict=True)] if rows else [0] * _N
        if tail != b:
            for i, n in enumerate(self._fine_counts(st, tail, b)):
                counts[i] += n
        return counts

    def _hour_rows(self, st: _Store, h0: int, h1: int, rows: list[list[int]]) -> bool:
        """Bucket rows covering the hours [h0, h1), whole Vietnam days by their day bucket.

        False when an hour bucket it needs is no longer kept.
        """
        if h0 >= h1:
            return True
        d0 = -(-(h0 + 7) // 24)  # first Vietnam day starting at or after hour h0
        d1 = (h1 + 7) // 24  # last Vietnam day starting at or before hour h1
        spans = [(h0, h1)] if d0 >= d1 else [(h0, d0 * 24 - 7), (d1 * 24 - 7, h1)]
        hours = st.hours
        for lo, hi in spans:
            if lo < hi and lo * 3600 < self._hour_floor:
                return False
            for h in range(lo, hi):
                row = hours.get(h)
                if row is not None:
                    rows.append(row)
        _day_rows(st, d0, d1, rows)
        return True

    def _must_count(self, st: _Store, a: int, b: int, t: int) -> list[int]:
        counts = self._count(st, a, b)
        if counts is None:
            raise self._too_old(t)
        return counts

    def _too_old(self, t: int) -> ClockTooOldError:
        return ClockTooOldError(
            f"clock {t} is too far behind the latest clock seen ({self._max_t}); "
            f"fine buckets are kept for {self.retention} s"
        )

    def snapshot(self, scope: str, t: int) -> ScopeSnapshot:
        """Gauges and every window's metrics and ratios of one scope at clock t."""
        self._advance(t)
        st = self._stores.get(scope, _EMPTY)
        overdue, near, not_yet_due = self._gauges(st, t)
        gauges = (st.open, overdue, near, not_yet_due)
        return snapshot_of(scope, t, gauges, self._window_counts(st, t))

    def counts(self, scope: str, t: int) -> dict[str, int]:
        """The additive fields of `snapshot(scope, t)`: its gauges, then each window's
        counts, named as in Redis. What a partial carries, made without the ratios."""
        self._advance(t)
        st = self._stores.get(scope, _EMPTY)
        overdue, near, not_yet_due = self._gauges(st, t)
        out = {
            "open_now": st.open,
            "overdue_now": overdue,
            "near_due_now": near,
            "not_yet_due_now": not_yet_due,
        }
        for keys, c in zip(_COUNT_KEYS, self._window_counts(st, t), strict=True):
            out[keys[0]] = c[0] + c[1] + c[2] + c[3]
            for slot in range(_N):
                out[keys[slot + 1]] = c[slot]
        return out

    @staticmethod
    def _gauges(st: _Store, t: int) -> tuple[int, int, int]:
        """(overdue, near due, not yet due) of a scope's open dossiers at clock t."""
        overdue = st.due.at_or_before(t)
        return overdue, st.near.at_or_before(t) - overdue, st.open - overdue

    def _window_counts(self, st: _Store, t: int) -> list[list[int]]:
        """The slot counts of every window of `WINDOWS` at clock t, in order."""
        out: list[list[int]] = []
        previous: tuple[int, list[int]] | None = None  # (start, counts) of the last window
        for w in WINDOWS:
            start = window_start(w, t)
            if previous is not None and w in _NESTED and start <= previous[0]:
                # qtd is mtd plus whole months before it, ytd is qtd plus whole months:
                # only those months' buckets are added.
                more = self._must_count(st, start, previous[0], t)
                c = [a + b for a, b in zip(previous[1], more, strict=True)]
            else:
                c = self._must_count(st, start, t + 1, t)
            previous = (start, c)
            out.append(c)
        return out

    def series(self, scope: str, t: int) -> ScopeSeries:
        """Hourly (168) and Vietnam-daily (90) buckets per metric of one scope at clock t."""
        self._advance(t)
        st = self._stores.get(scope, _EMPTY)
        hour_t = t // 3600
        if (hour_t - HOURLY_BUCKETS) * 3600 < self._hour_floor:
            raise self._too_old(t)
        hourly_rows = [
            (h * 3600, st.hours.get(h)) for h in range(hour_t - HOURLY_BUCKETS + 1, hour_t)
        ]
        hourly_rows.append((hour_t * 3600, self._must_count(st, hour_t * 3600, t + 1, t)))
        day_t = vn_day(t)
        daily_rows = [
            (_day_start(d), st.days.get(d)) for d in range(day_t - DAILY_BUCKETS + 1, day_t)
        ]
        daily_rows.append((_day_start(day_t), self._must_count(st, _day_start(day_t), t + 1, t)))
        return ScopeSeries(scope, t, series_tables(hourly_rows), series_tables(daily_rows))

    def overdue_between(self, h0: int, h1: int) -> dict[str, dict[int, int]]:
        """Per scope (fields left out), the became-overdue instants in each hour bucket of
        [h0, h1) (epoch seconds on whole hours), nonzero counts only.

        These are the facts as they stand now; a caller that has seen the clock pass h1
        reads what became overdue in those hours (the spike alert freezes them then).
        """
        first, last = h0 // 3600, h1 // 3600
        out: dict[str, dict[int, int]] = {}
        for scope, st in self._stores.items():
            if scope.startswith("field:"):
                continue
            hours = st.hours
            if last - first <= len(hours):
                rows = ((h, hours.get(h)) for h in range(first, last))
            else:
                rows = ((h, r) for h, r in hours.items() if first <= h < last)
            counts = {h * 3600: row[_OVERDUE] for h, row in rows if row and row[_OVERDUE]}
            if counts:
                out[scope] = counts
        return out

    def near_due_at(self, scopes: Iterable[str], t: int) -> dict[str, int]:
        """`near_due_now` at clock t of each of these scopes that has dossiers.

        From the current states: the caller makes sure they are those of time t.
        """
        out: dict[str, int] = {}
        for scope in scopes:
            st = self._stores.get(scope)
            if st is not None:
                out[scope] = st.near.at_or_before(t) - st.due.at_or_before(t)
        return out

    def received_in(self, scope: str, window: str, t: int) -> tuple[int, int]:
        """(received, received online full or partial) over `window` at clock t."""
        self._advance(t)
        st = self._stores.get(scope)
        if st is None:
            return 0, 0
        c = self._must_count(st, window_start(window, t), t + 1, t)
        return c[0] + c[1] + c[2] + c[3], c[1] + c[2]

    def scopes_changed_between(self, t0: int, t1: int) -> set[str]:
        """Scopes whose snapshot or series at t1 may differ from those at t0, with no event.

        Exact for the gauges (a due or near-due instant in (t0, t1]) and for the windows
        (an instant entering or leaving any window or series range); a scope is included
        when the kept buckets cannot tell (a clock too far back).
        """
        if t0 == t1:
            return set()
        lo, hi = min(t0, t1), max(t0, t1)
        self._advance(hi)
        changed: set[str] = set()
        # Instants entering the windows, then those leaving them: [start(lo), start(hi)).
        ranges = [(lo + 1, hi + 1)]
        starts = [(window_start(w, lo), window_start(w, hi)) for w in WINDOWS]
        starts.append((_series_day_start(lo), _series_day_start(hi)))
        for s0, s1 in starts:
            if s1 > s0:
                ranges.append((s0, min(s1, lo + 1)))
        for scope, st in self._stores.items():
            if st.due.any_between(lo, hi) or st.near.any_between(lo, hi):
                changed.add(scope)
                continue
            for a, b in ranges:
                counts = self._count(st, a, b)
                if counts is None or any(counts):
                    changed.add(scope)
                    break
        return changed


def _day_rows(st: _Store, d0: int, d1: int, rows: list[list[int]]) -> None:
    """Bucket rows covering the Vietnam days [d0, d1): whole months by their month bucket."""
    days, months = st.days, st.months
    m = _month_of_day(d0)
    if _month_start_day(m) != d0:
        m += 1  # the first month that starts at or after d0
    lead_end = max(d0, min(_month_start_day(m), d1))  # days before the first whole month
    tail = lead_end
    while (end := _month_start_day(m + 1)) <= d1:
        row = months.get(m)
        if row is not None:
            rows.append(row)
        tail, m = end, m + 1
    for lo, hi in ((d0, lead_end), (tail, d1)):  # the days before and after whole months
        for d in range(lo, hi):
            row = days.get(d)
            if row is not None:
                rows.append(row)


def series_tables(rows: Sequence[tuple[int, Sequence[int] | None]]) -> dict[str, dict[int, int]]:
    """Metric -> bucket start -> count (zeros left out) of (bucket start, slot counts) rows."""
    out: dict[str, dict[int, int]] = {m: {} for m in COUNT_METRICS}
    total = out["received_total"]
    for start, counts in rows:
        if counts is None:
            continue
        received = counts[0] + counts[1] + counts[2] + counts[3]
        if received:
            total[start] = received
        for slot, metric in enumerate(_SLOT_METRICS):
            if counts[slot]:
                out[metric][start] = counts[slot]
    return out
