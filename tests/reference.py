"""Brute-force reference of the live figures, straight from a list of events.

Deliberately simple and independent of `domain.figures`: it rebuilds each dossier's
final state with `domain.lifecycle`, then loops over every state for every figure,
written again from the definitions in plain code. Tests compare `FigureBook` against it
and expect EQUAL results.

Definitions (the same contract, restated):
- A dossier counts once received (accepted) in agency:{code}, level:{level},
  field:{field} and city.
- Instants in whole epoch seconds: receipt and resolution rounded down, due and
  near-due instants rounded up. On time iff resolved before the due instant (exact), and
  late anyway after two or more supplement requests (when that rule is on).
- Paused (waiting for a supplement): no due instant, no near-due instant, never
  overdue. Near-due is only kept for open, unpaused dossiers.
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
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from domain.calendar import VN_TZ, WorkingCalendar
from domain.lifecycle import DossierState, Lifecycle, calendar_resume
from schemas.events import DossierEvent

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

_DEFAULT_CALENDAR: list[WorkingCalendar] = []


def default_calendar() -> WorkingCalendar:
    if not _DEFAULT_CALENDAR:
        _DEFAULT_CALENDAR.append(WorkingCalendar())
    return _DEFAULT_CALENDAR[0]


def final_states(
    events: Iterable[DossierEvent], calendar: WorkingCalendar | None = None
) -> dict[str, DossierState]:
    """Each dossier's state after its distinct events (first of each sequence) in order."""
    life = Lifecycle(calendar_resume(calendar or default_calendar()))
    by_dossier: dict[str, dict[int, DossierEvent]] = {}
    for e in events:
        seen = by_dossier.setdefault(e.dossier_id, {})
        if e.sequence not in seen:
            seen[e.sequence] = e
    states = {}
    for dossier_id, seen in by_dossier.items():
        state = DossierState(dossier_id)
        for seq in sorted(seen):
            life.apply(state, seen[seq])
        states[dossier_id] = state
    return states


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
    state: DossierState, calendar: WorkingCalendar, *, second_supplement_late: bool = True
) -> RefFacts | None:
    if state.received_at is None:
        return None
    assert state.channel is not None
    on_time = None
    if state.resolved_at is not None:
        if second_supplement_late and state.supplements >= 2:
            on_time = False
        else:
            on_time = state.due_at is not None and state.resolved_at < state.due_at
    is_open = state.resolved_at is None and state.closed_at is None
    paused = state.paused_at is not None
    due = near = became = None
    if not paused and state.due_at is not None:
        due = _up(state.due_at)
        end = state.resolved_at or state.closed_at
        if end is None or end >= state.due_at:
            became = due
        if is_open:
            if state.due_at < state.received_at:
                near = due
            else:
                near_dt = calendar.near_due_at(
                    state.received_at, state.due_at, unit=state.limit_unit
                )
                near = min(_up(near_dt), due)
    return RefFacts(
        scopes=[
            "agency:" + state.agency,
            "level:" + state.level,
            "field:" + state.field,
            "city",
        ],
        channel=state.channel.value,
        received=_down(state.received_at),
        resolved=None if state.resolved_at is None else _down(state.resolved_at),
        on_time=on_time,
        open=is_open,
        paused=paused,
        due=due,
        near=near,
        became=became,
    )


def all_facts(
    events: list[DossierEvent],
    calendar: WorkingCalendar | None = None,
    *,
    second_supplement_late: bool = True,
) -> list[RefFacts]:
    cal = calendar or default_calendar()
    out = []
    for state in final_states(events, cal).values():
        f = reference_facts(state, cal, second_supplement_late=second_supplement_late)
        if f is not None:
            out.append(f)
    return out


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


def window_starts(t: int) -> dict[str, int]:
    now = datetime.fromtimestamp(t, VN_TZ)
    minute = now.replace(second=0, microsecond=0)
    hour = minute.replace(minute=0)
    midnight = hour.replace(hour=0)
    first_month_of_quarter = 3 * ((now.month - 1) // 3) + 1
    return {
        "1h": _epoch(minute - timedelta(minutes=59)),
        "24h": _epoch(hour - timedelta(hours=23)),
        "7d": _epoch(hour - timedelta(hours=167)),
        "30d": _epoch(hour - timedelta(hours=719)),
        "mtd": _epoch(midnight.replace(day=1)),
        "qtd": _epoch(midnight.replace(month=first_month_of_quarter, day=1)),
        "ytd": _epoch(midnight.replace(month=1, day=1)),
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


def snapshots_from_facts(facts: list[RefFacts], t: int) -> dict[str, dict[str, str]]:
    starts = window_starts(t)
    scopes = sorted({s for f in facts for s in f.scopes})
    out: dict[str, dict[str, str]] = {}
    for scope in scopes:
        mine = [f for f in facts if scope in f.scopes]
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
    now = datetime.fromtimestamp(t, VN_TZ)
    first_hour = t - t % 3600 - 167 * 3600
    today = now.date()
    scopes = sorted({s for f in facts for s in f.scopes})
    out: dict[str, dict[str, str]] = {}
    for scope in scopes:
        hourly: dict[str, dict[int, int]] = {m: {} for m in COUNTS}
        daily: dict[str, dict[int, int]] = {m: {} for m in COUNTS}
        for f in facts:
            if scope not in f.scopes:
                continue
            for metric, x in _instants(f):
                if x > t:
                    continue
                if x >= first_hour:
                    bucket = x - x % 3600
                    hourly[metric][bucket] = hourly[metric].get(bucket, 0) + 1
                local = datetime.fromtimestamp(x, VN_TZ)
                if (today - local.date()).days < 90:
                    day = _epoch(local.replace(hour=0, minute=0, second=0, microsecond=0))
                    daily[metric][day] = daily[metric].get(day, 0) + 1
        fields = {}
        for name, table in (("hourly", hourly), ("daily", daily)):
            for metric in COUNTS:
                ordered = {str(k): table[metric][k] for k in sorted(table[metric])}
                fields[name + "." + metric] = json.dumps(ordered, separators=(",", ":"))
        out[scope] = fields
    return out


def reference_snapshots(
    events: list[DossierEvent],
    t: int,
    *,
    calendar: WorkingCalendar | None = None,
    second_supplement_late: bool = True,
) -> dict[str, dict[str, str]]:
    """Every scope's flattened snapshot hash at clock t, by brute force."""
    facts = all_facts(events, calendar, second_supplement_late=second_supplement_late)
    return snapshots_from_facts(facts, t)


def reference_series(
    events: list[DossierEvent],
    t: int,
    *,
    calendar: WorkingCalendar | None = None,
    second_supplement_late: bool = True,
) -> dict[str, dict[str, str]]:
    """Every scope's flattened series hash at clock t, by brute force."""
    facts = all_facts(events, calendar, second_supplement_late=second_supplement_late)
    return series_from_facts(facts, t)
