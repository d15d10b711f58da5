"""Hypothesis strategies and an independent model of the lifecycle, for the property tests.

A `DossierPlan` is one dossier's history as plain data: field, channel and the steps
(event type, instant, status code, agency, extra fields) of a random walk through the
transition table `domain.lifecycle.NEXT`, with strictly increasing instants; a
`transferred` step may move the dossier to another agency, and every later step names
that agency. A `Population` is a set of such dossiers with a clock after all of them.
`DossierPlan.events(style)` renders it as contract events (through `tests.factories`),
every instant stamped in one UTC-offset style (`Z`, `+00:00`, `+07:00`, `-05:00`), so the
very same history can be sent with different offsets.

`expected_state` restates the lifecycle rules of docs/event-contract.md and of the
docstring of domain/lifecycle.py in plain code; the tests take their expected values
from it, never from `Lifecycle` itself. The walk uses `NEXT` only to choose inputs that
are valid.

Transfers and apology slips carry "the current status" by the contract, and the
validator accepts any of 2, 4, 5 or 6 for them. The plans draw that code freely from
those four (the dossier's own status among them): whatever code such an event carries,
the rule is that it changes no status.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from domain.lifecycle import NEXT, DossierState
from schemas.enums import EventType, Status, TimeUnit
from schemas.events import DossierEvent
from tests.factories import event

__all__ = [
    "STYLES",
    "VIETNAM",
    "DossierPlan",
    "Expected",
    "Population",
    "Step",
    "bad_step",
    "deliveries",
    "expected_state",
    "month_end_dates",
    "plans",
    "populations",
    "props",
    "stamp",
    "state_fields",
    "vn_midnight_after",
]

# Vietnam is UTC+7 all year, no daylight saving: stated here, not taken from the code.
VIETNAM = timezone(timedelta(hours=7))
STYLES = ("Z", "+00:00", "+07:00", "-05:00")
_OFFSETS: dict[str, tzinfo] = {
    "Z": UTC,
    "+00:00": UTC,
    "+07:00": VIETNAM,
    "-05:00": timezone(timedelta(hours=-5)),
}

# Status code after each event type (docs/event-contract.md, "Event types and their
# status codes"). Transfers and apology slips are absent: they change no status.
STATUS_AFTER: dict[EventType, Status] = {
    EventType.SUBMITTED: Status.SUBMITTED,
    EventType.ACCEPTED: Status.ACCEPTED,
    EventType.REFUSED: Status.REFUSED,
    EventType.PROCESSING: Status.IN_PROCESS,
    EventType.SUPPLEMENT_REQUESTED: Status.SUPPLEMENT_REQUESTED,
    EventType.SUPPLEMENT_RECEIVED: Status.IN_PROCESS,
    EventType.FEE_REQUESTED: Status.FEE_REQUESTED,
    EventType.FEE_PAID: Status.IN_PROCESS,
    EventType.WITHDRAWN: Status.WITHDRAWN,
    EventType.STOPPED: Status.STOPPED,
    EventType.RESOLVED: Status.RESOLVED,
    EventType.RETURNED: Status.RETURNED,
}
NO_STATUS_CHANGE = frozenset({EventType.TRANSFERRED, EventType.APOLOGY_ISSUED})
_SIDE_STATUSES = (
    Status.ACCEPTED,
    Status.IN_PROCESS,
    Status.SUPPLEMENT_REQUESTED,
    Status.FEE_REQUESTED,
)
CLOSING = frozenset({EventType.REFUSED, EventType.WITHDRAWN, EventType.STOPPED})
# Moves after which a dossier ends or can only be returned.
ENDINGS = CLOSING | {EventType.RESOLVED, EventType.RETURNED}

AGENCIES = (("SO-YTE", "city"), ("SO-TP", "city"), ("11311", "commune"), ("11320", "commune"))
FIELDS = ("health", "justice", "land", "civil_status")
# (channel, online_mode, the channel kind the figures count it under)
CHANNELS = (
    ("in_person", None, "in_person"),
    ("online", "full", "online_full"),
    ("online", "partial", "online_partial"),
    ("post", None, "post"),
)

_ID_NAMESPACE = uuid.UUID("6f1c1b9e-2d7a-4c1e-9a51-3b7d0c2e0a10")


def props(max_examples: int, **overrides: Any) -> settings:
    """Settings of every property here: reproducible (derandomized), no deadline, no database."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        **overrides,
    )


