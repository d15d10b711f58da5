"""The dashboard's rules: overdue rising, level filter, sorting."""

from __future__ import annotations

import pytest

from dashboard.rules import filter_level, overdue_counts, overdue_rising, parse_series, sort_rows

H = 3600
# The clock at 10:20 (UTC) on some day: its hour bucket starts at 10:00.
DAY0 = 1_759_000_000 - 1_759_000_000 % 86400
CLOCK = DAY0 + 10 * H + 20 * 60
LAST = DAY0 + 10 * H  # the clock's hour bucket


def hours_ago(n: int) -> int:
    """Start of the hour bucket `n` buckets before the clock's."""
    return LAST - n * H


@pytest.mark.parametrize(
    ("series", "recent", "before", "rising"),
    [
        ({}, 0, 0, False),
        ({hours_ago(0): 1}, 1, 0, True),  # the clock's own hour counts as recent
        ({hours_ago(23): 2}, 2, 0, True),  # the 24th bucket back is still recent
        ({hours_ago(24): 2}, 0, 2, False),  # the 25th is the day before
        ({hours_ago(47): 1}, 0, 1, False),
        ({hours_ago(48): 5}, 0, 0, False),  # older than 48 hours: not compared
        ({hours_ago(1): 3, hours_ago(30): 3}, 3, 3, False),  # equal is not rising
        ({hours_ago(1): 4, hours_ago(30): 3}, 4, 3, True),
        ({hours_ago(2): 1, hours_ago(25): 9}, 1, 9, False),  # falling
        ({LAST + H: 7}, 0, 0, False),  # a bucket after the clock's hour is ignored
    ],
)
def test_overdue_is_rising_when_the_last_24_hours_beat_the_24_before(
    series: dict[int, int], recent: int, before: int, rising: bool
) -> None:
    assert overdue_counts(series, CLOCK) == (recent, before)
    assert overdue_rising(series, CLOCK) is rising


def test_series_fields_parse_as_the_contract_writes_them() -> None:
    assert parse_series('{"1759251600": 12, "1759255200": 9}') == {1759251600: 12, 1759255200: 9}
    assert parse_series(None) == {} and parse_series("") == {}


ROWS = [("b", "city", 3), ("a", "commune", 3), ("c", "commune", None), ("d", "city", 7)]


@pytest.mark.parametrize(
    ("descending", "order"),
    [
        (True, ["d", "a", "b", "c"]),  # ties (a, b) by code; no value (c) last
        (False, ["a", "b", "d", "c"]),  # no value last in either direction
    ],
)
def test_sorting_puts_missing_values_last_and_breaks_ties_by_code(
    descending: bool, order: list[str]
) -> None:
    got = sort_rows(ROWS, lambda r: r[2], descending=descending, tiebreak=lambda r: r[0])
    assert [r[0] for r in got] == order


def test_the_level_filter_keeps_one_level_or_all() -> None:
    assert [r[0] for r in filter_level(ROWS, "commune", lambda r: r[1])] == ["a", "c"]
    assert [r[0] for r in filter_level(ROWS, "city", lambda r: r[1])] == ["b", "d"]
    assert filter_level(ROWS, "all", lambda r: r[1]) == ROWS
    assert filter_level(ROWS, None, lambda r: r[1]) == ROWS
