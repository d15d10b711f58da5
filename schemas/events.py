"""The dossier event contract (version 1): one envelope for every status change."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.enums import (
    AgencyLevel,
    Channel,
    EventType,
    OnlineMode,
    ProcedureField,
    Status,
    TimeUnit,
)
from schemas.errors import EventValidationError

SCHEMA_VERSION = 1

# Emitting systems' clocks drift; an event may claim to be emitted a little before it happened.
CLOCK_SKEW = timedelta(minutes=5)

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
    EventType.TRANSFERRED: frozenset(
        {Status.ACCEPTED, Status.IN_PROCESS, Status.SUPPLEMENT_REQUESTED, Status.FEE_REQUESTED}
    ),
    EventType.APOLOGY_ISSUED: frozenset(
        {Status.ACCEPTED, Status.IN_PROCESS, Status.SUPPLEMENT_REQUESTED, Status.FEE_REQUESTED}
    ),
}
REASON_REQUIRED = frozenset({EventType.REFUSED, EventType.WITHDRAWN, EventType.STOPPED})


class ClockAction(StrEnum):
    """What a supplement request or its answer does to the deadline clock."""

    PAUSE = "pause"  # supplement requested: the clock stops
    RESUME = "resume"  # supplement received: the clock goes on where it stopped
    RESTART = "restart"  # supplement received: the full time limit counts again


CLOCK_REQUIRED: dict[EventType, frozenset[ClockAction]] = {
    EventType.SUPPLEMENT_REQUESTED: frozenset({ClockAction.PAUSE}),
    EventType.SUPPLEMENT_RECEIVED: frozenset({ClockAction.RESUME, ClockAction.RESTART}),
}

_STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]*$")]


class AgencyRef(BaseModel):
    """The receiving agency: its registry code and its level."""

    model_config = _STRICT

    code: Code = Field(description="agency code from the agency registry, e.g. SO-YTE or 11311")
    level: AgencyLevel = Field(description="city (departments, bodies) or commune (xã, phường)")


class ProcedureRef(BaseModel):
    """The administrative procedure (thủ tục) the dossier is for."""

    model_config = _STRICT

    code: Code = Field(description="procedure code from the national procedure database")
    field: ProcedureField = Field(description="field (lĩnh vực) of the procedure")


class TimeLimit(BaseModel):
    """The procedure's time limit for resolution."""

    model_config = _STRICT

    value: int = Field(ge=1, le=3650, description="amount of the time limit")
    unit: TimeUnit = Field(description="working_days, calendar_days or hours")

    @model_validator(mode="after")
    def _hours_in_range(self) -> TimeLimit:
        if self.unit is TimeUnit.HOURS and self.value > 2000:
            raise ValueError("a time limit in hours must be at most 2000 hours")
        return self


