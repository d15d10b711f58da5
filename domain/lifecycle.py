"""Dossier lifecycle: applying events to a dossier's state, exactly once, in sequence order.

Pure core: no I/O and no clock reads. The worker keeps one `DossierState` per dossier
and calls `apply`; every figure is later derived from these states, so applying the
same event twice, or replaying a partition after a crash, changes nothing.

Rules (each decision is named as one):
- Order. Events apply in sequence order (1, 2, 3...). An event ahead of the next
  expected sequence waits in `pending` until the gap is filled; the events then apply
  in sequence order.
- Duplicates and conflicts. Decision: deduplication is by sequence number, checked
  against the event's content. A message whose sequence is already used (applied,
  rejected or waiting) is a duplicate when it is the same event (same `event_id` and the
  same content; `emitted_at` may differ): it changes nothing. Otherwise it is a
  conflict: it changes nothing either and goes to the dead-letter topic with its reason.
  Each used sequence keeps an 8-byte fingerprint of its event for this check.
- Identity. The dossier's first applied event fixes its agency, procedure and channel.
  A later event whose procedure or channel (with online mode) differs, or whose agency
  differs unless it is `transferred`, is a conflict: it is not this dossier's event,
  so it does not use up its sequence number.
- Transfers. Decision: a `transferred` event names the agency that holds the dossier
  from then on. The dossier moves there whole: all of its contributions (receipt,
  resolution, overdue, gauges) count under the new agency and level, as if it had
  always been there. `transferred` and `apology_issued` never change the status.
- Impossible moves. An event whose transition is impossible from the dossier's status
  is rejected with a reason. It still uses up its sequence number, so one bad event does
  not stall the dossier's later events.
- All or nothing. Each event is applied to a copy of the state and checked (the
  worker's check computes its figure facts); if anything raises, the event is rejected
  with the error as its reason, uses up its sequence, and the state is as before.
  A check reads only the fields of `CONTRIBUTION_FIELDS`: when the caller gives the
  check's value for the state before the event (`known`) and the event leaves those
  fields as they were (a status change alone, an apology slip), that value is the new
  state's too, and the check is not run again.
- Invalid messages. A message that fails the contract but names a readable dossier id
  and sequence uses up that sequence (`void`), so the dossier's later events can apply.
- Times going backwards. Decision: an event whose occurred_at is earlier than the latest
  time already applied to its dossier (two desks whose clocks disagree) is applied at
  that latest time (clamped), and the dossier is flagged `time_clamped`.
- Overdue under a pause. Decision: a supplement request (chờ bổ sung) pauses the
  deadline only if the dossier is not yet overdue when it is made (paused_at < due_at).
  A dossier overdue at its pause stays overdue: its due instant does not move, through
  the pause and the resumption (resume or restart), so asking for documents after the
  deadline cannot hide a late dossier.
- Gap release. `release` ends a gap that was never filled: the missing sequences are
  taken as used (void), the waiting events apply, and the dossier is flagged
  `gap_released`. The worker calls it after a configurable time.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from sys import intern
from typing import Any, NamedTuple

import orjson

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
_NO_MOVES: frozenset[EventType] = frozenset()  # a closed dossier's
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
    REJECTED = "rejected"  # dead-lettered: impossible, conflicting, or failed to apply


# Flags a dossier can carry: problems of its agency's feed, kept for the agency to repair.
FLAG_GAP_RELEASED = "gap_released"
FLAG_TIME_CLAMPED = "time_clamped"

FINGERPRINT_SIZE = 8
VOID_PRINT = bytes(FINGERPRINT_SIZE)  # the fingerprint of a sequence used by no valid event


def _plain(value: object) -> object:
    return value.__dict__  # the event's nested models (agency, procedure, time limit)


def fingerprint(event: DossierEvent) -> bytes:
    """8 bytes that tell one event from another with the same sequence (emitted_at aside).

    A digest of the event's fields in their canonical JSON form (orjson writes each
    datetime, UUID and enum one way), so equal events give equal fingerprints however
    their JSON was spaced or ordered.
    """
    fields = dict(event.__dict__)
    del fields["emitted_at"]
    text = orjson.dumps(fields, default=_plain)
    return hashlib.blake2b(text, digest_size=FINGERPRINT_SIZE).digest()


@dataclass(frozen=True, slots=True)
class Void:
    """A sequence number used by a message that cannot apply (invalid, or a released gap)."""

    sequence: int
    reason: str


Waiting = DossierEvent | Void

NO_FLAGS: frozenset[str] = frozenset()
NO_PENDING: dict[int, Waiting] = {}  # shared by every dossier with nothing waiting: never written


NOT_CHECKED: Any = object()  # ApplyResult.facts when no check ran


class ApplyResult(NamedTuple):
    """The outcome of one event, the events applied because of it, and rejections.

    `consumed` says whether the event used up its sequence (a conflict does not).
    `facts` is what the check returned for the final state, or `NOT_CHECKED`.
    (A named tuple: one is made for every message.)
    """

    outcome: Outcome
    applied: tuple[DossierEvent, ...] = ()
    rejected: tuple[tuple[DossierEvent, str], ...] = ()
    facts: Any = NOT_CHECKED
    consumed: bool = True


@dataclass(slots=True)
class DossierState:
    """What the worker knows of one dossier: enough to derive every figure."""

    dossier_id: str
    agency: str = ""
    level: str = ""
    field: str = ""
    procedure: str = ""
    channel: ChannelKind | None = None
    status: Status | None = None
    last_seq: int = 0
    received_at: datetime | None = None
    appointment_at: datetime | None = None
    due_at: datetime | None = None  # exclusive: on time iff resolved before it
    paused_at: datetime | None = None  # waiting for a supplement since
    supplements: int = 0
    limit_value: int | None = None
    limit_unit: TimeUnit | None = None
    apology_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    last_at: datetime | None = None  # latest occurred_at applied (after clamping)
    prints: bytes = b""  # fingerprints of sequences 1..last_seq, FINGERPRINT_SIZE each
    flags: frozenset[str] = NO_FLAGS
    # Events waiting for an earlier sequence. Most dossiers never wait: they share one
    # empty dict, never written (`wait` gives a dossier its own before the first entry).
    pending: dict[int, Waiting] = dataclasses.field(default_factory=lambda: NO_PENDING)

    @property
    def received(self) -> bool:
        return self.received_at is not None

    @property
    def is_open(self) -> bool:
        """Received and neither resolved nor closed otherwise."""
        return self.received_at is not None and self.resolved_at is None and self.closed_at is None

    @property
    def paused(self) -> bool:
        """Waiting for a supplement with the deadline stopped (not when overdue at the pause)."""
        return self.paused_at is not None and not self.overdue_at_pause

    @property
    def overdue_at_pause(self) -> bool:
        """Paused after its due instant had passed: it stays overdue (see the module doc)."""
        return (
            self.paused_at is not None and self.due_at is not None and self.due_at <= self.paused_at
        )

    @property
    def waiting_events(self) -> int:
        """Events waiting for an earlier sequence (void placeholders not counted)."""
        if not self.pending:
            return 0
        return sum(1 for w in self.pending.values() if not isinstance(w, Void))

    def wait(self, seq: int, waiting: Waiting) -> None:
        """Hold `waiting` until the sequences before `seq` are used."""
        if self.pending is NO_PENDING:
            self.pending = {}
        self.pending[seq] = waiting

    def print_at(self, seq: int) -> bytes | None:
        """The fingerprint of a used sequence, or None."""
        if not 1 <= seq <= self.last_seq:
            return None
        at = (seq - 1) * FINGERPRINT_SIZE
        return self.prints[at : at + FINGERPRINT_SIZE] or None


_FIELDS = tuple(f.name for f in dataclasses.fields(DossierState))

# The fields a dossier's contribution to the figures depends on (what a `Check` may
# read): `domain.figures.dossier_facts` reads these and no others (a unit test holds it).
CONTRIBUTION_FIELDS = (
    "agency",
    "level",
    "field",
    "channel",
    "received_at",
    "due_at",
    "paused_at",
    "supplements",
    "limit_unit",
    "resolved_at",
    "closed_at",
)


def same_contribution(state: DossierState, values: tuple[object, ...]) -> bool:
    """Whether every field of `CONTRIBUTION_FIELDS` still holds the very object it held
    when `state_values` took `values` (identity: a field set again, even to an equal
    value, counts as changed; the supplement count, an integer, by value)."""
    return (
        state.agency is values[1]
        and state.level is values[2]
        and state.field is values[3]
        and state.channel is values[5]
        and state.received_at is values[8]
        and state.due_at is values[10]
        and state.paused_at is values[11]
        and state.supplements == values[12]
        and state.limit_unit is values[14]
        and state.resolved_at is values[16]
        and state.closed_at is values[17]
    )


def state_values(state: DossierState) -> tuple[object, ...]:
    """Every field of a state, in the order of `_FIELDS`: the undo copy taken before a
    change (the `pending` dict is shared: copy it too before changing it).

    Taken for every event, so every field is named: compiled, these are direct reads into
    one tuple, where making a `DossierState` runs the dataclass's `__init__` (interpreted
    Python, even compiled). A unit test fails if a field is missing here.
    """
    return (
        state.dossier_id,
        state.agency,
        state.level,
        state.field,
        state.procedure,
        state.channel,
        state.status,
        state.last_seq,
        state.received_at,
        state.appointment_at,
        state.due_at,
        state.paused_at,
        state.supplements,
        state.limit_value,
        state.limit_unit,
        state.apology_at,
        state.resolved_at,
        state.closed_at,
        state.last_at,
        state.prints,
        state.flags,
        state.pending,
    )


def restore_state(state: DossierState, values: tuple[object, ...]) -> None:
    """Put back the fields `state_values` took (after a failure only: rarely)."""
    for name, value in zip(_FIELDS, values, strict=True):
        setattr(state, name, value)


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
Check = Callable[[DossierState], Any]


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


def identity_conflict(state: DossierState, event: DossierEvent) -> str | None:
    """Why `event` cannot be this dossier's, or None (see Identity in the module doc)."""
    if state.status is None:
        return None
    procedure = event.procedure
    # Checked for every event: the field (a StrEnum member, equal to its value) is
    # compared as it is, without reading `.value` (a Python-level property of Enum).
    if procedure.code != state.procedure or procedure.field != state.field:
        return (
            f"conflict: procedure {procedure.code} ({procedure.field.value}) is not "
            f"the dossier's {state.procedure} ({state.field})"
        )
    kind = ChannelKind.of(event.channel, event.online_mode)
    if kind is not state.channel:
        return f"conflict: channel {kind.value} is not the dossier's {state.channel}"
    if event.agency.code != state.agency and event.event_type is not EventType.TRANSFERRED:
        return (
            f"conflict: agency {event.agency.code} is not the dossier's {state.agency} "
            "(a move between agencies is a 'transferred' event)"
        )
    return None