def stamp(dt: datetime, style: str) -> str:
    """ISO 8601 text of an aware instant with the offset `style` (`Z` spelt as `Z`)."""
    text = dt.astimezone(_OFFSETS[style]).isoformat()
    return text.replace("+00:00", "Z") if style == "Z" else text


def vn_midnight_after(instant: datetime) -> datetime:
    """00:00 in Vietnam of the day after the instant's Vietnam date."""
    local_day = instant.astimezone(VIETNAM).date()
    return datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=VIETNAM)


# -- plans ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One event of a plan, before rendering."""

    event_type: EventType
    at: datetime
    status: Status
    agency: tuple[str, str]  # (code, level) the event names
    limit: tuple[int, TimeUnit] | None = None
    appointment_at: datetime | None = None
    clock: str | None = None
    apology_at: datetime | None = None


@dataclass(frozen=True)
class DossierPlan:
    """One dossier's history: who it is and its steps in sequence order.

    Each step names the agency holding the dossier after it: the first one's, or the one
    a `transferred` event moved it to.
    """

    dossier_id: str
    field: str
    channel: tuple[str, str | None, str]
    steps: tuple[Step, ...]

    def events(self, style: str = "+07:00") -> list[DossierEvent]:
        """The contract events of the plan, instants stamped with the offset `style`."""
        channel, mode, _ = self.channel
        common: dict[str, Any] = {
            "dossier_id": self.dossier_id,
            "procedure": {"code": "1.000001", "field": self.field},
            "channel": channel,
            "online_mode": mode,
        }
        out = []
        for seq, step in enumerate(self.steps, start=1):
            kw = dict(common)
            kw["sequence"] = seq
            kw["agency"] = {"code": step.agency[0], "level": step.agency[1]}
            kw["status"] = int(step.status)
            kw["event_id"] = str(uuid.uuid5(_ID_NAMESPACE, f"{self.dossier_id}/{seq}"))
            kw["occurred_at"] = stamp(step.at, style)
            if step.limit is not None and step.appointment_at is not None:
                kw["time_limit"] = {"value": step.limit[0], "unit": step.limit[1].value}
                kw["appointment_at"] = stamp(step.appointment_at, style)
            if step.clock is not None:
                kw["clock"] = step.clock
            if step.apology_at is not None:
                kw["apology_appointment_at"] = stamp(step.apology_at, style)
            at = step.at.astimezone(_OFFSETS[style])
            out.append(event(step.event_type.value, at=at, **kw))
        return out


def _draw_step(
    draw: st.DrawFn,
    kind: EventType,
    at: datetime,
    current: Status | None,
    agency: tuple[str, str],
    *,
    may_move: bool = True,
) -> Step:
    """A contract-valid step of type `kind` at `at` for a dossier in status `current` held by
    `agency`; a transfer may name another agency (when `may_move`)."""
    if kind is EventType.TRANSFERRED and may_move:
        agency = draw(st.sampled_from(AGENCIES))
    if kind in NO_STATUS_CHANGE:
        options = [current] if current in _SIDE_STATUSES else []
        status = draw(st.sampled_from([*options, *_SIDE_STATUSES]))
    else:
        status = STATUS_AFTER[kind]
    if kind is EventType.ACCEPTED:
        unit = draw(st.sampled_from(list(TimeUnit)))
        if unit is TimeUnit.HOURS:
            value = draw(st.integers(1, 80))
            ahead = timedelta(hours=value)
        else:
            value = draw(st.integers(1, 30))
            ahead = timedelta(days=value)
        return Step(kind, at, status, agency, limit=(value, unit), appointment_at=at + ahead)
    if kind is EventType.SUPPLEMENT_REQUESTED:
        return Step(kind, at, status, agency, clock="pause")
    if kind is EventType.SUPPLEMENT_RECEIVED:
        clock = draw(st.sampled_from(["resume", "restart"]))
        return Step(kind, at, status, agency, clock=clock)
    if kind is EventType.APOLOGY_ISSUED:
        apology = at + timedelta(days=draw(st.integers(1, 10)))
        return Step(kind, at, status, agency, apology_at=apology)
    return Step(kind, at, status, agency)


