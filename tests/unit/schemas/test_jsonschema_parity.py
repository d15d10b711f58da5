"""The committed JSON Schema judges every document as the models do, in Python and in Node.js."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal, NamedTuple

import pytest
from jsonschema import Draft202012Validator

from schemas.enums import Channel, EventType, Status
from schemas.errors import EventValidationError
from schemas.events import (
    ALLOWED_STATUS,
    CLOCK_REQUIRED,
    REASON_REQUIRED,
    DossierEvent,
    parse_event,
)
from schemas.registry import AgencyRegistry
from schemas.schema_cmd import SCHEMA_FILE
from tests.factories import event_doc, lifecycle
from tests.unit.schemas.test_events import BAD

REGISTRY = AgencyRegistry.default()
ROOT = SCHEMA_FILE.parents[2]
JS_DIR = ROOT / "tests" / "js"
VALIDATE_JS = JS_DIR / "validate.mjs"

# What each kind of document expects from (models, jsonschema, ajv). The models are
# `parse_event` without a registry, as the schema has none.
Kind = Literal["ok", "bad", "registry", "dates", "lax"]
EXPECTED: dict[Kind, tuple[bool, bool, bool]] = {
    "ok": (True, True, True),
    "bad": (False, False, False),
    # Known exception: only the agency registry rejects it (the models with a registry reject,
    # the schema accepts; docs/event-contract.md, "What the JSON Schema cannot check").
    "registry": (True, True, True),
    # Known exception: models reject, schema accepts, reason: a comparison of two date-times
    # (emitted_at vs occurred_at, appointment_at vs occurred_at) that JSON Schema cannot make.
    "dates": (False, True, True),
    # Known exception: models accept, schema rejects, reason: pydantic's lax input forms (a
    # Unix time or another ISO 8601 spelling as a date-time, a UUID without hyphens); the
    # contract and its schema name one canonical JSON form. Integers given as strings or
    # booleans are refused by both.
    "lax": (True, False, False),
}


class Doc(NamedTuple):
    """One document of the parity test: a unique name, what it expects, the JSON value."""

    name: str
    kind: Kind
    doc: Any


# -- the three judges --------------------------------------------------------------------


@cache
def _python_validator() -> Draft202012Validator:
    checker = Draft202012Validator.FORMAT_CHECKER
    missing = {"date-time", "uuid"} - set(checker.checkers)
    if missing:
        raise RuntimeError(
            f"jsonschema cannot check the formats {sorted(missing)}: "
            "install the dev extras (`make setup`; date-time needs rfc3339-validator)"
        )
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=checker)


def _models_accept(text: str) -> bool:
    try:
        parse_event(text)
    except EventValidationError:
        return False
    return True


def _ajv_command() -> list[str]:
    """The Node.js command that runs validate.mjs; fails when node or ajv is missing."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("Node.js (`node`) is needed to check the schema with ajv")
    for package in ("ajv", "ajv-formats"):
        if not (JS_DIR / "node_modules" / package / "package.json").exists():
            raise RuntimeError(
                f"{package} is not installed: run `make setup` "
                "(npm ci --prefix tests/js --no-audit --no-fund --silent)"
            )
    return [node, str(VALIDATE_JS), str(SCHEMA_FILE)]


