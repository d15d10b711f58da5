"""A request's events: 403 for another agency's, 400 for invalid ones, then the records."""

from __future__ import annotations

import orjson
import pytest

from gateway import batch
from producers.publisher import partition_for
from schemas.registry import AgencyRegistry
from schemas.signing import signer_key, unauthenticated_reason
from tests.factories import event_doc

REGISTRY = AgencyRegistry.default()
XD = {"code": "SO-XD", "level": "city"}
YTE = {"code": "SO-YTE", "level": "city"}


def xd(**overrides: object) -> dict[str, object]:
    return event_doc(**({"agency": XD, "dossier_id": "HP-SO-XD-1"} | overrides))


def test_valid_events_of_the_callers_agency_pass() -> None:
    items = [xd(), xd(event_type="processing", status=4, sequence=2)]
    events = batch.check(items, "SO-XD", REGISTRY)
    assert isinstance(events, list) and [e.sequence for e in events] == [1, 2]


@pytest.mark.parametrize(
    ("items", "indexes"),
    [
        ([event_doc(agency=YTE)], [0]),
        ([xd(), event_doc(agency=YTE), xd(), event_doc(agency=YTE)], [1, 3]),
        # Refused for the agency even when also invalid (the 403 comes first).
        ([xd(), {"agency": {"code": "SO-YTE"}}], [1]),
        # The contract strips whitespace: " SO-YTE " is SO-YTE.
        ([event_doc(agency={"code": " SO-YTE ", "level": "city"})], [0]),
    ],
)
def test_events_of_another_agency_are_forbidden(
    items: list[dict[str, object]], indexes: list[int]
) -> None:
    assert batch.check(items, "SO-XD", REGISTRY) == batch.Forbidden("SO-XD", indexes)


def test_the_callers_code_with_whitespace_is_the_callers() -> None:
    items = [xd(agency={"code": " SO-XD ", "level": "city"})]
    assert isinstance(batch.check(items, "SO-XD", REGISTRY), list)


def test_invalid_events_are_named_by_index_and_field() -> None:
    items = [xd(), xd(status=9), "not an object", xd(channel="fax"), {"agency": XD}]
    checked = batch.check(items, "SO-XD", REGISTRY)
    assert isinstance(checked, batch.Invalid)
    fields = {i: [e.field for e in errs] for i, errs in checked.errors.items()}
    assert fields[1] == ["status"]
    assert fields[2] == ["event"]
    assert fields[3] == ["channel"]
    assert "event_id" in fields[4] and "dossier_id" in fields[4]
    assert 0 not in fields


def test_an_event_id_twice_in_one_request_is_invalid_at_its_second_index() -> None:
    first = xd()
    items = [first, xd(), dict(first), xd(event_id=first["event_id"], sequence=2)]
    checked = batch.check(items, "SO-XD", REGISTRY)
    assert isinstance(checked, batch.Invalid)
    assert {i: [e.field for e in errs] for i, errs in checked.errors.items()} == {
        2: ["event_id"],
        3: ["event_id"],
    }
    assert "index 0" in checked.errors[3][0].message


def test_an_agency_outside_the_registry_is_invalid_not_forbidden() -> None:
    items = [event_doc(agency={"code": "SO-NOPE", "level": "city"})]
    assert isinstance(batch.check(items, "SO-NOPE", REGISTRY), batch.Invalid)


def test_records_are_keyed_by_dossier_on_its_partition_with_the_item_as_value() -> None:
    items = [xd(dossier_id=f"HP-SO-XD-{n}") for n in range(20)]
    events = batch.check(items, "SO-XD", REGISTRY)
    assert isinstance(events, list)
    records = batch.records(items, events, 6, partition_for)
    assert [r.index for r in records] == list(range(20))
    for item, record in zip(items, records, strict=True):
        assert record.key == str(item["dossier_id"]).encode()
        assert record.partition == partition_for(record.key, 6)
        assert orjson.loads(record.value) == item
        assert record.event_id == item["event_id"]
        assert record.headers == batch.HEADERS  # unsigned without a signer


def test_records_carry_a_signature_the_worker_accepts() -> None:
    master = "master-key-of-the-worker"
    items = [xd()]
    events = batch.check(items, "SO-XD", REGISTRY)
    assert isinstance(events, list)
    signer = ("gateway", signer_key(master, "gateway"))
    (record,) = batch.records(items, events, 4, partition_for, signer)
    assert unauthenticated_reason(master, record.headers, record.value, "SO-XD") is None
    # Another master key, or the value changed after signing: not vouched for.
    assert unauthenticated_reason("other", record.headers, record.value, "SO-XD") is not None
    assert unauthenticated_reason(master, record.headers, record.value + b" ", "SO-XD")
