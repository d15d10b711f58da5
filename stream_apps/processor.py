"""One event in, the dossier's new state and the figures' change out; no Faust, no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass

from domain.aggregates import AggregateBook, facts_of
from domain.lifecycle import DossierState, Lifecycle, Outcome
from schemas.errors import EventValidationError
from schemas.events import parse_event
from stream_apps.codec import decode_state, encode_state


@dataclass(frozen=True)
class DeadLetter:
    """A message the worker could not apply: the original bytes and why."""

    key: bytes | None
    value: bytes
    reason: str


class EventProcessor:
    """Applies raw event messages to a dossier-state table and keeps the figures in step.

    Every message ends in exactly one count: applied, duplicate, pending (waiting for
    an earlier sequence number) or dead-lettered, so `events_in` always equals the sum.
    """

    def __init__(
        self,
        lifecycle: Lifecycle,
        book: AggregateBook,
        *,
        registry: object = None,
        second_supplement_late: bool = True,
    ) -> None:
        self.lifecycle = lifecycle
        self.book = book
        self.registry = registry
        self.second_supplement_late = second_supplement_late
        self.counts: Counter[str] = Counter()

    def process(
        self, table: MutableMapping[bytes, bytes], key: bytes | None, value: bytes
    ) -> list[DeadLetter]:
        """Apply one message; return what must go to the dead-letter topic."""
        self.counts["events_in"] += 1
        try:
            event = parse_event(value, self.registry)
        except EventValidationError as exc:
            self.counts["dead_lettered"] += 1
            return [DeadLetter(key, value, f"invalid event: {exc}")]
        table_key = event.dossier_id.encode()
        raw = table.get(table_key)
        state = decode_state(raw) if raw is not None else DossierState(event.dossier_id)
        before = facts_of(state, second_supplement_late=self.second_supplement_late)
        result = self.lifecycle.apply(state, event)
        if result.outcome is Outcome.DUPLICATE:
            self.counts["duplicates"] += 1
            return []
        table[table_key] = encode_state(state)
        if result.outcome is Outcome.PENDING:
            self.counts["pending"] += 1
            return []
        # Events released from `pending` leave that count and land in their own.
        released = len(result.applied) + len(result.rejected) - 1
        self.counts["pending"] -= released
        self.counts["applied"] += len(result.applied)
        self.counts["dead_lettered"] += len(result.rejected)
        self.book.move(before, facts_of(state, second_supplement_late=self.second_supplement_late))
        return [
            DeadLetter(
                table_key,
                value if e is event else e.model_dump_json().encode(),
                f"rejected: {reason}",
            )
            for e, reason in result.rejected
        ]

    def rebuild(self, states: list[DossierState]) -> None:
        """Recompute the figures from recovered states (after a restart or rebalance)."""
        book = AggregateBook()
        for state in states:
            book.move(None, facts_of(state, second_supplement_late=self.second_supplement_late))
        book.dirty = set(book.scopes())
        self.book = book