def _ajv_accepts(values: list[Any]) -> list[bool]:
    done = subprocess.run(
        _ajv_command(),
        input=json.dumps(values),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{VALIDATE_JS.name} failed ({done.returncode}): {done.stderr}")
    verdicts = json.loads(done.stdout)
    if not isinstance(verdicts, list) or len(verdicts) != len(values):
        raise RuntimeError(f"{VALIDATE_JS.name} answered {done.stdout[:200]!r}")
    return [v is True for v in verdicts]


def judge_all(documents: Sequence[Any]) -> list[tuple[bool, bool, bool]]:
    """(models, jsonschema, ajv) for each JSON value: True where that judge accepts it.

    Every judge sees the same JSON text: the models parse it as the worker does (without a
    registry), jsonschema and ajv (one Node.js run for the whole batch) check the committed
    schema file with their date-time and uuid format checks on.
    """
    _ajv_command()  # before the slow part: no node or ajv is an immediate failure
    texts = [json.dumps(d, allow_nan=False) for d in documents]
    values = [json.loads(t) for t in texts]
    validator = _python_validator()
    models = [_models_accept(t) for t in texts]
    python = [validator.is_valid(v) for v in values]
    js = _ajv_accepts(values)
    return list(zip(models, python, js, strict=True))


# -- the documents -----------------------------------------------------------------------

TYPES = [t.value for t in EventType]
TIME_FIELDS = ("occurred_at", "emitted_at", "appointment_at", "apology_appointment_at")
REQUIRED = [name for name, f in DossierEvent.model_fields.items() if f.is_required()]
UUID = "7d0c2a4e-0b4f-4a55-9d1c-3f9b2a000001"


def _doc(event_type: str = "accepted", /, **overrides: Any) -> dict[str, Any]:
    """A valid event of the type, then the overrides (`event_type` among them)."""
    doc = event_doc(event_type)
    doc.update(overrides)
    return doc


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


def _at(when: Any, event_type: str = "accepted") -> dict[str, Any]:
    """An event whose every time is `when`."""
    doc = _doc(event_type, occurred_at=when, emitted_at=when)
    for name in ("appointment_at", "apology_appointment_at"):
        if name in doc:
            doc[name] = when
    return doc


def _times() -> list[Doc]:
    out: list[Doc] = []
    # The year is checked as written: 2000-2100 whatever the year in UTC.
    for when, kind in [
        ("2000-01-01T00:00:00+07:00", "ok"),  # 1999 in UTC
        ("2000-01-01T00:00:00Z", "ok"),
        ("2100-12-31T23:59:59+00:00", "ok"),
        ("2100-12-31T23:59:59-05:00", "ok"),  # 2101 in UTC
        ("2100-12-31T23:59:59.999999Z", "ok"),
        ("1999-12-31T23:59:59+00:00", "bad"),
        ("1999-12-31T23:00:00-05:00", "bad"),  # 2000 in UTC
        ("2101-01-01T00:00:00Z", "bad"),
        ("2101-01-01T00:00:00+07:00", "bad"),  # 2100 in UTC
        ("1900-01-01T00:00:00+07:00", "bad"),
        ("0001-01-01T00:00:00Z", "bad"),
        ("9999-12-31T23:59:59Z", "bad"),
    ]:
        for event_type in ("accepted", "apology_issued"):
            out.append(
                Doc(f"{kind}: every time {when} on {event_type}", kind, _at(when, event_type))
            )
    for name in TIME_FIELDS:
        event_type = "apology_issued" if name == "apology_appointment_at" else "accepted"
        for when in ("1999-12-31T23:59:59+00:00", "2101-01-01T00:00:00+00:00"):
            out.append(Doc(f"bad: {name} {when}", "bad", _doc(event_type, **{name: when})))
    for name in ("appointment_at", "apology_appointment_at"):
        when = "2100-12-31T23:59:59-05:00"
        event_type = "apology_issued" if name == "apology_appointment_at" else "accepted"
        out.append(Doc(f"ok: {name} {when}", "ok", _doc(event_type, **{name: when})))
    # Calendar dates: 30 February and the like match the pattern; the date-time format does not.
    for day, kind in [
        ("2024-02-29", "ok"),
        ("2000-02-29", "ok"),
        ("2100-02-29", "bad"),
        ("2025-02-29", "bad"),
        ("2025-02-30", "bad"),
        ("2025-04-31", "bad"),
        ("2025-13-01", "bad"),
        ("2025-00-10", "bad"),
        ("2025-10-00", "bad"),
        ("2025-10-32", "bad"),
    ]:
        out.append(Doc(f"{kind}: date {day}", kind, _at(f"{day}T08:00:00+07:00")))
    # Spellings of a date-time.
    for when, kind in [
        ("2025-10-01T08:00:00Z", "ok"),
        ("2025-10-01t08:00:00z", "ok"),
        ("2025-10-01T08:00:00.5+07:00", "ok"),
        ("2025-10-01T08:00:00.123456+07:00", "ok"),
        ("2025-10-01T08:00:00.123456789+07:00", "ok"),
        ("2025-10-01T08:00:00-00:00", "ok"),
        ("2025-10-01T08:00:00+23:59", "ok"),
        ("2025-10-01T08:00:00-23:59", "ok"),
        ("2025-10-01T00:00:00+07:00", "ok"),
        ("2025-10-01T23:59:59+07:00", "ok"),
        ("2025-10-01T08:00:60+07:00", "bad"),
        ("2025-10-01T24:00:00+07:00", "bad"),
        ("2025-10-01T08:60:00+07:00", "bad"),
        ("2025-10-01T08:00:00+24:00", "bad"),
        ("2025-10-01T08:00:00+07:60", "bad"),
        ("2025-10-01T08:00:00+07", "bad"),
        ("2025-10-01T08:00:00", "bad"),
        ("2025-10-01", "bad"),
        ("2025-10-01T08:00:00+07:00\n", "bad"),
        (" 2025-10-01T08:00:00+07:00", "bad"),
        ("2025-10-01T08:00:00+07:00 ", "bad"),
        ("2025-10-01T08:00:00.+07:00", "bad"),
        ("2025-10-01T08:00:00+07:00Z", "bad"),
        ("+02025-10-01T08:00:00+07:00", "bad"),
        ("２０２５-10-01T08:00:00+07:00", "bad"),
        ("٢٠٢٥-10-01T08:00:00+07:00", "bad"),
        ("", "bad"),
        ("2025-10-01 08:00:00+07:00", "lax"),
        ("2025-10-01T08:00+07:00", "lax"),
        ("2025-10-01T08:00:00+0700", "lax"),
        ("2025-10-01T08:00:00,5+07:00", "lax"),
        ("1759280400", "lax"),
        (1759280400, "lax"),
        (1759280400.5, "lax"),
    ]:
        out.append(Doc(f"{kind}: every time {when!r}", kind, _at(when)))
    # Two date-times compared: beyond JSON Schema.
    occurred = "2025-10-01T08:00:00+07:00"
    for emitted, kind in [
        ("2025-10-01T07:55:00+07:00", "ok"),
        ("2025-10-01T00:55:00Z", "ok"),
        ("2025-10-01T07:54:59+07:00", "dates"),
        ("2025-10-01T00:54:59Z", "dates"),
    ]:
        doc = _doc(occurred_at=occurred, emitted_at=emitted)
        out.append(Doc(f"{kind}: emitted {emitted} for {occurred}", kind, doc))
    for event_type, appointment, kind in [
        ("accepted", occurred, "ok"),
        ("accepted", "2025-10-01T07:59:59+07:00", "dates"),
        ("accepted", "2025-10-01T00:59:59Z", "dates"),
        ("processing", "2025-10-02T08:00:00+07:00", "ok"),
        ("processing", "2025-09-30T08:00:00+07:00", "dates"),
    ]:
        doc = _doc(event_type, occurred_at=occurred, appointment_at=appointment)
        out.append(Doc(f"{kind}: {event_type} appointment {appointment}", kind, doc))
    return out


def _identifiers() -> list[Doc]:
    out: list[Doc] = []
    for event_id, kind in [
        (UUID, "ok"),
        (UUID.upper(), "ok"),
        ("00000000-0000-0000-0000-000000000000", "ok"),
        ("ffffffff-ffff-ffff-ffff-ffffffffffff", "ok"),
        ("7d0c2a4e-0b4f-0a55-0d1c-3f9b2a000001", "ok"),  # version 0: any hex is a UUID here
        ("abc", "bad"),
        ("", "bad"),
        (UUID + "\n", "bad"),
        (" " + UUID, "bad"),
        (UUID[:-1] + "g", "bad"),
        (UUID[:-1], "bad"),
        (UUID + "0", "bad"),
        ("7d0c2a4e0b4f-4a55-9d1c-3f9b-2a000001", "bad"),
        (123, "bad"),
        (None, "bad"),
        (UUID.replace("-", ""), "lax"),
        ("{" + UUID + "}", "lax"),
        ("urn:uuid:" + UUID, "lax"),
    ]:
        out.append(Doc(f"{kind}: event_id {event_id!r}", kind, _doc(event_id=event_id)))
    ws = "\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"
    for dossier_id, kind in [
        ("A" * 64, "ok"),
        ("HP:1/2.3_4-5", "ok"),
        (" HP-1 ", "ok"),
        ("HP-1\n", "ok"),
        ("\nHP-1\n\n", "ok"),
        (ws + "HP-1" + ws, "ok"),  # every character pydantic strips
        ("A" * 64 + "\u2003", "ok"),
        ("A" * 65, "bad"),
        ("A" * 65 + " ", "bad"),
        ("HP 1", "bad"),
        ("HP-1\nX", "bad"),
        ("HP-1\u001f", "bad"),  # whitespace to Python's str.isspace, not stripped
        ("HP-1\u001c", "bad"),
        ("HP-1\ufeff", "bad"),  # whitespace to ECMAScript's \s, not stripped
        ("\ufeffHP-1", "bad"),
        ("HP-١", "bad"),
        ("HP-１", "bad"),
        ("", "bad"),
        ("   ", "bad"),
        ("-HP", "bad"),
        (123, "bad"),
        (None, "bad"),
    ]:
        out.append(Doc(f"{kind}: dossier_id {dossier_id!r}", kind, _doc(dossier_id=dossier_id)))
    for code, kind in [
        ("A" * 32, "registry"),
        ("A" * 33, "bad"),
        (" SO-YTE\t", "ok"),
        ("SO-YTE\u3000", "ok"),
        ("SO YTE", "bad"),
        ("SO:YTE", "bad"),
        ("SO-YTE\u001f", "bad"),
        ("", "bad"),
        ("XX-OTHER", "registry"),
    ]:
        doc = _doc(agency={"code": code, "level": "city"})
        out.append(Doc(f"{kind}: agency code {code!r}", kind, doc))
    out.append(
        Doc(
            "registry: commune 11311 as city",
            "registry",
            _doc(agency={"code": "11311", "level": "city"}),
        )
    )
    out.append(Doc("ok: commune 11311", "ok", _doc(agency={"code": "11311", "level": "commune"})))
    for code, kind in [
        ("1" * 32, "ok"),
        ("1" * 33, "bad"),
        ("1.004616\t", "ok"),
        (".004616", "bad"),
        ("1,004616", "bad"),
    ]:
        doc = _doc(procedure={"code": code, "field": "health"})
        out.append(Doc(f"{kind}: procedure code {code!r}", kind, doc))
    return out


def _numbers() -> list[Doc]:
    cases: list[tuple[str, Kind, dict[str, Any]]] = [
        ("sequence 1", "ok", _doc(sequence=1)),
        ("sequence 100000", "ok", _doc(sequence=100_000)),
        ("sequence 5.0", "ok", _doc(sequence=5.0)),
        ("sequence 0", "bad", _doc(sequence=0)),
        ("sequence -1", "bad", _doc(sequence=-1)),
        ("sequence 100001", "bad", _doc(sequence=100_001)),
        ("sequence 5.5", "bad", _doc(sequence=5.5)),
        ("sequence null", "bad", _doc(sequence=None)),
        ("sequence 'abc'", "bad", _doc(sequence="abc")),
        ("sequence false", "bad", _doc(sequence=False)),
        ("sequence '5'", "bad", _doc(sequence="5")),
        ("sequence true", "bad", _doc(sequence=True)),
        ("status 2.0", "ok", _doc(status=2.0)),
        ("status 2.5", "bad", _doc(status=2.5)),
        ("status null", "bad", _doc(status=None)),
        ("status '2'", "bad", _doc(status="2")),
        ("status true on submitted", "bad", _doc("submitted", status=True)),
        ("schema_version absent", "ok", _without(_doc(), "schema_version")),
        ("schema_version 1.0", "ok", _doc(schema_version=1.0)),
        ("schema_version 0", "bad", _doc(schema_version=0)),
        ("schema_version null", "bad", _doc(schema_version=None)),
        ("schema_version '1'", "bad", _doc(schema_version="1")),
        ("schema_version true", "bad", _doc(schema_version=True)),
    ]
    for unit, value, kind in [
        ("hours", 1, "ok"),
        ("hours", 2000, "ok"),
        ("hours", 2000.0, "ok"),
        ("hours", 2001, "bad"),
        ("hours", 3650, "bad"),
        ("hours", 0, "bad"),
        ("working_days", 2001, "ok"),
        ("working_days", 3650, "ok"),
        ("calendar_days", 3650, "ok"),
        ("working_days", 3651, "bad"),
        ("calendar_days", -1, "bad"),
        ("working_days", 1.5, "bad"),
        ("hours", "5", "bad"),
    ]:
        limit = {"value": value, "unit": unit}
        cases.append((f"time_limit {value!r} {unit}", kind, _doc(time_limit=limit)))
        if kind in ("ok", "bad"):
            # The limit is checked on any event that carries one.
            cases.append(
                (
                    f"time_limit {value!r} {unit} on processing",
                    kind,
                    _doc("processing", time_limit=limit),
                )
            )
    cases += [
        ("time_limit without unit", "bad", _doc(time_limit={"value": 5})),
        ("time_limit without value", "bad", _doc(time_limit={"unit": "hours"})),
        ("time_limit unit weeks", "bad", _doc(time_limit={"value": 1, "unit": "weeks"})),
        ("time_limit unit null", "bad", _doc(time_limit={"value": 1, "unit": None})),
        (
            "time_limit with an extra key",
            "bad",
            _doc(time_limit={"value": 1, "unit": "hours", "x": 1}),
        ),
        ("time_limit a list", "bad", _doc(time_limit=[5, "hours"])),
        ("time_limit a text", "bad", _doc(time_limit="5 working days")),
        ("time_limit null on processing", "ok", _doc("processing", time_limit=None)),
    ]
    return [Doc(f"{kind}: {name}", kind, doc) for name, kind, doc in cases]


def _by_type() -> list[Doc]:
    out: list[Doc] = []
    for event_type in EventType:
        t = event_type.value
        # Every status with every type.
        for status in Status:
            kind: Kind = "ok" if status in ALLOWED_STATUS[event_type] else "bad"
            out.append(
                Doc(f"{kind}: {t} with status {int(status)}", kind, _doc(t, status=int(status)))
            )
        # Every required field missing, and null.
        for name in REQUIRED:
            out.append(Doc(f"bad: {t} without {name}", "bad", _without(_doc(t), name)))
            out.append(Doc(f"bad: {t} with {name} null", "bad", _doc(t, **{name: None})))
        out.append(
            Doc(f"ok: {t} without schema_version", "ok", _without(_doc(t), "schema_version"))
        )
        # Fields required by the type.
        for name in ("time_limit", "appointment_at", "clock", "reason", "apology_appointment_at"):
            if name in _doc(t):
                out.append(Doc(f"bad: {t} without {name}", "bad", _without(_doc(t), name)))
                out.append(Doc(f"bad: {t} with {name} null", "bad", _doc(t, **{name: None})))
        # The clock.
        clocks = CLOCK_REQUIRED.get(event_type)
        for clock in ("pause", "resume", "restart", "stop"):
            kind = "ok" if clocks is not None and clock in clocks else "bad"
            out.append(Doc(f"{kind}: {t} with clock {clock}", kind, _doc(t, clock=clock)))
        if clocks is None:
            out.append(Doc(f"ok: {t} with clock null", "ok", _doc(t, clock=None)))
        # The apology date.
        apology = "2025-10-20T08:00:00+07:00"
        kind = "ok" if event_type is EventType.APOLOGY_ISSUED else "bad"
        out.append(
            Doc(f"{kind}: {t} with an apology date", kind, _doc(t, apology_appointment_at=apology))
        )
        if event_type is not EventType.APOLOGY_ISSUED:
            out.append(
                Doc(f"ok: {t} with apology date null", "ok", _doc(t, apology_appointment_at=None))
            )
        # A reason, allowed everywhere, required on some.
        if event_type not in REASON_REQUIRED:
            out.append(Doc(f"ok: {t} with a reason", "ok", _doc(t, reason="theo đề nghị")))
            out.append(Doc(f"ok: {t} with reason null", "ok", _doc(t, reason=None)))
        # Each channel.
        for channel in Channel:
            c = channel.value
            if channel is Channel.ONLINE:
                for mode, kind in (("full", "ok"), ("partial", "ok"), ("hybrid", "bad")):
                    out.append(Doc(f"{kind}: {t} online {mode}", kind, _doc(t, online_mode=mode)))
                out.append(
                    Doc(f"bad: {t} online without mode", "bad", _without(_doc(t), "online_mode"))
                )
                out.append(Doc(f"bad: {t} online with mode null", "bad", _doc(t, online_mode=None)))
            else:
                counter = _without(_doc(t, channel=c), "online_mode")
                out.append(Doc(f"ok: {t} {c}", "ok", counter))
                out.append(
                    Doc(f"ok: {t} {c} with mode null", "ok", {**counter, "online_mode": None})
                )
                out.append(
                    Doc(f"bad: {t} {c} with mode full", "bad", {**counter, "online_mode": "full"})
                )
    return out


def _reasons() -> list[Doc]:
    out: list[Doc] = []
    for reason, kind in [
        ("x", "ok"),
        ("x" * 500, "ok"),
        (" " + "x" * 500 + "\n", "ok"),  # 500 once stripped
        ("x" * 500 + "\u3000", "ok"),
        ("\u00a0x", "ok"),
        ("😀" * 500, "ok"),  # characters, not UTF-16 units
        ("x" * 499 + "\u001f", "ok"),  # U+001F is not stripped: 500
        ("dòng 1\ndòng 2", "ok"),
        ("x" * 501, "bad"),
        ("😀" * 501, "bad"),
        ("x" * 500 + "\u001f", "bad"),  # 501
        ("x" * 500 + "\ufeff", "bad"),  # 501
        ("", "bad"),
        ("   ", "bad"),
        ("\u3000\t\n", "bad"),
        (5, "bad"),
    ]:
        for event_type in sorted(REASON_REQUIRED):
            out.append(
                Doc(
                    f"{kind}: {event_type.value} reason {reason!r}",
                    kind,
                    _doc(event_type.value, reason=reason),
                )
            )
    return out


def _shapes() -> list[Doc]:
    agency = {"code": "SO-YTE", "level": "city"}
    procedure = {"code": "1.004616", "field": "health"}
    cases: list[tuple[str, Kind, Any]] = [
        ("unknown top-level field", "bad", _doc(note="x")),
        ("$schema field", "bad", _doc(**{"$schema": "x"})),
        ("unknown field in agency", "bad", _doc(agency={**agency, "name": "Sở Y tế"})),
        ("unknown field in procedure", "bad", _doc(procedure={**procedure, "x": 1})),
        ("agency without level", "bad", _doc(agency={"code": "SO-YTE"})),
        ("agency without code", "bad", _doc(agency={"level": "city"})),
        ("procedure without field", "bad", _doc(procedure={"code": "1.004616"})),
        ("procedure without code", "bad", _doc(procedure={"field": "health"})),
        ("agency a text", "bad", _doc(agency="SO-YTE")),
        ("event_type unknown", "bad", _doc(event_type="archived")),
        ("event_type upper case", "bad", _doc(event_type="ACCEPTED")),
        ("event_type padded", "bad", _doc(event_type=" accepted")),
        ("channel padded", "bad", _doc(channel="online ")),
        ("level padded", "bad", _doc(agency={"code": "SO-YTE", "level": "city "})),
        ("an empty object", "bad", {}),
        ("a list", "bad", []),
        ("a list of an event", "bad", [_doc()]),
        ("a text", "bad", "accepted"),
        ("a number", "bad", 1),
        ("null", "bad", None),
        ("true", "bad", True),
    ]
    return [Doc(f"{kind}: {name}", kind, doc) for name, kind, doc in cases]


def _extra_documents() -> list[Doc]:
    return [*_times(), *_identifiers(), *_numbers(), *_by_type(), *_reasons(), *_shapes()]


EXTRA_DOCUMENTS: list[Doc] = _extra_documents()

# The bad-input table of test_events.py: every entry fails with a registry; these four only
# with a registry or with a comparison of two date-times.
BAD_EXCEPTIONS: dict[str, Kind] = {
    "unknown agency": "registry",
    "wrong agency level": "registry",
    "appointment before receipt": "dates",
    "emitted long before": "dates",
}
BAD_DOCUMENTS: list[Doc] = [
    Doc(f"BAD {name}", BAD_EXCEPTIONS.get(name, "bad"), doc) for name, doc, _, _ in BAD
]


def _contract_examples() -> list[Doc]:
    text = (ROOT / "docs" / "event-contract.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith('{"schema_version"')]
    return [
        Doc(f"ok: contract example {i + 1}", "ok", json.loads(line)) for i, line in enumerate(lines)
    ]


def _built_examples() -> list[Doc]:
    out = [Doc(f"ok: event_doc {t}", "ok", _doc(t)) for t in TYPES]
    steps = (
        "submitted",
        "accepted",
        "supplement_requested",
        "supplement_received",
        "fee_requested",
        "fee_paid",
        "resolved",
        "returned",
    )
    for i, event in enumerate(lifecycle(steps=steps)):
        out.append(Doc(f"ok: lifecycle dump {i + 1}", "ok", event.model_dump(mode="json")))
        out.append(
            Doc(
                f"ok: lifecycle dump {i + 1} without nulls",
                "ok",
                event.model_dump(mode="json", exclude_none=True),
            )
        )
    return out


VALID_EXAMPLES: list[Doc] = [*_contract_examples(), *_built_examples()]
ALL_DOCUMENTS: list[Doc] = [*BAD_DOCUMENTS, *VALID_EXAMPLES, *EXTRA_DOCUMENTS]


# -- the tests ---------------------------------------------------------------------------


@cache
def _judged() -> dict[str, tuple[bool, bool, bool]] | RuntimeError:
    # One Node.js run for every document of the module, its failure kept for every test.
    try:
        judged = judge_all([d.doc for d in ALL_DOCUMENTS])
    except RuntimeError as exc:
        return exc
    return {d.name: v for d, v in zip(ALL_DOCUMENTS, judged, strict=True)}


def _verdicts() -> dict[str, tuple[bool, bool, bool]]:
    judged = _judged()
    if isinstance(judged, RuntimeError):
        pytest.fail(str(judged))  # fail, never skip: without node and ajv nothing is checked
    return judged


def test_document_names_are_unique() -> None:
    names = [d.name for d in ALL_DOCUMENTS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("case", ALL_DOCUMENTS, ids=[d.name for d in ALL_DOCUMENTS])
def test_the_schema_judges_as_the_models(case: Doc) -> None:
    models, python, js = _verdicts()[case.name]
    assert python == js, f"jsonschema {python} but ajv {js}"
    assert (models, python, js) == EXPECTED[case.kind], (
        f"{case.kind}: models {models}, jsonschema {python}, ajv {js}"
    )


@pytest.mark.parametrize(
    "case", [d for d in ALL_DOCUMENTS if d.kind == "registry"], ids=lambda d: d.name
)
def test_registry_exceptions_are_rejected_with_a_registry(case: Doc) -> None:
    # Known exception: models reject, schema accepts, reason: registry.
    with pytest.raises(EventValidationError) as info:
        parse_event(json.dumps(case.doc), REGISTRY)
    assert [e.field for e in info.value.errors] == ["agency"]
    _, python, js = _verdicts()[case.name]
    assert (python, js) == (True, True)


def test_the_bad_table_is_rejected_by_the_models_with_a_registry() -> None:
    for _, doc, _, _ in BAD:
        with pytest.raises(EventValidationError):
            parse_event(json.dumps(doc), REGISTRY)
    assert set(BAD_EXCEPTIONS) <= {b[0] for b in BAD}


def test_format_checks_run_in_both_validators() -> None:
    # 30 February matches the schema's pattern: only a date-time format check rejects it.
    doc = _at("2025-02-30T08:00:00+07:00")
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert Draft202012Validator(schema).is_valid(doc)  # no format checker: let through
    assert judge_all([doc]) == [(False, False, False)]
    checker = Draft202012Validator.FORMAT_CHECKER
    assert not checker.conforms("7d0c2a4e-0b4f-4a55-9d1c", "uuid")
    assert not checker.conforms("2025-02-30T08:00:00+07:00", "date-time")
    assert checker.conforms(UUID, "uuid")


def test_both_validators_read_the_schema_as_2020_12() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert Draft202012Validator.META_SCHEMA["$id"].endswith("2020-12/schema")
    Draft202012Validator.check_schema(schema)
    assert "ajv/dist/2020" in VALIDATE_JS.read_text(encoding="utf-8")


def test_the_hostile_corpus_is_judged_alike_by_the_models_and_both_validators() -> None:
    from tests import hostile

    documents = hostile.documents()
    assert len(documents) >= 30
    for doc, (models, python, js) in zip(documents, judge_all(documents), strict=True):
        assert python == js, (doc, python, js)
        if models and isinstance(doc, dict):
            try:
                parse_event(json.dumps(doc), REGISTRY)
            except EventValidationError as exc:
                # Known exception: only the registry rejects it; the schema cannot know.
                assert [e.field for e in exc.errors] == ["agency"], doc
                assert python, doc
                continue
        assert models == python, (str(doc)[:200], models, python)
