"""The dossier event contract (version 1): one envelope for every status change."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
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
from pydantic_core import SchemaValidator

from schemas.enums import (
    AgencyLevel,
    Channel,
    ClockAction,
    EventType,
    OnlineMode,
    ProcedureField,
    Status,
    TimeUnit,
)
from schemas.errors import EventValidationError
from schemas.rules import (
    ALLOWED_STATUS,
    CLOCK_REQUIRED,
    CLOCK_SKEW,
    MAX_HOURS,
    REASON_REQUIRED,
    YEAR_MAX,
    YEAR_MIN,
    agency_problem,
    consistency_problem,
    limit_too_long,
    plain_rules_hold,
    plausible_time,
)

__all__ = [
    "ALLOWED_STATUS",
    "CLOCK_REQUIRED",
    "CLOCK_SKEW",
    "REASON_REQUIRED",
    "SCHEMA_VERSION",
    "AgencyRef",
    "ClockAction",
    "DossierEvent",
    "ProcedureRef",
    "TimeLimit",
    "event_json_schema",
    "parse_event",
]

SCHEMA_VERSION = 1

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

    @field_validator("value", mode="before")
    @classmethod
    def _integer(cls, value: Any) -> Any:
        return _json_integer(value)

    @model_validator(mode="after")
    def _hours_in_range(self) -> TimeLimit:
        if limit_too_long(self.value, self.unit):
            raise ValueError(f"a time limit in hours must be at most {MAX_HOURS} hours")
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
    event_id: UUID = Field(
        description=(
            "unique id of this event (a UUID). A resend (same dossier, same sequence, same "
            "event_id and content; emitted_at may differ) is ignored; the same sequence with "
            "another event_id or other content is dead-lettered as a conflict"
        )
    )
    dossier_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[0-9A-Za-z][0-9A-Za-z._:/-]*$",
        description="the dossier's id (mã hồ sơ), unique across agencies",
    )
    sequence: int = Field(
        ge=1,
        le=100_000,
        description="per-dossier sequence number: 1, 2, 3... in order of change",
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

    @field_validator("schema_version", "sequence", "status", mode="before")
    @classmethod
    def _integers(cls, value: Any) -> Any:
        return _json_integer(value)

    @field_validator("occurred_at", "emitted_at", "appointment_at", "apology_appointment_at")
    @classmethod
    def _plausible_time(cls, value: datetime | None) -> datetime | None:
        if not plausible_time(value):
            raise ValueError(f"must be a date between the years {YEAR_MIN} and {YEAR_MAX}")
        return value

    @field_validator("agency")
    @classmethod
    def _known_agency(cls, value: AgencyRef, info: ValidationInfo) -> AgencyRef:
        registry = (info.context or {}).get("registry")
        if registry is None:
            return value
        problem = agency_problem(value.code, value.level, registry)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DossierEvent:
        problem = consistency_problem(self)
        if problem is not None:
            raise _field_error(*problem)
        return self


def _json_integer(value: Any) -> Any:
    """Integers must be JSON numbers: "5" and true are refused, as the JSON Schema does."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON integer, not a string or a boolean")
    return value


def _field_error(field: str, message: str) -> ValueError:
    # Cross-field checks name the field they blame; `EventValidationError` reads the prefix.
    return ValueError(f"[{field}] {message}")


