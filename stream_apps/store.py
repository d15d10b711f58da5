"""The dossier-state store of one input partition: exact under redelivery and crashes.

Each dossier's record holds its state, the offset of the last input message of that
dossier the store has seen, and how that dossier's messages were counted. A message at
or below that offset is a redelivery (the worker crashed after applying it but before
committing its offset) and is skipped without being counted again. Messages that cannot
be decoded belong to no dossier: the partition's meta record counts them the same way.

Every record is an absolute state, written to a compacted changelog topic partition
that matches the input partition; after a restart the store is read back from it and
processing resumes from the committed input offset. Nothing is lost (the offset is
committed only after the changelog is acknowledged) and nothing is counted twice (the
offsets in the records tell a redelivery from a new message).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import orjson

from domain.lifecycle import DossierState, Lifecycle, Outcome
from schemas.errors import EventValidationError
from schemas.events import DossierEvent, parse_event
from stream_apps.codec import state_doc, state_from_doc

META_KEY = b"\x00partition-meta"

COUNT_NAMES = ("events_in", "applied", "duplicates", "pending", "dead_lettered")


class Verdict(StrEnum):
    """What became of one input message."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    PENDING = "pending"
    DEAD_LETTER = "dead_letter"
    REDELIVERY = "redelivery"  # already in the store: skipped, not counted


@dataclass(frozen=True)
class DeadLetter:
    """A message the worker could not apply: the original bytes, why, and where from."""

    key: bytes | None
    value: bytes
    reason: str
    offset: int


_UNKNOWN: Any = object()


@dataclass(slots=True)
class DossierRecord:
    """A dossier's state and the bookkeeping that makes redelivery harmless."""

    state: DossierState
    last_offset: int = -1
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    facts: Any = _UNKNOWN  # what the state contributes to the figures (not persisted)

    @property
    def pending(self) -> int:
        return len(self.state.pending)


def encode_record(record: DossierRecord) -> bytes:
    return orjson.dumps(
        {
            "s": state_doc(record.state),
            "o": record.last_offset,
            "n": [record.applied, record.duplicates, record.dead_lettered],
        }
    )


def decode_record(raw: bytes) -> DossierRecord:
    doc = orjson.loads(raw)
    applied, duplicates, dead = doc["n"]
    return DossierRecord(state_from_doc(doc["s"]), doc["o"], applied, duplicates, dead)


@dataclass
class PartitionMeta:
    """Messages of the partition that belong to no dossier (undecodable or invalid)."""

    invalid: int = 0
    invalid_last_offset: int = -1
    max_event_time: float = 0.0  # latest occurred_at applied, epoch seconds (event-time clock)

    def encode(self) -> bytes:
        return orjson.dumps(
            {"invalid": self.invalid, "o": self.invalid_last_offset, "t": self.max_event_time}
        )

    @classmethod
    def decode(cls, raw: bytes) -> PartitionMeta:
        doc = orjson.loads(raw)
        return cls(doc["invalid"], doc["o"], doc.get("t", 0.0))


class FiguresPort(Protocol):
    """What the store tells the figures: a dossier's contribution before and after."""

    def facts(self, state: DossierState) -> Any: ...

    def move(self, before: Any, after: Any) -> None: ...


