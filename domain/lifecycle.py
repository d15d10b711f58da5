"""Dossier lifecycle: applying events to a dossier's state, exactly once, in sequence order.

Pure core: no I/O and no clock reads. The worker keeps one `DossierState` per dossier
and calls `apply`; every figure is later derived from these states, so applying the
same event twice, or replaying a partition after a crash, changes nothing.

Rules:
- An event whose sequence number was already consumed is a duplicate and changes
  nothing (the same event id sent twice is the commonest case).
- An event ahead of the next expected sequence waits in `pending` until the gap is
  filled; the events then apply in sequence order.
- An event whose transition is impossible from the dossier's status is rejected with
  a reason (the worker sends it to the dead-letter topic). It still consumes its
  sequence number, so one bad event does not stall the dossier's later events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.calendar import VN_TZ, WorkingCalendar
from schemas.enums import Channel, EventType, OnlineMode, Status, TimeUnit
from schemas.events import ClockAction, DossierEvent

# Which event types each status allows next. None: the dossier is not known yet.
_OPEN_MOVES = frozenset(
    {
        EventType.PROCESSING,
        EventType.SUPPLEMENT_REQUESTED,
        EventType.FEE_REQUESTED,
        EventType.RESOLVED,
        EventType.WITHDRAWN,
        EventType.STOPPED,
        EventType.TRANSFERRED,
        EventType.APOLOGY_ISSUED,
    }
)
NEXT: dict[Status | None, frozenset[EventType]] = {
    None: frozenset({EventType.SUBMITTED, EventType.ACCEPTED, EventType.REFUSED}),
    Status.SUBMITTED: frozenset({EventType.ACCEPTED, EventType.REFUSED, EventType.WITHDRAWN}),
    Status.ACCEPTED: _OPEN_MOVES,
    Status.IN_PROCESS: _OPEN_MOVES,
    Status.SUPPLEMENT_REQUESTED: frozenset(
        {
            EventType.SUPPLEMENT_RECEIVED,
            EventType.WITHDRAWN,
            EventType.STOPPED,
            EventType.TRANSFERRED,
            EventType.APOLOGY_ISSUED,
        }
    ),
    Status.FEE_REQUESTED: frozenset(
        {
            EventType.FEE_PAID,
            EventType.RESOLVED,
            EventType.WITHDRAWN,
            EventType.STOPPED,
            EventType.TRANSFERRED,
            EventType.APOLOGY_ISSUED,
        }
    ),
    Status.RESOLVED: frozenset({EventType.RETURNED}),
}


class ChannelKind(StrEnum):
    """The four ways a dossier is counted as received."""

    IN_PERSON = "in_person"
    ONLINE_FULL = "online_full"
    ONLINE_PARTIAL = "online_partial"
    POST = "post"

    @classmethod
    def of(cls, channel: Channel, mode: OnlineMode | None) -> ChannelKind:
        if channel is Channel.ONLINE:
            return cls.ONLINE_FULL if mode is OnlineMode.FULL else cls.ONLINE_PARTIAL
        return cls.IN_PERSON if channel is Channel.IN_PERSON else cls.POST


class Outcome(StrEnum):
    """How applying one event ended."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    PENDING = "pending"  # waiting for an earlier sequence number
    REJECTED = "rejected"


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of one event, the events applied because of it, and rejections."""

    outcome: Outcome
    applied: tuple[DossierEvent, ...] = ()
    rejected: tuple[tuple[DossierEvent, str], ...] = ()


@dataclass(slots=True)
class DossierState:
    """What the worker knows of one dossier: enough to derive every figure."""

    dossier_id: str
    agency: str = ""
    level: str = ""
    field: str = ""
    channel: ChannelKind | None = None
    status: Status | None = None
    last_seq: int = 0
    received_at: datetime | None = None
    appointment_at: datetime | None = None
    due_at: datetime | None = None  # exclusive: on time iff resolved before it; None while paused
    paused_at: datetime | None = None
    supplements: int = 0
    limit_value: int | None = None
    limit_unit: TimeUnit | None = None
    apology_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    pending: dict[int, DossierEvent] = dataclasses.field(default_factory=dict)

    @property
    def received(self) -> bool:
        return self.received_at is not None

    @property
    def is_open(self) -> bool:
        """Received and neither resolved nor closed otherwise."""
        return self.received_at is not None and self.resolved_at is None and self.closed_at is None


def due_from_appointment(appointment_at: datetime, unit: TimeUnit) -> datetime:
    """The exclusive due instant of an appointment (ngày hẹn trả).

    Day limits: the start of the day after the appointment's date in Vietnam, since
    finishing on or before the appointment date is on time (the 766 method). Hour
    limits: the appointment instant itself.
    """
    if unit is TimeUnit.HOURS:
        return appointment_at.astimezone(VN_TZ)
    local = appointment_at.astimezone(VN_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


ResumeDue = Callable[["DossierState", datetime, datetime, ClockAction | None], datetime]


def calendar_resume(calendar: WorkingCalendar) -> ResumeDue:
    """Move the due time after a supplement pause as the working-day calendar says."""

    def resume(
        state: DossierState, paused_at: datetime, resumed_at: datetime, clock: ClockAction | None
    ) -> datetime:
        assert state.due_at is not None and state.limit_unit is not None
        assert state.limit_value is not None
        if clock is ClockAction.RESTART:
            return calendar.due_at(resumed_at, state.limit_value, state.limit_unit)
        return calendar.due_after_resume(
            state.due_at, paused_at, resumed_at, value=state.limit_value, unit=state.limit_unit
        )

    return resume


class Lifecycle:
    """Applies events to dossier states; `resume_due` moves the due time after a pause."""

    def __init__(self, resume_due: ResumeDue) -> None:
        self._resume_due = resume_due

    def apply(self, state: DossierState, event: DossierEvent) -> ApplyResult:
        seq = event.sequence
        if seq <= state.last_seq or seq in state.pending:
            return ApplyResult(Outcome.DUPLICATE)
        if seq > state.last_seq + 1:
            state.pending[seq] = event
            return ApplyResult(Outcome.PENDING)
        applied: list[DossierEvent] = []
        rejected: list[tuple[DossierEvent, str]] = []
        current: DossierEvent | None = event
        while current is not None:
            reason = self._transition(state, current)
            state.last_seq = current.sequence
            if reason is None:
                applied.append(current)
            else:
                rejected.append((current, reason))
            current = state.pending.pop(state.last_seq + 1, None)
        outcome = Outcome.APPLIED if applied and applied[0] is event else Outcome.REJECTED
        return ApplyResult(outcome, tuple(applied), tuple(rejected))

    def _transition(self, s: DossierState, e: DossierEvent) -> str | None:
        allowed = NEXT.get(s.status, frozenset())
        if e.event_type not in allowed:
            current = "new" if s.status is None else f"{int(s.status)} ({s.status.label_vi})"
            return f"impossible transition: {e.event_type.value} from status {current}"
        if s.status is None:
            s.agency, s.level, s.field = (
                e.agency.code,
                e.agency.level.value,
                e.procedure.field.value,
            )
            s.channel = ChannelKind.of(e.channel, e.online_mode)
        t = e.event_type
        if t is EventType.ACCEPTED:
            assert e.appointment_at is not None and e.time_limit is not None  # the contract says so
            s.received_at = e.occurred_at
            s.appointment_at = e.appointment_at
            s.due_at = due_from_appointment(e.appointment_at, e.time_limit.unit)
            s.limit_value, s.limit_unit = e.time_limit.value, e.time_limit.unit
        elif t is EventType.SUPPLEMENT_REQUESTED:
            s.supplements += 1
            s.paused_at = e.occurred_at
        elif t is EventType.SUPPLEMENT_RECEIVED:
            if s.paused_at is not None and s.due_at is not None:
                s.due_at = self._resume_due(s, s.paused_at, e.occurred_at, e.clock)
            s.paused_at = None
        elif t is EventType.APOLOGY_ISSUED:
            s.apology_at = e.apology_appointment_at
        elif t is EventType.RESOLVED:
            s.resolved_at = e.occurred_at
        elif t in (EventType.REFUSED, EventType.WITHDRAWN, EventType.STOPPED):
            s.closed_at = e.occurred_at
        if t not in (EventType.TRANSFERRED, EventType.APOLOGY_ISSUED):
            s.status = e.status
        return None
