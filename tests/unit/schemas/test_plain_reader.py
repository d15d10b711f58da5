"""`parse_event` reads JSON text with a plain reader first: it must judge as the model.

The reference is the model itself, `DossierEvent.model_validate_json` with the registry
in its context: for every document here, `parse_event` gives the event the model gives
(equal values, the same fields set, the same field order: the fingerprint of an event
hashes its fields in order) or the error the model gives.
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from domain.calendar import WorkingCalendar
from producers.simulator import SimulationConfig, WorkloadSimulator
from schemas.errors import EventValidationError
from schemas.events import DossierEvent, _plain_schema, parse_event
from schemas.registry import AgencyRegistry
from tests import hostile
from tests.factories import event_doc

REGISTRY = AgencyRegistry.default()


def by_the_model(data: bytes, registry: AgencyRegistry | None) -> DossierEvent | str:
    context = {"registry": registry} if registry is not None else None
    try:
        return DossierEvent.model_validate_json(data, context=context)
    except ValidationError as exc:
        return str(EventValidationError.from_pydantic(exc))


def by_parse_event(data: bytes, registry: AgencyRegistry | None) -> DossierEvent | str:
    try:
        return parse_event(data, registry)
    except EventValidationError as exc:
        return str(exc)


def assert_judged_alike(data: bytes, registry: AgencyRegistry | None = REGISTRY) -> None:
    expected, got = by_the_model(data, registry), by_parse_event(data, registry)
    if isinstance(expected, str) or isinstance(got, str):
        assert got == expected, data
        return
    assert got == expected, data
    assert got.model_dump_json() == expected.model_dump_json()
    assert got.model_fields_set == expected.model_fields_set
    assert list(got.__dict__) == list(expected.__dict__)
    assert [type(v) for v in got.__dict__.values()] == [type(v) for v in expected.__dict__.values()]
    assert got.time_limit == expected.time_limit and got.agency == expected.agency


@pytest.fixture(scope="module")
def simulated() -> list[bytes]:
    config = SimulationConfig(start=date(2025, 10, 1), days=10, seed=11, scale=0.05)
    simulator = WorkloadSimulator(config, registry=REGISTRY, calendar=WorkingCalendar())
    return [orjson.dumps(e.as_dict()) for e in simulator.events()]


def test_the_simulators_events_are_read_alike_with_and_without_a_registry(
    simulated: list[bytes],
) -> None:
    types = {orjson.loads(line)["event_type"] for line in simulated}
    assert len(types) >= 10, types  # most lifecycles are in the sample
    for line in simulated:
        assert_judged_alike(line)
        assert_judged_alike(line, None)


def test_the_hostile_corpus_is_read_alike() -> None:
    documents = hostile.documents()
    assert len(documents) > 40
    for doc in documents:
        assert_judged_alike(orjson.dumps(doc))
        assert_judged_alike(orjson.dumps(doc), None)


# Values a broken client may put in any field: wrong types, lax spellings, bounds.
ODD: list[Any] = [
    None,
    "",
    " ",
    "x",
    " 1.004616 ",
    "1",
    "2",
    1,
    2,
    0,
    -1,
    100_000,
    100_001,
    3650,
    3651,
    2000,
    2001,
    1.0,
    2.0,
    5.5,
    True,
    False,
    [],
    {},
    "2025-10-01T08:00:00+07:00",
    "2025-10-01T08:00:00Z",
    "2025-10-01 08:00:00+07:00",
    "2025-10-01T08:00:00",
    "1999-12-31T23:59:59+07:00",
    "2101-01-01T00:00:00+07:00",
    "2100-12-31T23:00:00-07:00",
    1759280400,
    "00000000-0000-0000-0000-000000000000",
    "00000000000000000000000000000000",
    "online",
    "in_person",
    "full",
    "pause",
    "restart",
    "city",
    "commune",
    "health",
    "SO-YTE",
    " SO-YTE",
    "hours",
    "working_days",
    {"code": "SO-YTE", "level": "city"},
    {"code": "SO-YTE", "level": "commune"},
    {"code": "NOPE", "level": "city"},
    {"code": "1.004616", "field": "health"},
    {"value": 15, "unit": "working_days"},
    {"value": 2000, "unit": "hours"},
    {"value": 2001, "unit": "hours"},
    {"value": 15.0, "unit": "working_days"},
    {"value": "15", "unit": "working_days"},
    {"value": True, "unit": "working_days"},
]

BASES = [
    event_doc("accepted"),
    event_doc("submitted", channel="online", online_mode="full"),
    event_doc("supplement_requested", sequence=3, clock="pause"),
    event_doc("refused", sequence=2, reason="thiếu giấy tờ"),
    event_doc("apology_issued", sequence=4),
]


def _variants() -> list[bytes]:
    out = []
    for base in BASES:
        names = [*base, "schema_version", "time_limit", "clock", "reason", "not_a_field"]
        for name, value in itertools.product(dict.fromkeys(names), ODD):
            out.append(orjson.dumps({**base, name: value}))
        for name in base:
            out.append(orjson.dumps({k: v for k, v in base.items() if k != name}))
    return out


def test_every_field_changed_to_odd_values_is_read_alike() -> None:
    variants = _variants()
    taken = sum(isinstance(by_the_model(v, REGISTRY), DossierEvent) for v in variants)
    assert 100 < taken < len(variants) - 1000  # both outcomes are well represented
    for data in variants:
        assert_judged_alike(data)


@pytest.mark.parametrize("field", ["schema_version", "sequence", "status"])
@pytest.mark.parametrize("form", ["1", True, 1.0])
def test_integers_in_other_forms_go_to_the_model(field: str, form: Any) -> None:
    # The model refuses strings and booleans, and takes 1.0 as 1: alike either way.
    doc = event_doc("submitted", channel="post") | {field: form}
    if field == "status" and form is not True:
        doc["status"] = "1" if form == "1" else 1.0
    assert_judged_alike(orjson.dumps(doc))


def test_the_plain_schema_calls_no_python() -> None:
    plain = _plain_schema(DossierEvent.__pydantic_core_schema__)
    text = repr(plain)
    assert "function-before" not in text and "function-after" not in text
    with pytest.raises(ValueError, match="function-wrap"):
        _plain_schema({"type": "function-wrap", "schema": {"type": "int"}})