class DossierEvent(BaseModel):
    """One change of one dossier, as an agency's system reports it.

    The contract carries no personal data of applicants: unknown fields are rejected.
    Validate with `parse_event` (or `model_validate(..., context={"registry": reg})`)
    to check the agency code against the registry too.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        title="DossierEvent",
        json_schema_extra={"$id": "https://dossier-stream/schemas/dossier-event.v1.json"},
    )

    schema_version: Literal[1] = Field(1, description="version of this contract")
    event_id: UUID = Field(description="unique id of this event (a UUID); duplicates are ignored")
    dossier_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[0-9A-Za-z][0-9A-Za-z._:/-]*$",
        description="the dossier's id (mã hồ sơ), unique across agencies",
    )
    sequence: int = Field(
        ge=1, le=100_000, description="per-dossier sequence number: 1, 2, 3... in order of change"
    )
    event_type: EventType = Field(description="what happened")
    status: Status = Field(description="national status code after the event (1-10)")
    occurred_at: AwareDatetime = Field(description="when it happened, with a UTC offset")
    emitted_at: AwareDatetime = Field(description="when the agency's system sent it")
    agency: AgencyRef
    procedure: ProcedureRef
    channel: Channel = Field(description="in_person, online or post")
    online_mode: OnlineMode | None = Field(
        None, description="for online dossiers: full (toàn trình) or partial (một phần)"
    )
    time_limit: TimeLimit | None = Field(None, description="required when accepted")
    appointment_at: AwareDatetime | None = Field(
        None, description="appointment (ngày hẹn trả) given at receipt; required when accepted"
    )
    clock: ClockAction | None = Field(
        None, description="pause on supplement_requested; resume or restart on supplement_received"
    )
    reason: str | None = Field(
        None, min_length=1, max_length=500, description="required for refused, withdrawn, stopped"
    )
    apology_appointment_at: AwareDatetime | None = Field(
        None,
        description="new date of an apology slip (phiếu xin lỗi); kept apart from appointment_at",
    )

    @field_validator("occurred_at", "emitted_at", "appointment_at", "apology_appointment_at")
    @classmethod
    def _plausible_time(cls, value: datetime | None) -> datetime | None:
        if value is not None and not 2000 <= value.year <= 2100:
            raise ValueError("must be a date between the years 2000 and 2100")
        return value

    @field_validator("agency")
    @classmethod
    def _known_agency(cls, value: AgencyRef, info: ValidationInfo) -> AgencyRef:
        registry = (info.context or {}).get("registry")
        if registry is None:
            return value
        agency = registry.get(value.code)
        if agency is None:
            raise ValueError(f"unknown agency code {value.code!r}: not in the agency registry")
        if agency.level != value.level:
            raise ValueError(
                f"agency {value.code} ({agency.name}) is level {agency.level.value!r}, "
                f"not {value.level.value!r}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DossierEvent:
        allowed = ALLOWED_STATUS[self.event_type]
        if self.status not in allowed:
            codes = ", ".join(str(int(s)) for s in sorted(allowed))
            raise _field_error("status", f"event_type {self.event_type.value!r} needs {codes}")
        if self.channel is Channel.ONLINE and self.online_mode is None:
            raise _field_error("online_mode", "required when channel is 'online' (full|partial)")
        if self.channel is not Channel.ONLINE and self.online_mode is not None:
            raise _field_error("online_mode", "only allowed when channel is 'online'")
        if self.event_type is EventType.ACCEPTED:
            if self.time_limit is None:
                raise _field_error("time_limit", "required when event_type is 'accepted'")
            if self.appointment_at is None:
                raise _field_error("appointment_at", "required when event_type is 'accepted'")
        if self.appointment_at is not None and self.appointment_at < self.occurred_at:
            raise _field_error("appointment_at", "must not be before occurred_at")
        clocks = CLOCK_REQUIRED.get(self.event_type)
        if clocks is None and self.clock is not None:
            raise _field_error("clock", "only allowed on supplement_requested/supplement_received")
        if clocks is not None and self.clock not in clocks:
            names = " or ".join(sorted(c.value for c in clocks))
            raise _field_error("clock", f"event_type {self.event_type.value!r} needs {names}")
        if self.event_type in REASON_REQUIRED and not self.reason:
            raise _field_error("reason", f"required when event_type is {self.event_type.value!r}")
        if self.event_type is EventType.APOLOGY_ISSUED:
            if self.apology_appointment_at is None:
                raise _field_error("apology_appointment_at", "required for an apology slip")
        elif self.apology_appointment_at is not None:
            raise _field_error("apology_appointment_at", "only allowed on apology_issued")
        if self.emitted_at < self.occurred_at - CLOCK_SKEW:
            raise _field_error("emitted_at", "must not be before occurred_at")
        return self


def _field_error(field: str, message: str) -> ValueError:
    # Cross-field checks name the field they blame; `EventValidationError` reads the prefix.
    return ValueError(f"[{field}] {message}")


def parse_event(data: bytes | str | dict[str, Any], registry: Any = None) -> DossierEvent:
    """Validate one event (JSON text or a decoded mapping); raise `EventValidationError`."""
    context = {"registry": registry} if registry is not None else None
    try:
        if isinstance(data, dict):
            return DossierEvent.model_validate(data, context=context)
        return DossierEvent.model_validate_json(data, context=context)
    except ValidationError as exc:
        raise EventValidationError.from_pydantic(exc) from None


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the contract, as committed for non-Python agency systems."""
    return DossierEvent.model_json_schema(mode="validation")