@dataclass
class PartitionStore:
    """The dossiers of one input partition and their exact message counts."""

    partition: int
    lifecycle: Lifecycle
    registry: object = None
    records: dict[str, DossierRecord] = field(default_factory=dict)
    meta: PartitionMeta = field(default_factory=PartitionMeta)
    dirty: set[str] = field(default_factory=set)
    meta_dirty: bool = False
    _totals: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # applied, dup, dead, pending

    # -- processing -------------------------------------------------------------------
    def process(
        self, offset: int, key: bytes | None, value: bytes, figures: FiguresPort
    ) -> tuple[Verdict, list[DeadLetter]]:
        """Apply one input message at `offset`; return its verdict and any dead letters."""
        try:
            event = parse_event(value, self.registry)
        except EventValidationError as exc:
            if offset <= self.meta.invalid_last_offset:
                return Verdict.REDELIVERY, []
            self.meta.invalid += 1
            self.meta.invalid_last_offset = offset
            self.meta_dirty = True
            return Verdict.DEAD_LETTER, [DeadLetter(key, value, f"invalid event: {exc}", offset)]
        record = self.records.get(event.dossier_id)
        if record is None:
            record = DossierRecord(DossierState(event.dossier_id))
            self.records[event.dossier_id] = record
        elif offset <= record.last_offset:
            return Verdict.REDELIVERY, []
        before_counts = (record.applied, record.duplicates, record.dead_lettered, record.pending)
        verdict, letters = self._apply(record, event, value, offset, figures)
        record.last_offset = offset
        self.dirty.add(event.dossier_id)
        after_counts = (record.applied, record.duplicates, record.dead_lettered, record.pending)
        for i in range(4):
            self._totals[i] += after_counts[i] - before_counts[i]
        t = event.occurred_at.timestamp()
        if t > self.meta.max_event_time:
            self.meta.max_event_time = t
            self.meta_dirty = True
        return verdict, letters

    def _apply(
        self,
        record: DossierRecord,
        event: DossierEvent,
        value: bytes,
        offset: int,
        figures: FiguresPort,
    ) -> tuple[Verdict, list[DeadLetter]]:
        state = record.state
        before = record.facts if record.facts is not _UNKNOWN else figures.facts(state)
        record.facts = before
        result = self.lifecycle.apply(state, event)
        if result.outcome is Outcome.DUPLICATE:
            record.duplicates += 1
            return Verdict.DUPLICATE, []
        if result.outcome is Outcome.PENDING:
            return Verdict.PENDING, []
        record.applied += len(result.applied)
        record.dead_lettered += len(result.rejected)
        if result.applied:
            record.facts = figures.facts(state)
            figures.move(before, record.facts)
        key = event.dossier_id.encode()
        letters = [
            DeadLetter(
                key,
                value if rejected is event else rejected.model_dump_json().encode(),
                f"rejected: {reason}",
                offset,
            )
            for rejected, reason in result.rejected
        ]
        verdict = Verdict.APPLIED if result.outcome is Outcome.APPLIED else Verdict.DEAD_LETTER
        return verdict, letters

    # -- counts -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        applied, duplicates, dead, pending = self._totals
        dead += self.meta.invalid
        return {
            "events_in": applied + duplicates + dead + pending,
            "applied": applied,
            "duplicates": duplicates,
            "pending": pending,
            "dead_lettered": dead,
        }

    # -- changelog ----------------------------------------------------------------------
    def take_changes(self) -> list[tuple[bytes, bytes]]:
        """Changelog records of what changed since the last call, meta last."""
        out = [(dossier.encode(), encode_record(self.records[dossier])) for dossier in self.dirty]
        self.dirty.clear()
        if self.meta_dirty:
            out.append((META_KEY, self.meta.encode()))
            self.meta_dirty = False
        return out

    def restore(self, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Rebuild from changelog records in log order (later records win)."""
        for key, value in changelog:
            if value is None:
                continue
            if key == META_KEY:
                self.meta = PartitionMeta.decode(value)
            else:
                self.records[key.decode()] = decode_record(value)
        totals = [0, 0, 0, 0]
        for record in self.records.values():
            totals[0] += record.applied
            totals[1] += record.duplicates
            totals[2] += record.dead_lettered
            totals[3] += record.pending
        self._totals = totals

    def seed(self, figures: FiguresPort) -> None:
        """Add every dossier's contribution to a fresh `figures` (after a restore)."""
        for record in self.records.values():
            record.facts = figures.facts(record.state)
            figures.move(None, record.facts)

    def states(self) -> Iterator[DossierState]:
        for record in self.records.values():
            yield record.state