class Lifecycle:
    """Applies events to dossier states; `resume_due` moves the due time after a pause."""

    def __init__(self, resume_due: ResumeDue) -> None:
        self._resume_due = resume_due

    def apply(
        self,
        state: DossierState,
        event: DossierEvent,
        check: Check | None = None,
        known: Any = NOT_CHECKED,
    ) -> ApplyResult:
        """Apply one event (and the waiting ones it releases); `check` vets each new state.

        `known`: what `check` returns for `state` as it is now, when the caller has it
        (see All or nothing in the module doc)."""
        seq = event.sequence
        if seq <= state.last_seq:
            used = state.print_at(seq)  # None in records kept before fingerprints were
            if used == VOID_PRINT:
                return self._conflict(
                    event, f"conflict: sequence {seq} was used by a message that could not apply"
                )
            if used is None or used == fingerprint(event):
                return ApplyResult(Outcome.DUPLICATE)
            return self._conflict(
                event, f"conflict: sequence {seq} is already used by another event"
            )
        waiting = state.pending.get(seq)
        if waiting is not None:
            if isinstance(waiting, Void):
                return self._conflict(
                    event, f"conflict: sequence {seq} was used by {waiting.reason}"
                )
            if fingerprint(waiting) == fingerprint(event):
                return ApplyResult(Outcome.DUPLICATE)
            return self._conflict(
                event, f"conflict: sequence {seq} is already used by another event"
            )
        if seq > state.last_seq + 1:
            state.wait(seq, event)
            return ApplyResult(Outcome.PENDING)
        reason = identity_conflict(state, event)
        if reason is not None:
            return self._conflict(event, reason)
        return self._drain(state, event, check, trigger=event, known=known)

    def void(
        self, state: DossierState, sequence: int, reason: str, check: Check | None = None
    ) -> ApplyResult:
        """Use up `sequence` for a message that cannot apply (it is dead-lettered)."""
        if sequence <= state.last_seq or sequence in state.pending:
            return ApplyResult(Outcome.REJECTED, consumed=False)
        if sequence > state.last_seq + 1:
            state.wait(sequence, Void(sequence, reason))
            return ApplyResult(Outcome.REJECTED)
        result = self._drain(state, Void(sequence, reason), check, trigger=None)
        return result._replace(outcome=Outcome.REJECTED)

    def release(self, state: DossierState, check: Check | None = None) -> ApplyResult:
        """End the gap before the first waiting event: missing sequences become void."""
        if not state.pending:
            return ApplyResult(Outcome.APPLIED, consumed=False)
        first = min(state.pending)
        missing = first - state.last_seq - 1
        state.prints += VOID_PRINT * missing
        state.last_seq = first - 1
        state.flags = state.flags | {FLAG_GAP_RELEASED}
        return self._drain(state, state.pending.pop(first), check, trigger=None)

    @staticmethod
    def _conflict(event: DossierEvent, reason: str) -> ApplyResult:
        return ApplyResult(Outcome.REJECTED, rejected=((event, reason),), consumed=False)

    def _drain(
        self,
        state: DossierState,
        first: Waiting,
        check: Check | None,
        *,
        trigger: object,
        known: Any = NOT_CHECKED,
    ) -> ApplyResult:
        applied: list[DossierEvent] = []
        rejected: list[tuple[DossierEvent, str]] = []
        facts: Any = known  # the check's value for the state as it is (void steps keep it)
        current: Waiting | None = first
        while current is not None:
            if isinstance(current, Void):
                state.last_seq = current.sequence
                state.prints += VOID_PRINT
            else:
                reason = identity_conflict(state, current) if current is not trigger else None
                if reason is not None:
                    # A waiting event that turns out not to be this dossier's: the gap stays.
                    rejected.append((current, reason))
                    break
                reason, facts = self._step(state, current, check, facts)
                state.last_seq = current.sequence
                state.prints += fingerprint(current)
                if reason is None:
                    applied.append(current)
                else:
                    rejected.append((current, reason))
            current = state.pending.pop(state.last_seq + 1, None)
        outcome = Outcome.APPLIED if applied and applied[0] is trigger else Outcome.REJECTED
        if trigger is None and applied:
            outcome = Outcome.APPLIED
        return ApplyResult(outcome, tuple(applied), tuple(rejected), facts)

    def _step(
        self, state: DossierState, event: DossierEvent, check: Check | None, facts: Any
    ) -> tuple[str | None, Any]:
        """Apply one event all or nothing; return (reason it was rejected, facts).

        `facts`: the check's value for the state before the event, or NOT_CHECKED."""
        backup = state_values(state)  # restored only when something fails (rarely)
        try:
            reason = self._transition(state, event)
            if reason is not None:
                restore_state(state, backup)
                return reason, facts
            if check is None:
                new_facts = NOT_CHECKED
            elif facts is not NOT_CHECKED and same_contribution(state, backup):
                new_facts = facts  # what the check reads did not change
            else:
                new_facts = check(state)
        except Exception as exc:  # any error leaves the state as it was (all or nothing)
            restore_state(state, backup)
            return f"cannot apply: {type(exc).__name__}: {exc}", facts
        return None, new_facts

    def _transition(self, s: DossierState, e: DossierEvent) -> str | None:
        allowed = NEXT.get(s.status, _NO_MOVES)
        if e.event_type not in allowed:
            current = "new" if s.status is None else f"{int(s.status)} ({s.status.label_vi})"
            return f"impossible transition: {e.event_type.value} from status {current}"
        at = e.occurred_at
        if s.last_at is not None and at < s.last_at:
            at = s.last_at
            s.flags = s.flags | {FLAG_TIME_CLAMPED}
        s.last_at = at
        if s.status is None:
            # Interned: a few hundred values shared by every dossier, not a copy each.
            # An enum member's `_value_` is the object `.value` returns, read without
            # the Python-level property `.value` is.
            s.agency, s.level = intern(e.agency.code), e.agency.level._value_
            s.procedure, s.field = intern(e.procedure.code), e.procedure.field._value_
            s.channel = ChannelKind.of(e.channel, e.online_mode)
        t = e.event_type
        if t is EventType.ACCEPTED:
            assert e.appointment_at is not None and e.time_limit is not None  # the contract says so
            s.received_at = at
            s.appointment_at = e.appointment_at
            s.due_at = due_from_appointment(e.appointment_at, e.time_limit.unit)
            s.limit_value, s.limit_unit = e.time_limit.value, e.time_limit.unit
        elif t is EventType.SUPPLEMENT_REQUESTED:
            s.supplements += 1
            s.paused_at = at
        elif t is EventType.SUPPLEMENT_RECEIVED:
            if s.paused_at is not None and s.due_at is not None and not s.overdue_at_pause:
                s.due_at = self._resume_due(s, s.paused_at, at, e.clock)
            s.paused_at = None
        elif t is EventType.APOLOGY_ISSUED:
            s.apology_at = e.apology_appointment_at
        elif t is EventType.TRANSFERRED:
            s.agency, s.level = intern(e.agency.code), e.agency.level._value_
        elif t is EventType.RESOLVED:
            s.resolved_at = at
        elif t in (EventType.REFUSED, EventType.WITHDRAWN, EventType.STOPPED):
            s.closed_at = at
        if t not in (EventType.TRANSFERRED, EventType.APOLOGY_ISSUED):
            s.status = e.status
        return None