_START_MIN = datetime(2024, 1, 1, tzinfo=VIETNAM)
_START_SPAN = int((datetime(2027, 1, 1, tzinfo=VIETNAM) - _START_MIN).total_seconds())


@st.composite
def plans(
    draw: st.DrawFn,
    *,
    dossier_id: str | None = None,
    start: datetime | None = None,
    max_steps: int = 10,
    max_gap: int = 3 * 86400,
    received: bool = False,
) -> DossierPlan:
    """A valid history of one dossier: a walk through NEXT, instants strictly increasing.

    Up to `max_steps` events. received=True reaches `accepted` first (maybe after
    `submitted`).
    """
    if dossier_id is None:
        dossier_id = f"HP-P-{draw(st.integers(0, 9999)):04d}"
    if start is None:
        seconds = draw(st.integers(0, _START_SPAN))
        micro = draw(st.one_of(st.just(0), st.integers(1, 999_999)))
        start = _START_MIN + timedelta(seconds=seconds, microseconds=micro)
    agency = draw(st.sampled_from(AGENCIES))
    at = start
    status: Status | None = None
    steps: list[Step] = []
    for i in range(max_steps):
        allowed = NEXT.get(status, frozenset())
        if not allowed:
            break
        going_on = sorted(allowed - ENDINGS, key=lambda t: t.value)
        ending = sorted(allowed & ENDINGS, key=lambda t: t.value)
        if received and status in (None, Status.SUBMITTED):
            ending = []  # reach `accepted` first
        # Each step: stop here (the dossier stays as it is) or take an ending, each about
        # one time in sixteen, else go on; so histories are about eight events long.
        choice = draw(st.integers(0, 15))
        if choice == 0 and i > 0:
            break
        if ending and (not going_on or choice == 1):
            kind = draw(st.sampled_from(ending))
        else:
            kind = draw(st.sampled_from(going_on))
        step = _draw_step(draw, kind, at, status, agency)
        agency = step.agency
        steps.append(step)
        if kind not in NO_STATUS_CHANGE:
            status = step.status
        at += timedelta(seconds=draw(st.integers(1, max_gap)))
    return DossierPlan(
        dossier_id=dossier_id,
        field=draw(st.sampled_from(FIELDS)),
        channel=draw(st.sampled_from(CHANNELS)),
        steps=tuple(steps),
    )


def status_after(steps: Iterable[Step]) -> Status | None:
    """The dossier's status after these (valid) steps, by the contract's table."""
    status: Status | None = None
    for step in steps:
        if step.event_type not in NO_STATUS_CHANGE:
            status = STATUS_AFTER[step.event_type]
    return status


