"""The dashboard's own rules: when overdue is rising, how agencies are filtered and sorted.

Decision (overdue rising, *quá hạn tăng*): an agency's overdue dossiers are rising when
more of its dossiers became overdue in the last `RISING_HOURS` (24) hour buckets of its
hourly `became_overdue` series, ending with the clock's hour, than in the 24 buckets
before them. Comparing a day with the day before takes the office-hours rhythm out of
the comparison; `became_overdue` never shrinks after the fact, so a later supplement
request cannot hide a rise. The series is refreshed every DOSSIER_SERIES_INTERVAL_S, so
the mark may lag the watermark's figures by that much.

Decision (sorting): rows are ordered by the chosen column; agencies without a value (no
figures yet, or a ratio with nothing received) come last whatever the direction; ties
keep the registry's order by agency code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

HOUR_S = 3600
RISING_HOURS = 24

T = TypeVar("T")


def hour_start(epoch_s: int) -> int:
    """The start (epoch seconds) of the hour bucket holding `epoch_s`."""
    return epoch_s - epoch_s % HOUR_S


def overdue_counts(
    hourly: Mapping[int, int], clock_s: int, hours: int = RISING_HOURS
) -> tuple[int, int]:
    """(became overdue in the last `hours` buckets ending with the clock's hour,
    in the `hours` buckets before them)."""
    last = hour_start(clock_s)
    recent_from = last - (hours - 1) * HOUR_S
    before_from = recent_from - hours * HOUR_S
    recent = sum(n for t, n in hourly.items() if recent_from <= t <= last)
    before = sum(n for t, n in hourly.items() if before_from <= t < recent_from)
    return recent, before


def overdue_rising(hourly: Mapping[int, int], clock_s: int, hours: int = RISING_HOURS) -> bool:
    """More dossiers became overdue in the latest `hours` hours than in the `hours` before."""
    recent, before = overdue_counts(hourly, clock_s, hours)
    return recent > before


def parse_series(text: str | None) -> dict[int, int]:
    """A series field (`{"<bucket start>": count}` JSON) as {epoch seconds: count}."""
    import json

    if not text:
        return {}
    return {int(t): int(n) for t, n in json.loads(text).items()}


def sort_rows(
    rows: Iterable[T],
    value: Callable[[T], float | int | str | None],
    *,
    descending: bool,
    tiebreak: Callable[[T], str],
) -> list[T]:
    """Rows by `value` (missing values last), ties by `tiebreak` ascending."""
    rows = list(rows)
    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(key=tiebreak)
    present.sort(key=lambda r: value(r), reverse=descending)  # type: ignore[arg-type, return-value]
    missing.sort(key=tiebreak)
    return present + missing


def filter_level(rows: Sequence[T], level: str | None, level_of: Callable[[T], str]) -> list[T]:
    """Rows of one level (`city` or `commune`); all rows when `level` is None or `all`."""
    if level in (None, "", "all"):
        return list(rows)
    return [r for r in rows if level_of(r) == level]
