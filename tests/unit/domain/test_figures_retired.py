"""Retired contributions: closed, old dossiers as day rows, and day buckets kept a year and more."""

from __future__ import annotations

import json
import random

import pytest

from domain.errors import DomainError
from domain.figures import DAYS_KEPT, DossierFacts, FigureBook, RetiredRows, vn_day
from domain.lifecycle import ChannelKind
from tests.unit.domain.test_figures import facts, hashes, series_hashes, vn

pytestmark = pytest.mark.usefixtures("each_book")  # each test on every figure book

T = vn(2025, 11, 20, 15, 30)
DAY = 86400
SCOPES_B = ("agency:UB-P-LC", "level:commune", "field:civil_status", "city")


def closed(rng: random.Random) -> DossierFacts:
    """A closed dossier whose every instant is 45 to 330 days before T."""
    received = T - rng.randrange(45 * DAY, 330 * DAY)
    if rng.random() < 0.2:  # withdrawn or refused: no resolution
        return facts(received, open=False, scopes=rng.choice([facts(0).scopes, SCOPES_B]))
    due = received + rng.randrange(3 * DAY, 20 * DAY)
    resolved = min(received + rng.randrange(DAY, 25 * DAY), T - 41 * DAY)
    return facts(
        received,
        scopes=rng.choice([facts(0).scopes, SCOPES_B]),
        channel=rng.choice(list(ChannelKind)),
        resolved_at=resolved,
        resolved_on_time=resolved < due,
        open=False,
        due_at=None,
        became_overdue_at=due if resolved >= due else None,
    )


def test_a_book_rebuilt_from_retired_rows_equals_one_rebuilt_from_the_dossiers() -> None:
    rng = random.Random(7)
    old = [closed(rng) for _ in range(400)]
    recent = [facts(T - rng.randrange(0, 20 * DAY)) for _ in range(50)]
    whole = FigureBook()
    whole.rebuild([*old, *recent], now=T)
    rows = RetiredRows()
    for f in old:
        rows.add(f)
    rows = RetiredRows.from_doc(rows.to_doc())  # as the changelog carries them
    reduced = FigureBook()
    reduced.begin_rebuild(now=T, keep_hours_from=None)
    reduced.add_retired(rows)
    for f in recent:
        reduced.add(f)
    reduced.end_rebuild()
    this_year = sum(1 for f in [*old, *recent] if f.received_at >= vn(2025, 1, 1))
    assert hashes(reduced, T)["city"]["ytd.received_total"] == str(this_year)
    for t in (T, T + 3 * DAY):
        assert hashes(reduced, t) == hashes(whole, t)
        assert series_hashes(reduced, t) == series_hashes(whole, t)


def test_only_a_closed_contribution_can_be_retired() -> None:
    with pytest.raises(DomainError, match="closed"):
        RetiredRows().add(facts(T - 50 * DAY))
    with pytest.raises(DomainError, match="retired row"):
        RetiredRows.from_doc({"20000": {"city": [1, 2, 3]}})
    with pytest.raises(DomainError, match="retired row"):
        RetiredRows.from_doc({"20000": {"city": [1, 2, 3, 4, 5, 6, -1]}})


@pytest.mark.parametrize("t", [T, vn(2025, 12, 31, 23, 59)])  # ytd: 323 and 365 days
def test_day_buckets_older_than_every_window_are_dropped(t: int) -> None:
    rng = random.Random(3)
    start = t - 3 * 365 * DAY
    dossiers = [closed_at(start + rng.randrange(0, 3 * 365 * DAY)) for _ in range(3000)]
    book = FigureBook()
    for f in dossiers:
        book.move(None, f)
    book.snapshot("city", t)  # the clock moves to t: the book drops what no window reads
    days = book.kept_days("city")  # the bound is the point here
    assert days and min(days) >= vn_day(t) - DAYS_KEPT - 7
    # What is left still gives the year to date and the daily series, counted here.
    year_start = vn(2025, 1, 1)
    ytd = sum(1 for f in dossiers if year_start <= f.received_at <= t)
    assert hashes(book, t)["city"]["ytd.received_total"] == str(ytd)
    first_day = vn_day(t) - 89
    daily: dict[str, int] = {}
    for f in dossiers:
        if first_day <= vn_day(f.received_at) and f.received_at <= t:
            start = str(vn_day(f.received_at) * DAY - 7 * 3600)
            daily[start] = daily.get(start, 0) + 1
    got = json.loads(series_hashes(book, t)["city"]["daily.received_total"])
    assert got == dict(sorted(daily.items()))


def closed_at(received: int) -> DossierFacts:
    return facts(received, open=False)