@st.composite
def bad_step(draw: st.DrawFn, plan: DossierPlan) -> tuple[DossierPlan, int]:
    """The plan with one impossible event inserted; (new plan, its 1-based sequence).

    The event is contract-valid on its own but its type is not allowed from the status
    the dossier has at that point, so the lifecycle must reject it.
    """
    steps = list(plan.steps)
    k = draw(st.integers(0, len(steps)))
    current = status_after(steps[:k])
    impossible = sorted(set(EventType) - NEXT.get(current, frozenset()), key=lambda t: t.value)
    kind = draw(st.sampled_from(impossible))
    if k == 0:
        at = steps[0].at - timedelta(seconds=1) if steps else _START_MIN
    elif k == len(steps):
        at = steps[-1].at + timedelta(seconds=1)
    else:
        at = steps[k - 1].at + (steps[k].at - steps[k - 1].at) / 2
    # It names the agency holding the dossier then: another one would be a conflict.
    agency = steps[k - 1].agency if k else steps[0].agency if steps else AGENCIES[0]
    bad = _draw_step(draw, kind, at, current, agency, may_move=False)
    with_bad = (*steps[:k], bad, *steps[k:])
    return DossierPlan(plan.dossier_id, plan.field, plan.channel, with_bad), k + 1


@st.composite
def deliveries(draw: st.DrawFn, events: Sequence[DossierEvent]) -> list[DossierEvent]:
    """The events in any order, with resends of the very same objects interleaved."""
    out = list(draw(st.permutations(list(events))))
    if not events:
        return out
    resends = draw(
        st.lists(
            st.tuples(st.integers(0, len(events) - 1), st.integers(0, 10_000)),
            max_size=2 * len(events),
        )
    )
    for index, position in resends:
        out.insert(position % (len(out) + 1), events[index])
    return out


@dataclass(frozen=True)
class Population:
    """Dossiers of one test and a clock T at or after every instant of their histories."""

    plans: tuple[DossierPlan, ...]
    t: int  # epoch seconds

    def events(self, style: str = "+07:00") -> list[DossierEvent]:
        """Every dossier's events, in the order of their instants (sequence order kept)."""
        all_events = [e for p in self.plans for e in p.events(style)]
        return sorted(all_events, key=lambda e: (e.occurred_at, e.dossier_id, e.sequence))


def _epoch_floor(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1))


@st.composite
def populations(
    draw: st.DrawFn, *, max_dossiers: int = 20, same_year: bool | None = None
) -> Population:
    """Dossiers received within ~40 days of each other, with random channels and endings.

    same_year=True keeps every instant and the clock in one Vietnam year; None draws it.
    """
    if same_year is None:
        same_year = draw(st.booleans())
    year = draw(st.integers(2024, 2026))
    if same_year:  # receipts start by 29 Aug and histories last at most 40 + 8 * 2 days
        base = datetime(year, 1, 1, tzinfo=VIETNAM)
        base += timedelta(seconds=draw(st.integers(0, 240 * 86400)))
    else:
        base = datetime(year, 12, 1, tzinfo=VIETNAM)
        base += timedelta(seconds=draw(st.integers(0, 31 * 86400)))
    count = draw(st.integers(1, max_dossiers))
    items = []
    for i in range(count):
        start = base + timedelta(seconds=draw(st.integers(0, 40 * 86400)))
        received = draw(st.integers(0, 9)) > 0  # a few are never received
        plan = draw(
            plans(
                dossier_id=f"D-{i:04d}",
                start=start,
                max_steps=8,
                max_gap=2 * 86400,
                received=received,
            )
        )
        items.append(plan)
    last = max(step.at for p in items for step in p.steps)
    t = _epoch_floor(last) + draw(st.integers(0, 10 * 86400))
    if same_year:
        year_end = datetime(last.astimezone(VIETNAM).year + 1, 1, 1, tzinfo=VIETNAM)
        t = min(t, _epoch_floor(year_end) - 1)
    return Population(tuple(items), t)


# -- the independent model --------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the rules say a dossier's state is after its valid events, in sequence order."""

    status: Status | None
    last_seq: int
    channel: str | None
    agency: str
    level: str
    field: str
    received_at: datetime | None
    appointment_at: datetime | None
    due_at: datetime | None  # only when `due_known`
    due_known: bool
    paused_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    supplements: int
    apology_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.received_at is not None and self.resolved_at is None and self.closed_at is None


