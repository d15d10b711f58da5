"""Figures derived from dossier states, moved by differences."""

from __future__ import annotations

from datetime import timedelta

from domain.aggregates import CITY, AggregateBook, facts_of
from domain.calendar import WorkingCalendar
from domain.lifecycle import DossierState, Lifecycle, calendar_resume
from tests.factories import T0, event

LIFE = Lifecycle(calendar_resume(WorkingCalendar()))


def feed(book: AggregateBook, states: dict[str, DossierState], ev) -> None:
    state = states.setdefault(ev.dossier_id, DossierState(ev.dossier_id))
    before = facts_of(state)
    LIFE.apply(state, ev)
    book.move(before, facts_of(state))


def test_received_by_channel_and_resolution_outcomes() -> None:
    book, states = AggregateBook(), {}
    feed(book, states, event("accepted", dossier_id="A", channel="in_person", online_mode=None))
    feed(book, states, event("accepted", dossier_id="B"))
    feed(book, states, event("accepted", dossier_id="C", online_mode="partial"))
    late = T0 + timedelta(days=30)
    feed(book, states, event("resolved", dossier_id="A", sequence=2, at=T0 + timedelta(days=1),
                             channel="in_person", online_mode=None))
    feed(book, states, event("resolved", dossier_id="B", sequence=2, at=late))
    city = book.figures(CITY)
    assert city["received_total"] == 3
    assert (city["received_in_person"], city["received_online_full"], city["received_online_partial"]) == (1, 1, 1)
    assert city["received_post"] == 0
    assert (city["resolved_on_time"], city["resolved_late"], city["open"]) == (1, 1, 1)
    assert book.figures("agency:SO-YTE") == city
    assert book.figures("level:city")["received_total"] == 3
    assert book.figures("level:commune")["received_total"] == 0


def test_a_second_supplement_request_makes_the_dossier_late() -> None:
    steps = ["accepted", "supplement_requested", "supplement_received",
             "supplement_requested", "supplement_received", "resolved"]
    events = [event(s, dossier_id="D", sequence=i + 1, at=T0 + timedelta(hours=i))
              for i, s in enumerate(steps)]
    book, states = AggregateBook(), {}
    for ev in events:
        feed(book, states, ev)
    assert book.figures(CITY)["resolved_late"] == 1
    relaxed = facts_of(states["D"], second_supplement_late=False)
    assert relaxed is not None and relaxed.resolved_on_time is True


def test_a_submitted_but_not_accepted_dossier_counts_nowhere() -> None:
    book, states = AggregateBook(), {}
    feed(book, states, event("submitted", dossier_id="E"))
    assert book.figures(CITY)["received_total"] == 0
    assert book.scopes() == []


def test_rebuilding_from_states_gives_the_same_figures() -> None:
    book, states = AggregateBook(), {}
    for i in range(5):
        feed(book, states, event("accepted", dossier_id=f"X{i}"))
    feed(book, states, event("withdrawn", dossier_id="X0", sequence=2, at=T0 + timedelta(hours=1)))
    rebuilt = AggregateBook()
    for state in states.values():
        rebuilt.move(None, facts_of(state))
    assert {s: rebuilt.figures(s) for s in rebuilt.scopes()} == {s: book.figures(s) for s in book.scopes()}
    assert book.figures(CITY)["open"] == 4
