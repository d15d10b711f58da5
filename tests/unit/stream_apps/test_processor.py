"""The worker's per-message logic, with a dict standing in for the state table."""

from __future__ import annotations

from datetime import timedelta

import orjson

from domain.aggregates import CITY, AggregateBook
from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from stream_apps.codec import decode_state, encode_state
from stream_apps.processor import EventProcessor
from tests.factories import T0, event, event_doc, lifecycle


def processor() -> EventProcessor:
    return EventProcessor(
        Lifecycle(calendar_resume(WorkingCalendar())),
        AggregateBook(),
        registry=AgencyRegistry.default(),
    )


def raw(ev) -> bytes:
    return ev.model_dump_json().encode()


def conserved(p: EventProcessor) -> bool:
    c = p.counts
    return c["events_in"] == c["applied"] + c["duplicates"] + c["pending"] + c["dead_lettered"]


def test_every_message_lands_in_exactly_one_count() -> None:
    p, table = processor(), {}
    e1, e2, e3, e4 = lifecycle()
    messages = [raw(e1), raw(e3), raw(e1), b"not json", raw(e2), raw(e4), raw(e4)]
    letters = [letter for m in messages for letter in p.process(table, None, m)]
    assert dict(p.counts) | {} == {
        "events_in": 7, "applied": 4, "duplicates": 2, "pending": 0, "dead_lettered": 1,
    }
    assert conserved(p)
    assert len(letters) == 1 and letters[0].value == b"not json"
    assert "invalid event" in letters[0].reason


def test_invalid_and_impossible_events_go_to_dead_letters_with_original_bytes() -> None:
    p, table = processor(), {}
    bad_agency = orjson.dumps(event_doc(agency={"code": "SO-NONE", "level": "city"}))
    impossible = raw(event("resolved", dossier_id="Z"))
    letters = p.process(table, b"k", bad_agency) + p.process(table, b"Z", impossible)
    assert [letter.value for letter in letters] == [bad_agency, impossible]
    assert "agency" in letters[0].reason and "impossible transition" in letters[1].reason
    assert p.counts["dead_lettered"] == 2 and conserved(p)


def test_pending_events_are_counted_until_released() -> None:
    p, table = processor(), {}
    e1, e2, e3, _ = lifecycle()
    p.process(table, None, raw(e3))
    p.process(table, None, raw(e2))
    assert p.counts["pending"] == 2 and conserved(p)
    p.process(table, None, raw(e1))
    assert p.counts["pending"] == 0 and p.counts["applied"] == 3 and conserved(p)


def test_figures_follow_the_table_and_rebuild_the_same() -> None:
    p, table = processor(), {}
    for i in range(3):
        for ev in lifecycle(f"D{i}", steps=("accepted", "resolved"), gap=timedelta(days=i * 10 + 1)):
            p.process(table, None, raw(ev))
    before = p.book.figures(CITY)
    assert before["received_total"] == 3 and before["resolved_late"] == 2
    p.rebuild([decode_state(v) for v in table.values()])
    assert p.book.figures(CITY) == before


def test_state_codec_round_trips_including_pending_events() -> None:
    p, table = processor(), {}
    events = lifecycle(steps=("accepted", "supplement_requested", "supplement_received", "resolved"),
                       start=T0)
    p.process(table, None, raw(events[0]))
    p.process(table, None, raw(events[3]))
    (stored,) = table.values()
    state = decode_state(stored)
    assert state.pending[4] == events[3]
    assert encode_state(state) == stored
