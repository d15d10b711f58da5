"""The event contract: good events pass, each bad input fails naming its field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.errors import EventValidationError
from schemas.events import DossierEvent, parse_event
from schemas.registry import AgencyRegistry
from schemas.schema_cmd import SCHEMA_FILE, render
from tests.factories import event_doc

REGISTRY = AgencyRegistry.default()


@pytest.mark.parametrize(
    "event_type",
    [
        "submitted",
        "accepted",
        "refused",
        "processing",
        "supplement_requested",
        "supplement_received",
        "fee_requested",
        "fee_paid",
        "withdrawn",
        "stopped",
        "resolved",
        "returned",
        "transferred",
        "apology_issued",
    ],
)
def test_a_valid_event_of_every_type_passes(event_type: str) -> None:
    doc = event_doc(event_type)
    parsed = parse_event(doc, REGISTRY)
    assert parsed.event_type.value == event_type
    # The JSON form round-trips to the same event.
    assert parse_event(parsed.model_dump_json(), REGISTRY) == parsed


def _without(key: str) -> dict[str, Any]:
    doc = event_doc("accepted")
    del doc[key]
    return doc


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown channel", event_doc(channel="fax"), "channel", "'in_person', 'online' or 'post'"),
    (
        "personal data field",
        event_doc(citizen_name="Nguyễn Văn A"),
        "citizen_name",
        "unknown field",
    ),
    ("phone number field", event_doc(phone="0901234567"), "phone", "unknown field"),
    ("naive occurred_at", event_doc(occurred_at="2025-10-01T08:00:00"), "occurred_at", "timezone"),
    (
        "naive appointment",
        event_doc(appointment_at="2025-10-08T17:00:00"),
        "appointment_at",
        "timezone",
    ),
    ("status 0", event_doc(status=0), "status", "Input should be"),
    ("status 11", event_doc(status=11), "status", "Input should be"),
    ("status not matching type", event_doc(status=4), "status", "needs 2"),
    ("sequence 0", event_doc(sequence=0), "sequence", "greater than or equal to 1"),
    ("event id not a uuid", event_doc(event_id="abc"), "event_id", "UUID"),
    ("dossier id with spaces", event_doc(dossier_id="HP 1"), "dossier_id", "pattern"),
    ("empty dossier id", event_doc(dossier_id=""), "dossier_id", "at least 1"),
    ("missing dossier id", _without("dossier_id"), "dossier_id", "Field required"),
    ("unknown agency", event_doc(agency={"code": "SO-XYZ", "level": "city"}), "agency", "registry"),
    (
        "wrong agency level",
        event_doc(agency={"code": "SO-YTE", "level": "commune"}),
        "agency",
        "level",
    ),
    (
        "bad level",
        event_doc(agency={"code": "SO-YTE", "level": "district"}),
        "agency.level",
        "'city'",
    ),
    (
        "bad field",
        event_doc(procedure={"code": "1.1", "field": "space"}),
        "procedure.field",
        "Input",
    ),
    ("online without mode", event_doc(online_mode=None), "online_mode", "required"),
    ("mode on a counter dossier", event_doc(channel="in_person"), "online_mode", "only allowed"),
    ("accepted without limit", _without("time_limit"), "time_limit", "required"),
    ("accepted without appointment", _without("appointment_at"), "appointment_at", "required"),
    (
        "limit of 0 days",
        event_doc(time_limit={"value": 0, "unit": "working_days"}),
        "time_limit.value",
        "greater than or equal to 1",
    ),
    (
        "limit in weeks",
        event_doc(time_limit={"value": 1, "unit": "weeks"}),
        "time_limit.unit",
        "Input",
    ),
    (
        "appointment before receipt",
        event_doc(appointment_at="2025-09-01T08:00:00+07:00"),
        "appointment_at",
        "before",
    ),
    ("refusal without reason", event_doc("refused", reason=None), "reason", "required"),
    ("pause without clock", event_doc("supplement_requested", clock=None), "clock", "needs pause"),
    (
        "resume that pauses",
        event_doc("supplement_received", clock="pause"),
        "clock",
        "restart or resume",
    ),
    ("clock on a resolution", event_doc("resolved", clock="pause"), "clock", "only allowed"),
    (
        "apology without new date",
        event_doc("apology_issued", apology_appointment_at=None),
        "apology_appointment_at",
        "required",
    ),
    (
        "apology date elsewhere",
        event_doc(apology_appointment_at="2025-10-20T08:00:00+07:00"),
        "apology_appointment_at",
        "only allowed",
    ),
    (
        "emitted long before",
        event_doc(emitted_at="2025-09-30T08:00:00+07:00"),
        "emitted_at",
        "before occurred_at",
    ),
    ("year 1900", event_doc(occurred_at="1900-01-01T00:00:00+07:00"), "occurred_at", "2000"),
    ("schema version 2", event_doc(schema_version=2), "schema_version", "1"),
]


@pytest.mark.parametrize(
    ("doc", "field", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_a_bad_event_is_rejected_naming_its_field(
    doc: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(EventValidationError) as info:
        parse_event(doc, REGISTRY)
    fields = {e.field: e.message for e in info.value.errors}
    assert field in fields, f"expected an error on {field!r}, got {fields}"
    assert fragment in fields[field]
    assert field in str(info.value)


def test_unknown_field_values_are_not_echoed() -> None:
    with pytest.raises(EventValidationError) as info:
        parse_event(event_doc(citizen_id="012345678901"), REGISTRY)
    assert "012345678901" not in str(info.value)


def test_invalid_json_text_is_a_validation_error() -> None:
    with pytest.raises(EventValidationError) as info:
        parse_event(b"{not json", REGISTRY)
    assert info.value.errors


def test_without_a_registry_only_the_code_shape_is_checked() -> None:
    doc = event_doc(agency={"code": "XX-OTHER", "level": "city"})
    assert parse_event(doc).agency.code == "XX-OTHER"


def test_committed_json_schema_matches_the_models() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), (
        "schemas/jsonschema/dossier-event.v1.schema.json is out of date: "
        "run `dossier-stream schema export`"
    )


def test_json_schema_forbids_unknown_fields_and_requires_the_core() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    required = set(schema["required"])
    assert {"event_id", "dossier_id", "sequence", "event_type", "status", "occurred_at"} <= required
    assert schema["properties"]["occurred_at"]["format"] == "date-time"


def test_events_are_immutable() -> None:
    ev = DossierEvent.model_validate(event_doc())
    with pytest.raises(Exception, match="frozen"):
        ev.sequence = 5  # type: ignore[misc]


def test_every_example_in_the_contract_document_is_valid_and_all_statuses_appear() -> None:
    doc = (SCHEMA_FILE.parents[2] / "docs" / "event-contract.md").read_text(encoding="utf-8")
    lines = [line for line in doc.splitlines() if line.startswith('{"schema_version"')]
    events = [parse_event(line, REGISTRY) for line in lines]
    assert {int(e.status) for e in events} == set(range(1, 11))
    assert {e.event_type.value for e in events} >= {"transferred", "apology_issued"}
