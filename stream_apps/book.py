"""The figures of one input partition: a FigureBook that knows how to read a dossier."""

from __future__ import annotations

import importlib.util
from typing import Any

from common import native
from domain.calendar import WorkingCalendar
from domain.figures import DossierFacts, FigureBook, dossier_facts
from domain.lifecycle import DossierState


class PartitionBook(FigureBook):
    """`FigureBook` plus `facts`, the port the dossier store reports changes through."""

    def __init__(self, calendar: WorkingCalendar, *, second_supplement_late: bool) -> None:
        super().__init__()
        self.calendar = calendar
        self.second_supplement_late = second_supplement_late

    def facts(self, state: DossierState) -> DossierFacts | None:
        return dossier_facts(
            state, self.calendar, second_supplement_late=self.second_supplement_late
        )


def rust_book_loaded() -> bool:
    """Whether the compiled core is active and its build holds the Rust figure book."""
    return native.active and importlib.util.find_spec(native.RUST_MODULE) is not None


def new_partition_book(calendar: WorkingCalendar, *, second_supplement_late: bool) -> Any:
    """A partition's book: counters in Rust when the compiled core holds them
    (`domain.native_figures.NativePartitionBook`), else `PartitionBook`. Both answer alike."""
    if rust_book_loaded():
        from domain.native_figures import NativePartitionBook

        return NativePartitionBook(calendar, second_supplement_late=second_supplement_late)
    return PartitionBook(calendar, second_supplement_late=second_supplement_late)
