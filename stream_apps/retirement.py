"""Retired dossiers of one input partition: closed, old, and reduced to their contribution.

A dossier that is resolved or closed (returned, refused, withdrawn or stopped: no event
can change its figures any more), carries no flag, waits for no sequence, and whose
every time is more than `after_s` behind the partition's event clock, is retired: its
record leaves memory and the changelog (a tombstone), and what it contributed is kept
exactly, as day buckets per scope (`RetiredRows`), with its message counts. (A resolved
dossier's return, should it come after that, finds no record: see docs/worker.md.)

Retirement runs in sweeps, at most one per day of the partition's clock. Sweep k writes
one changelog record, `GROUP_PREFIX + k`: the rows and counts of every dossier it
retired, and their ids with the offset of their last message. The record goes out
before the tombstones, in the same ordered batch, so after a crash either the group is
missing (its dossiers are still records, retired again later) or it is there (and a
record it names that is still in the changelog is a leftover: dropped on restore, since
the group holds it). Once the batch is acknowledged, the group is written again without
its ids.

Groups whose rows are all older than every window (`DAYS_KEPT` days) go into one
archive record (`ARCHIVE_KEY`: the counts of every group up to k) and are tombstoned;
a group at or below the archive's k found on restore is a leftover of that step.

A retired dossier's events all happened at or before `through`, the latest event time
of the retired dossiers. A message for a dossier the partition does not hold (or holds
only as a gap) that happened at or before `through` may be a copy of such an event: it
is dead-lettered as late (`late_reason`) rather than taken for a new dossier. Only
dossiers whose last message is below the committed input offset are retired, so none of
their messages is delivered again after a crash.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from domain.figures import DAYS_KEPT, DossierFacts, RetiredRows, vn_day
from domain.lifecycle import DossierState
from schemas.enums import Status

GROUP_PREFIX = b"\x00retired|"
ARCHIVE_KEY = b"\x00retired-archive"
DAY = 86400
# Closed for good: no event type moves a dossier on from these statuses.
FINAL = frozenset({Status.RETURNED, Status.REFUSED, Status.WITHDRAWN, Status.STOPPED})
# Retired: those and the resolved ones. A resolved dossier waits only for its return
# (trả kết quả), which changes no figure; some are never collected, and they would
# otherwise be held for ever.
RETIRABLE = FINAL | {Status.RESOLVED}
MIN_AFTER_S = 34 * DAY  # the hour buckets reach 32 days and a few hours back
COUNTS = 4  # applied, duplicates, dead-lettered, dossiers


def group_key(k: int) -> bytes:
    return GROUP_PREFIX + f"{k:010d}".encode()


def last_time(state: DossierState) -> int:
    """An epoch second after every time of the dossier (its instants and its events)."""
    assert state.last_at is not None
    return int(state.last_at.timestamp()) + 1


def retirable(state: DossierState) -> bool:
    """Resolved or closed, with nothing waiting and no flag for its agency to repair."""
    return state.status in RETIRABLE and not state.pending and not state.flags


@dataclass
class Group:
    """The dossiers one sweep retired: their rows (until the figures are rebuilt), counts,
    latest event time and latest day, and their ids (until their tombstones are written)."""

    k: int
    counts: list[int]
    through: float
    last_day: int
    rows: RetiredRows | None = None
    ids: dict[str, int] | None = None
    rewrite: bytes | None = None  # the record without its ids, to write next

    def encode(self, *, with_ids: bool) -> bytes:
        assert self.rows is not None
        doc: dict[str, Any] = {
            "k": self.k,
            "n": self.counts,
            "t": self.through,
            "d": self.last_day,
            "rows": self.rows.to_doc(),
        }
        if with_ids and self.ids:
            doc["ids"] = self.ids
        return orjson.dumps(doc)

    @classmethod
    def decode(cls, raw: bytes) -> Group:
        doc = orjson.loads(raw)
        return cls(
            doc["k"],
            list(doc["n"]),
            doc["t"],
            doc["d"],
            RetiredRows.from_doc(doc["rows"]),
            doc.get("ids"),
        )


@dataclass
class Retirement:
    """The retired dossiers of one partition (see the module doc)."""

    after_s: float
    groups: dict[int, Group] = field(default_factory=dict)
    archive_k: int = 0  # groups 1..archive_k are in the archive counts
    archive_counts: list[int] = field(default_factory=lambda: [0] * COUNTS)
    archive_through: float = 0.0
    candidates: list[tuple[int, str]] = field(default_factory=list)  # heap: (last time, id)
    swept_day: int = -1  # day of the partition clock at the last sweep
    through: float = 0.0  # the latest event time of any retired dossier (0: none yet)
    deferred: int | None = None  # the last offset of a candidate put off: not committed yet
    _out: list[tuple[bytes, bytes | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.after_s < MIN_AFTER_S:
            raise ValueError(
                f"dossiers can be retired no sooner than {MIN_AFTER_S // DAY} days after their "
                f"last event (the hour buckets reach 32 days back), got {self.after_s / DAY:g}"
            )

    # -- counts ---------------------------------------------------------------------
    def counts(self) -> list[int]:
        """Applied, duplicates, dead-lettered and dossiers of every retired dossier."""
        total = list(self.archive_counts)
        for group in self.groups.values():
            for i, n in enumerate(group.counts):
                total[i] += n
        return total

    # -- candidates and sweeps --------------------------------------------------------
    def consider(self, state: DossierState) -> None:
        """A dossier settled: note it if it is resolved or closed (checked again at the sweep)."""
        if retirable(state):
            heapq.heappush(self.candidates, (last_time(state), state.dossier_id))

    def sweep_due(self, clock: float, committed: int) -> bool:
        """True once a day of the partition clock, or once the candidates a sweep put off
        are committed, when a candidate may be old enough."""
        new_day = clock > 0 and int(clock) // DAY > self.swept_day
        released = self.deferred is not None and committed > self.deferred
        if not (new_day or released):
            return False
        return bool(self.candidates) and self.candidates[0][0] < clock - self.after_s

    def sweep(
        self,
        clock: float,
        records: dict[str, Any],
        committed: int,
        facts: Any,
    ) -> list[str]:
        """Retire every candidate old enough at `clock` whose last message is below the
        committed offset; return their ids (the caller drops their records).

        `records` maps dossier ids to store records (`state`, `last_offset`, `counts()`);
        `facts(record)` gives a record's contribution.
        """
        self.swept_day = int(clock) // DAY
        cutoff = clock - self.after_s
        heap = self.candidates
        later: list[tuple[int, str]] = []
        rows = RetiredRows()
        counts = [0] * COUNTS
        ids: dict[str, int] = {}
        through = 0.0
        while heap and heap[0][0] < cutoff:
            t, dossier_id = heapq.heappop(heap)
            record = records.get(dossier_id)
            if record is None or dossier_id in ids or not retirable(record.state):
                continue
            if last_time(record.state) != t:
                continue  # noted again with its later time
            if record.last_offset >= committed:
                later.append((t, dossier_id))  # its messages may still be delivered again
                continue
            f: DossierFacts | None = facts(record)
            if f is not None:
                rows.add(f)
            applied, duplicates, dead, _ = record.counts()
            counts[0] += applied
            counts[1] += duplicates
            counts[2] += dead
            counts[3] += 1
            ids[dossier_id] = record.last_offset
            through = max(through, record.state.last_at.timestamp())
        for item in later:
            heapq.heappush(heap, item)
        self.deferred = max((records[i].last_offset for _, i in later), default=None)
        self.through = max(self.through, through)
        if ids:
            k = max(self.groups, default=self.archive_k) + 1
            group = Group(k, counts, through, rows.last_day or vn_day(int(through)), rows, ids)
            self.groups[k] = group
            self._out.append((group_key(k), group.encode(with_ids=True)))
            group.rewrite = group.encode(with_ids=False)
            group.rows = None  # the figures hold them; the record has them
        self._archive_old(clock)
        return list(ids)

    def _archive_old(self, clock: float) -> None:
        horizon = vn_day(int(clock)) - DAYS_KEPT - 7
        old = sorted(k for k, g in self.groups.items() if g.last_day < horizon)
        if not old:
            return
        for k in old:
            group = self.groups.pop(k)
            for i, n in enumerate(group.counts):
                self.archive_counts[i] += n
            self.archive_through = max(self.archive_through, group.through)
            self.archive_k = max(self.archive_k, k)
        self._out.append((ARCHIVE_KEY, self._archive_doc()))
        self._out += [(group_key(k), None) for k in old]

    def _archive_doc(self) -> bytes:
        return orjson.dumps(
            {"k": self.archive_k, "n": self.archive_counts, "t": self.archive_through}
        )

    # -- changelog --------------------------------------------------------------------
    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Records to write, in order: groups written before now again without their ids,
        then this sweep's group, the archive and the archived groups' tombstones."""
        out: list[tuple[bytes, bytes | None]] = []
        fresh = {key for key, _ in self._out}
        for group in self.groups.values():
            if group.rewrite is not None and group_key(group.k) not in fresh:
                out.append((group_key(group.k), group.rewrite))
                group.rewrite = None
                group.ids = None
        out += self._out
        self._out = []
        return out

    def restore(self, key: bytes, value: bytes | None) -> bool:
        """Read one changelog record if it is the retirement's; True if it was."""
        if key == ARCHIVE_KEY:
            if value is not None:
                doc = orjson.loads(value)
                self.archive_k, self.archive_counts = doc["k"], list(doc["n"])
                self.archive_through = doc["t"]
            return True
        if not key.startswith(GROUP_PREFIX):
            return False
        k = int(key[len(GROUP_PREFIX) :])
        if value is None:
            self.groups.pop(k, None)
        else:
            self.groups[k] = Group.decode(value)
        return True

    def end_restore(self, records: dict[str, Any]) -> list[str]:
        """After the changelog: drop what the archive already counts, and the records a
        group holds whose tombstones were not written; return those records' ids."""
        for k in [k for k in self.groups if k <= self.archive_k]:
            del self.groups[k]
            self._out.append((group_key(k), None))
        self.through = max([self.archive_through, *(g.through for g in self.groups.values())])
        leftovers: list[str] = []
        for group in self.groups.values():
            if group.ids:
                for dossier_id, offset in group.ids.items():
                    record = records.get(dossier_id)
                    if record is not None and record.last_offset == offset:
                        leftovers.append(dossier_id)
                group.rewrite = group.encode(with_ids=False)
        for record in records.values():
            if record.state.dossier_id not in leftovers:
                self.consider(record.state)
        return leftovers

    def rows(self) -> Iterable[RetiredRows]:
        """The restored groups' rows, once, for the figures' rebuild (then forgotten)."""
        for group in self.groups.values():
            if group.rows is not None:
                yield group.rows
                group.rows = None

    def late_reason(self, occurred_at: datetime, dossier_id: str) -> str:
        through = datetime.fromtimestamp(self.through, UTC).isoformat()
        return (
            f"late: dossier {dossier_id!r} is not held and its event occurred_at "
            f"{occurred_at.isoformat()} is at or before {through}, the latest time of the "
            f"dossiers retired in this partition (closed and {self.after_s / DAY:g} days "
            "old): it cannot be told from a copy of a retired dossier's event"
        )
