"""Every date-time of an event carries the zone object shared by its UTC offset.

What must hold: the instant, the offset and the text of each time are those written in
the event, whichever way it was read (the plain reader or the model); and two times
with the same offset hold the very same zone object, Vietnam's `VN_TZ` for +07:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from domain.calendar import VN_TZ as CALENDAR_TZ
from schemas.events import DossierEvent, parse_event
from schemas.registry import AgencyRegistry
from schemas.times import TIME_FIELDS, VN_TZ, shared_time, shared_zone
from tests.factories import event_doc

REGISTRY = AgencyRegistry.default()
WRITTEN = {
    "occurred_at": "2025-07-01T08:30:00.250000+07:00",
    "emitted_at": "2025-07-01T01:30:05Z",
    "appointment_at": "2025-07-08T17:00:00-05:30",
}


def accepted_doc() -> dict[str, object]:
    return event_doc("accepted", **WRITTEN)


def read_both_ways() -> list[DossierEvent]:
    doc = accepted_doc()
    return [parse_event(orjson.dumps(doc), REGISTRY), parse_event(doc, REGISTRY)]


def test_the_calendar_and_the_events_share_one_vietnam_zone() -> None:
    assert CALENDAR_TZ is VN_TZ
    assert VN_TZ.utcoffset(None) == timedelta(hours=7)


@pytest.mark.parametrize("hours", [7, 0, -5.5, 14])
def test_one_zone_object_per_offset(hours: float) -> None:
    offset = timedelta(hours=hours)
    assert shared_zone(offset) is shared_zone(timedelta(seconds=offset.total_seconds()))
    assert shared_zone(offset).utcoffset(None) == offset


def test_a_shared_time_is_the_same_instant_offset_and_text() -> None:
    own = datetime(2025, 7, 1, 8, 30, 0, 250_000, tzinfo=timezone(timedelta(hours=7)))
    shared = shared_time(own)
    assert shared.tzinfo is VN_TZ
    assert shared == own and shared.utcoffset() == own.utcoffset()
    assert shared.isoformat() == "2025-07-01T08:30:00.250000+07:00"
    assert shared_time(shared) is shared
    naive = datetime(2025, 7, 1, 8, 30)
    assert shared_time(naive) is naive


def test_an_events_times_are_as_written_with_shared_zones_both_ways() -> None:
    for event in read_both_ways():
        for name, text in WRITTEN.items():
            value = getattr(event, name)
            assert value == datetime.fromisoformat(text), name
            assert value.utcoffset() == datetime.fromisoformat(text).utcoffset(), name
        assert event.occurred_at.tzinfo is VN_TZ
        assert event.emitted_at.tzinfo is UTC
        assert event.appointment_at is not None
        assert event.appointment_at.tzinfo is shared_zone(timedelta(hours=-5.5))
        # Written back as read: the dead-letter copy of an event is its JSON.
        written = orjson.loads(event.model_dump_json())
        assert written["occurred_at"] == "2025-07-01T08:30:00.250000+07:00"
        assert written["appointment_at"] == "2025-07-08T17:00:00-05:30"
        assert datetime.fromisoformat(written["emitted_at"]) == datetime(
            2025, 7, 1, 1, 30, 5, tzinfo=UTC
        )


def test_two_events_read_apart_share_their_zone_objects() -> None:
    first, second = read_both_ways()
    for name in TIME_FIELDS:
        a, b = getattr(first, name), getattr(second, name)
        assert (a is None) == (b is None)
        if a is not None:
            assert a.tzinfo is b.tzinfo, name
