"""The read model parses exactly what the worker writes for a scope."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.calendar import WorkingCalendar
from domain.lifecycle import DossierState, Lifecycle, calendar_resume
from schemas.serving import WINDOWS, ScopeReading
from stream_apps.book import new_partition_book
from tests.factories import T0, lifecycle


def test_a_written_scope_hash_reads_back_with_its_numbers() -> None:
    calendar = WorkingCalendar()
    life = Lifecycle(calendar_resume(calendar))
    book = new_partition_book(calendar, second_supplement_late=True)
    for i, steps in enumerate([("accepted",), ("accepted", "resolved"), ("accepted",)]):
        state = DossierState(f"S{i}")
        for ev in lifecycle(f"S{i}", steps=steps, gap=timedelta(days=20)):
            life.apply(state, ev)
        book.move(None, book.facts(state))
    t = int((T0 + timedelta(days=30)).timestamp())
    written = book.snapshot("city", t).to_redis_hash()
    reading = ScopeReading.from_redis_hash(written)
    assert set(reading.windows) == set(WINDOWS)
    assert reading.open_now == int(written["open_now"]) == 2
    qtd = reading.windows["qtd"]
    assert qtd.received_total == 3 and qtd.online_ratio == 1.0
    assert qtd.resolved_late == int(written["qtd.resolved_late"])
    assert reading.windows["1h"].online_ratio is None  # nothing received in the last hour


def test_a_missing_field_is_an_error_naming_it() -> None:
    with pytest.raises(KeyError, match="open_now"):
        ScopeReading.from_redis_hash({})
