"""The figures of one input partition: a FigureBook that knows how to read a dossier."""

from __future__ import annotations

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