def _plain_schema(schema: Any) -> Any:
    """The model's core schema without its Python validators: integers strict instead.

    The before-validators only refuse strings and booleans as integers, which a strict
    integer refuses too (and floats such as 5.0, which the model takes: those go to the
    model). The after-validators' rules are `plain_rules_hold`'s.
    """
    if isinstance(schema, list):
        return [_plain_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "function-before":
        inner = _plain_schema(schema["schema"])
        if inner["type"] == "int":
            return {**inner, "strict": True}
        # A literal 1 or an integer enum takes true (== 1) even when strict: a strict
        # integer first.
        return {"type": "chain", "steps": [{"type": "int", "strict": True}, inner]}
    if kind == "function-after":
        return _plain_schema(schema["schema"])
    if kind in ("function-wrap", "function-plain"):
        raise ValueError(f"no plain form for a {kind} validator")
    return {key: value if key in _OPAQUE else _plain_schema(value) for key, value in schema.items()}


_OPAQUE = frozenset({"metadata", "serialization", "config", "cls", "members", "expected"})
# The plain reader: the same fields, types and constraints as `DossierEvent`, which it
# builds, with no call into Python (about half of the model's cost).
_PLAIN = SchemaValidator(_plain_schema(DossierEvent.__pydantic_core_schema__))


def parse_event(data: bytes | str | dict[str, Any], registry: Any = None) -> DossierEvent:
    """Validate one event (JSON text or a decoded mapping); raise `EventValidationError`.

    JSON text is read by the plain reader first: an event it takes whose rules hold is
    the event the model makes of it (tests/unit/schemas/test_plain_reader.py). Anything
    else goes to the model, which says what is wrong.
    """
    if not isinstance(data, dict):
        try:
            event: DossierEvent = _PLAIN.validate_json(data)
        except ValidationError:
            pass
        else:
            if plain_rules_hold(event, registry):
                return event
    context = {"registry": registry} if registry is not None else None
    try:
        if isinstance(data, dict):
            return DossierEvent.model_validate(data, context=context)
        return DossierEvent.model_validate_json(data, context=context)
    except ValidationError as exc:
        raise EventValidationError.from_pydantic(exc) from None


# -- the JSON Schema for non-Python systems -----------------------------------------------
#
# pydantic renders the fields; the rules of the validators above are added here, derived from
# the same tables, so that a JSON Schema 2020-12 validator accepts what `parse_event` accepts
# (tests/unit/schemas/test_jsonschema_parity.py holds the two together). Patterns are written
# for both Python's `re` and ECMAScript: explicit character classes instead of `\d` and `\s`,
# whose meanings differ (`[\s\S]` is any character in both), and `$(?!\n)` as the end, since
# Python's `$` also matches before a final newline.

# Fields required on one event type (the checks in `DossierEvent._consistent`).
_REQUIRED_ON: dict[EventType, tuple[str, ...]] = {
    EventType.ACCEPTED: ("time_limit", "appointment_at"),
    EventType.APOLOGY_ISSUED: ("apology_appointment_at",),
}
# Fields allowed on one event type only.
_ONLY_ON: dict[str, EventType] = {"apology_appointment_at": EventType.APOLOGY_ISSUED}
# `DossierEvent._plausible_time`: YEAR_MIN-YEAR_MAX, the year as written.
_YEAR = "(?:20[0-9]{2}|2100)"

_END = r"$(?!\n)"
# What `str_strip_whitespace` strips from both ends of a text: Unicode White_Space (Python's
# `str.isspace` adds U+001C-U+001F, ECMAScript's `\s` adds U+FEFF; neither is stripped).
_WS_CHARS = r"\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
_WS = f"[{_WS_CHARS}]"
_NOT_WS = f"[^{_WS_CHARS}]"
_DATE_TIME = (
    f"^{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]"
    "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:[.][0-9]+)?"
    f"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]){_END}"
)
_UUID = f"^[0-9A-Fa-f]{{8}}(?:-[0-9A-Fa-f]{{4}}){{3}}-[0-9A-Fa-f]{{12}}{_END}"
# A pydantic pattern of the shape ^[first][rest]*$ (identifiers and codes).
_ID_PATTERN = re.compile(r"\^(\[[^\]]+\])(\[[^\]]+\])\*\$")


def _string_branch(prop: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a rendered property that describes its string form, if it has one."""
    if prop.get("type") == "string":
        return prop
    for branch in prop.get("anyOf", ()):
        if branch.get("type") == "string":
            return branch
    return None


def _stripped(first: str, rest: str, max_length: int) -> str:
    """A pattern for `first rest{0,max_length-1}` with any stripped whitespace around it."""
    return f"^{_WS}*{first}{rest}{{0,{max_length - 1}}}{_WS}*{_END}"


def _tighten_string(prop: dict[str, Any]) -> None:
    """Add to one rendered string what pydantic checks beyond its JSON Schema rendering."""
    fmt = prop.get("format")
    if fmt == "date-time":
        # RFC 3339 with an offset and a year of 2000-2100; pydantic would also take other
        # spellings (a space for the T, no seconds, +0700, Unix times), the contract does not.
        prop["pattern"] = _DATE_TIME
    elif fmt == "uuid":
        # The hyphenated form only (pydantic also takes 32 hex digits, {braces}, urn:uuid:).
        prop["pattern"] = _UUID
    elif "pattern" in prop:
        # Identifiers and codes: the length and the pattern apply after stripping whitespace.
        shape = _ID_PATTERN.fullmatch(prop["pattern"])
        if shape is None or "maxLength" not in prop:
            raise ValueError(f"no JSON Schema form for the pattern {prop['pattern']!r}")
        prop["pattern"] = _stripped(shape.group(1), shape.group(2), prop.pop("maxLength"))
    elif "maxLength" in prop and prop.get("minLength", 0) >= 1:
        # Free text of 1..maxLength characters once stripped: not blank.
        max_length = prop.pop("maxLength")
        inner = f"(?:[\\s\\S]{{0,{max_length - 2}}}{_NOT_WS})?" if max_length > 1 else ""
        prop["pattern"] = f"^{_WS}*{_NOT_WS}{inner}{_WS}*{_END}"


def _tighten_properties(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        branch = _string_branch(prop)
        if branch is not None:
            _tighten_string(branch)


def _values(values: list[Any]) -> dict[str, Any]:
    return {"const": values[0]} if len(values) == 1 else {"enum": values}


def _when(field: str, values: list[Any], then: dict[str, Any]) -> dict[str, Any]:
    """`if` the field is present with one of the values `then` the subschema applies."""
    return {"if": {"properties": {field: _values(values)}, "required": [field]}, "then": then}


def _when_type(types: Iterable[EventType], then: dict[str, Any]) -> dict[str, Any]:
    chosen = set(types)
    return _when("event_type", [t.value for t in EventType if t in chosen], then)


def _present(*fields: str) -> dict[str, Any]:
    """The fields are there and not null."""
    return {
        "required": list(fields),
        "properties": {f: {"not": {"type": "null"}} for f in fields},
    }


def _absent(field: str) -> dict[str, Any]:
    """The field is missing or null."""
    return {"properties": {field: {"type": "null"}}}


def _cross_field_rules() -> list[dict[str, Any]]:
    """The checks of `DossierEvent._consistent` that JSON Schema can express."""
    rules: list[dict[str, Any]] = []
    by_allowed: dict[frozenset[Status], list[EventType]] = {}
    for event_type in EventType:
        by_allowed.setdefault(ALLOWED_STATUS[event_type], []).append(event_type)
    for allowed, types in by_allowed.items():
        status = _values([int(s) for s in sorted(allowed)])
        rules.append(_when_type(types, {"properties": {"status": status}}))
    online = _when("channel", [Channel.ONLINE.value], _present("online_mode"))
    rules.append({**online, "else": _absent("online_mode")})
    for event_type, fields in _REQUIRED_ON.items():
        rules.append(_when_type([event_type], _present(*fields)))
    for field, only in _ONLY_ON.items():
        rules.append(_when_type([t for t in EventType if t is not only], _absent(field)))
    for event_type, actions in CLOCK_REQUIRED.items():
        clock = _values([a.value for a in ClockAction if a in actions])
        rules.append(
            _when_type([event_type], {"required": ["clock"], "properties": {"clock": clock}})
        )
    rules.append(_when_type([t for t in EventType if t not in CLOCK_REQUIRED], _absent("clock")))
    rules.append(_when_type(REASON_REQUIRED, _present("reason")))
    return rules


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of the contract, as committed for non-Python agency systems."""
    schema = DossierEvent.model_json_schema(mode="validation")
    _tighten_properties(schema)
    for definition in schema.get("$defs", {}).values():
        _tighten_properties(definition)
    hours = _when(
        "unit",
        [TimeUnit.HOURS.value],
        {"properties": {"value": {"type": "integer", "maximum": MAX_HOURS}}},
    )
    schema["$defs"]["TimeLimit"]["allOf"] = [hours]
    schema["allOf"] = _cross_field_rules()
    schema["$comment"] = (
        "Generated from schemas/events.py by `dossier-stream schema export`; do not edit. "
        "Not checked here (docs/event-contract.md): the agency registry, emitted_at not more "
        "than 5 minutes before occurred_at, appointment_at not before occurred_at, and the "
        "worker's per-dossier rules. Patterns end with $(?!\\n) so that Python's re, whose $ "
        "also matches before a final newline, ends where ECMAScript's does."
    )
    return schema
