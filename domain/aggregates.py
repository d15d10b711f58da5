"""Figures derived from dossier states: per agency, per level, per field and city-wide.

Pure core. The worker never counts events: it records what each dossier contributes
(received through which channel, resolved on time or late, still open) before and
after every change, and moves the difference. So the figures are a function of the
dossier states alone, and rebuilding them from the states after a restart gives the
same numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from domain.lifecycle import ChannelKind, DossierState

CITY = "city"


def scopes_of(state: DossierState) -> tuple[str, ...]:
    """The aggregation scopes a dossier counts in."""
    return (f"agency:{state.agency}", f"level:{state.level}", f"field:{state.field}", CITY)


@dataclass(frozen=True, slots=True)
class Facts:
    """What one dossier contributes to the figures of its scopes."""

    scopes: tuple[str, ...]
    received: ChannelKind | None
    resolved_on_time: bool | None  # None: not resolved
    open: bool


def facts_of(state: DossierState, *, second_supplement_late: bool = True) -> Facts | None:
    """The contribution of one dossier, or None if it counts nowhere yet."""
    if state.received_at is None or state.channel is None:
        return None
    on_time: bool | None = None
    if state.resolved_at is not None:
        on_time = state.due_at is not None and state.resolved_at < state.due_at
        if second_supplement_late and state.supplements >= 2:
            on_time = False
    return Facts(scopes_of(state), state.channel, on_time, state.is_open)


class AggregateBook:
    """Running totals per scope, moved by the difference of dossier facts."""

    FIELDS = (
        *(f"received_{c.value}" for c in ChannelKind),
        "received_total",
        "resolved_on_time",
        "resolved_late",
        "open",
    )

    def __init__(self) -> None:
        self._totals: dict[str, Counter[str]] = {}
        self.dirty: set[str] = set()

    def move(self, before: Facts | None, after: Facts | None) -> None:
        if before == after:
            return
        if before is not None:
            self._add(before, -1)
        if after is not None:
            self._add(after, +1)

    def _add(self, facts: Facts, sign: int) -> None:
        keys = ["received_total"]
        if facts.received is not None:
            keys.append(f"received_{facts.received.value}")
        if facts.resolved_on_time is not None:
            keys.append("resolved_on_time" if facts.resolved_on_time else "resolved_late")
        if facts.open:
            keys.append("open")
        for scope in facts.scopes:
            totals = self._totals.setdefault(scope, Counter())
            for key in keys:
                totals[key] += sign
            self.dirty.add(scope)

    def scopes(self) -> list[str]:
        return sorted(self._totals)

    def figures(self, scope: str) -> dict[str, int]:
        """Every field of a scope, zeros included."""
        totals = self._totals.get(scope, Counter())
        return {name: totals[name] for name in self.FIELDS}