def expected_state(events: Sequence[DossierEvent], channel_kind: str | None = None) -> Expected:
    """The state the contract describes after these valid events, applied in order.

    - status: the code of the last event that is neither a transfer nor an apology slip;
    - received_at / appointment_at: those of `accepted`; resolved_at: `resolved`'s
      instant; closed_at: the instant of `refused`, `withdrawn` or `stopped`;
    - supplements: how many supplement requests; paused_at: the last request's instant
      while no `supplement_received` followed it;
    - agency and level: the first event's, then those of each `transferred` event (the
      dossier moves there whole); field and channel never change;
    - due_at, from the appointment: 00:00 in Vietnam of the day after the appointment
      date for day limits, the appointment instant for hour limits (on time means
      finished on or before the appointment date / instant). Stated only when no pause
      could have moved it: no supplement at all, or the first supplement request came at
      or after that due instant (a dossier overdue at its pause stays overdue: its due
      instant does not move through the pause and the resumption).
    """
    status: Status | None = None
    received_at = appointment_at = paused_at = resolved_at = closed_at = apology_at = None
    first_pause: datetime | None = None
    unit: TimeUnit | None = None
    supplements = 0
    had_supplement = False
    first = events[0] if events else None
    agency = (first.agency.code, first.agency.level.value) if first else ("", "")
    for e in events:
        t = e.event_type
        if t not in NO_STATUS_CHANGE:
            status = STATUS_AFTER[t]
        if t is EventType.TRANSFERRED:
            agency = (e.agency.code, e.agency.level.value)
        if t is EventType.ACCEPTED:
            assert e.time_limit is not None
            received_at, appointment_at, unit = e.occurred_at, e.appointment_at, e.time_limit.unit
        elif t is EventType.SUPPLEMENT_REQUESTED:
            supplements += 1
            had_supplement = True
            paused_at = e.occurred_at
            first_pause = first_pause or e.occurred_at
        elif t is EventType.SUPPLEMENT_RECEIVED:
            had_supplement = True
            paused_at = None
        elif t is EventType.RESOLVED:
            resolved_at = e.occurred_at
        elif t in CLOSING:
            closed_at = e.occurred_at
        elif t is EventType.APOLOGY_ISSUED:
            apology_at = e.apology_appointment_at
    due: datetime | None = None
    if appointment_at is not None:
        due = appointment_at if unit is TimeUnit.HOURS else vn_midnight_after(appointment_at)
    unmoved = not had_supplement or (
        due is not None and first_pause is not None and first_pause >= due
    )
    return Expected(
        status=status,
        last_seq=len(events),
        channel=channel_kind if first is not None else None,
        agency=agency[0],
        level=agency[1],
        field=first.procedure.field.value if first else "",
        received_at=received_at,
        appointment_at=appointment_at,
        due_at=due,
        due_known=appointment_at is None or unmoved,
        paused_at=paused_at,
        resolved_at=resolved_at,
        closed_at=closed_at,
        supplements=supplements,
        apology_at=apology_at,
    )


def state_fields(state: DossierState) -> dict[str, Any]:
    """The fields of a state that applying events decides (pending as its sequence numbers)."""
    return {
        "status": state.status,
        "last_seq": state.last_seq,
        "agency": state.agency,
        "level": state.level,
        "field": state.field,
        "procedure": state.procedure,
        "flags": state.flags,
        "channel": state.channel,
        "received_at": state.received_at,
        "appointment_at": state.appointment_at,
        "due_at": state.due_at,
        "paused_at": state.paused_at,
        "resolved_at": state.resolved_at,
        "closed_at": state.closed_at,
        "supplements": state.supplements,
        "limit": (state.limit_value, state.limit_unit),
        "apology_at": state.apology_at,
        "pending": sorted(state.pending),
    }


def month_end_dates() -> st.SearchStrategy[date]:
    """Last days of months in 2021-2029 (an instant late that day is next month in Vietnam)."""
    return st.builds(
        lambda y, m: date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1),
        st.integers(2021, 2029),
        st.integers(1, 12),
    )
