"""The figure book kept in Rust: `FigureBook`'s interface, the counters in `native/`.

`domain.figure_core` is the Rust extension that `dossier-stream native build` compiles
from `native/` next to the mypyc-compiled modules (`common.native`); it can be imported
only while the compiled core is active. `FigureCore` keeps the same buckets as
`domain.figures.FigureBook` and answers `move`, `counts`, the alerts' readers and the
rebuild steps itself; this module adds what is built of Python objects (a snapshot, a
series) with the same functions the Python book uses, so that a figure is stated once.

`domain/figures.py` remains the statement of the figures. The unit tests hold the two
books to the same answers (`tests/unit/domain/test_native_figures.py`) and run the
figures' own tests on both.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from domain.calendar import WorkingCalendar
from domain.figure_core import FigureCore
from domain.figures import (
    CHANNEL_SLOTS,
    COUNT_FIELDS,
    ClockTooOldError,
    DossierFacts,
    RetiredRows,
    ScopeSeries,
    ScopeSnapshot,
    dossier_facts,
    rebuild_in_steps,
    series_tables,
    snapshot_of,
)

DEFAULT_RETENTION = 4 * 3600  # FigureBook's


class NativeFigureBook(FigureCore):
    """A `domain.figures.FigureBook` whose counters live in Rust."""

    def __new__(cls, *args: Any, retention: int = DEFAULT_RETENTION, **kwargs: Any) -> Any:
        return super().__new__(cls, retention, COUNT_FIELDS, CHANNEL_SLOTS, ClockTooOldError)

    def __init__(self, *, retention: int = DEFAULT_RETENTION) -> None:
        pass  # made in __new__

    def snapshot(self, scope: str, t: int) -> ScopeSnapshot:
        """Gauges and every window's metrics and ratios of one scope at clock t."""
        open_now, overdue, near, not_yet_due, windows = self.figures(scope, t)
        return snapshot_of(scope, t, (open_now, overdue, near, not_yet_due), windows)

    def series(self, scope: str, t: int) -> ScopeSeries:
        """Hourly (168) and Vietnam-daily (90) buckets per metric of one scope at clock t."""
        hourly, daily = self.series_rows(scope, t)
        return ScopeSeries(scope, t, series_tables(hourly), series_tables(daily))

    def rebuild(
        self,
        facts: Iterable[DossierFacts | None],
        *,
        now: int | None = None,
        keep_hours_from: int | None = None,
    ) -> None:
        """Start again from these facts (see `FigureBook.rebuild`)."""
        rebuild_in_steps(self, facts, now=now, keep_hours_from=keep_hours_from)

    def add_retired(self, retired: RetiredRows) -> None:
        """Add retired dossiers' contributions during a rebuild: day and month buckets only."""
        self.add_retired_rows(retired.rows)


class NativePartitionBook(NativeFigureBook):
    """`stream_apps.book.PartitionBook` with the counters in Rust: the book plus `facts`."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return super().__new__(cls)

    def __init__(self, calendar: WorkingCalendar, *, second_supplement_late: bool) -> None:
        self.calendar = calendar
        self.second_supplement_late = second_supplement_late
        # Called twice per message: bound once, with no Python frame of its own.
        self.facts = partial(
            dossier_facts, calendar=calendar, second_supplement_late=second_supplement_late
        )
