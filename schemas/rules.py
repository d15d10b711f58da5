"""The contract's rules beyond each field's own type.

`DossierEvent` (schemas/events.py) checks them in its validators, and its JSON Schema
states those it can from the same tables. `plain_rules_hold` checks them all at once,
for the plain reader of `events.parse_event`. Compiled with the worker's core
(common/native.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from schemas.enums import (
    AgencyLevel,
    Channel,
    ClockAction,
    EventType,
    Status,
    TimeUnit,
)

if TYPE_CHECKING:
    from schemas.events import DossierEvent
    from schemas.registry import AgencyRegistry

# Emitting systems' clocks drift; an event may claim to be emitted a little before it happened.
CLOCK_SKEW = timedelta(minutes=5)

# The statuses of a dossier in the agency's hands, between acceptance and resolution.
_IN_HAND = frozenset(
    {Status.ACCEPTED, Status.IN_PROCESS, Status.SUPPLEMENT_REQUESTED, Status.FEE_REQUESTED}
)
# Which status codes each event type may carry. Transfers and apology slips happen
# without a status change, so they carry the status the dossier is in.
ALLOWED_STATUS: dict[EventType, frozenset[Status]] = {
    EventType.SUBMITTED: frozenset({Status.SUBMITTED}),
    EventType.ACCEPTED: frozenset({Status.ACCEPTED}),
    EventType.REFUSED: frozenset({Status.REFUSED}),
    EventType.PROCESSING: frozenset({Status.IN_PROCESS}),
    EventType.SUPPLEMENT_REQUESTED: frozenset({Status.SUPPLEMENT_REQUESTED}),
    EventType.SUPPLEMENT_RECEIVED: frozenset({Status.IN_PROCESS}),
    EventType.FEE_REQUESTED: frozenset({Status.FEE_REQUESTED}),
    EventType.FEE_PAID: frozenset({Status.IN_PROCESS}),
    EventType.WITHDRAWN: frozenset({Status.WITHDRAWN}),
    EventType.STOPPED: frozenset({Status.STOPPED}),
    EventType.RESOLVED: frozenset({Status.RESOLVED}),
    EventType.RETURNED: frozenset({Status.RETURNED}),
    EventType.TRANSFERRED: _IN_HAND,
    EventType.APOLOGY_ISSUED: _IN_HAND,
}
REASON_REQUIRED = frozenset({EventType.REFUSED, EventType.WITHDRAWN, EventType.STOPPED})


CLOCK_REQUIRED: dict[EventType, frozenset[ClockAction]] = {
    EventType.SUPPLEMENT_REQUESTED: frozenset({ClockAction.PAUSE}),
    EventType.SUPPLEMENT_RECEIVED: frozenset({ClockAction.RESUME, ClockAction.RESTART}),
}

YEAR_MIN, YEAR_MAX = 2000, 2100  # of every date-time, as written (before any UTC conversion)
MAX_HOURS = 2000  # the longest time limit in hours


def consistency_problem(event: DossierEvent) -> tuple[str, str] | None:
    """The first cross-field rule an event breaks, as (the field to blame, why), or None."""
    event_type, status, channel = event.event_type, event.status, event.channel
    online_mode, clock, reason = event.online_mode, event.clock, event.reason
    occurred_at, appointment_at = event.occurred_at, event.appointment_at
    allowed = ALLOWED_STATUS[event_type]
    if status not in allowed:
        codes = ", ".join(str(int(s)) for s in sorted(allowed))
        return "status", f"event_type {event_type.value!r} needs {codes}"
    if channel is Channel.ONLINE and online_mode is None:
        return "online_mode", "required when channel is 'online' (full|partial)"
    if channel is not Channel.ONLINE and online_mode is not None:
        return "online_mode", "only allowed when channel is 'online'"
    if event_type is EventType.ACCEPTED:
        if event.time_limit is None:
            return "time_limit", "required when event_type is 'accepted'"
        if appointment_at is None:
            return "appointment_at", "required when event_type is 'accepted'"
    if appointment_at is not None and appointment_at < occurred_at:
        return "appointment_at", "must not be before occurred_at"
    clocks = CLOCK_REQUIRED.get(event_type)
    if clocks is None and clock is not None:
        return "clock", "only allowed on supplement_requested/supplement_received"
    if clocks is not None and clock not in clocks:
        names = " or ".join(sorted(c.value for c in clocks))
        return "clock", f"event_type {event_type.value!r} needs {names}"
    if event_type in REASON_REQUIRED and not reason:
        return "reason", f"required when event_type is {event_type.value!r}"
    if event_type is EventType.APOLOGY_ISSUED:
        if event.apology_appointment_at is None:
            return "apology_appointment_at", "required for an apology slip"
    elif event.apology_appointment_at is not None:
        return "apology_appointment_at", "only allowed on apology_issued"
    if event.emitted_at < occurred_at - CLOCK_SKEW:
        return "emitted_at", "must not be before occurred_at"
    return None


def plausible_time(t: datetime | None) -> bool:
    """A date-time's year, as written, is within YEAR_MIN-YEAR_MAX (None: nothing to check)."""
    return t is None or YEAR_MIN <= t.year <= YEAR_MAX


def agency_problem(code: str, level: AgencyLevel, registry: AgencyRegistry) -> str | None:
    """Why the registry refuses an agency code at this level, or None."""
    agency = registry.get(code)
    if agency is None:
        return f"unknown agency code {code!r}: not in the agency registry"
    if agency.level != level:
        return f"agency {code} ({agency.name}) is level {agency.level.value!r}, not {level.value!r}"
    return None


def limit_too_long(value: int, unit: TimeUnit) -> bool:
    """A time limit in hours longer than MAX_HOURS."""
    return unit is TimeUnit.HOURS and value > MAX_HOURS


def plain_rules_hold(event: DossierEvent, registry: AgencyRegistry | None) -> bool:
    """Whether an event its fields' types accept keeps every rule of the model's
    validators: the years, the hours limit, the registry, the cross-field rules."""
    if not (
        plausible_time(event.occurred_at)
        and plausible_time(event.emitted_at)
        and plausible_time(event.appointment_at)
        and plausible_time(event.apology_appointment_at)
    ):
        return False
    limit = event.time_limit
    if limit is not None and limit_too_long(limit.value, limit.unit):
        return False
    if registry is not None and agency_problem(event.agency.code, event.agency.level, registry):
        return False
    return consistency_problem(event) is None
