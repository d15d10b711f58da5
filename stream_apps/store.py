"""The dossier-state store of one input partition: exact under redelivery and crashes.

Each dossier's record holds its state, the offset of the last input message of that
dossier the store has seen, and how that dossier's messages were counted. A message at
or below that offset is a redelivery (the worker crashed after applying it but before
committing its offset) and is skipped without being counted again. Messages that cannot
be read as belonging to a dossier count in the partition's meta record the same way.

No input stops the store. Applying a message is all or nothing: any error raised while
validating, applying or computing its figure facts leaves the record as it was and
sends the message to the dead letters with the error as its reason. An invalid message
whose dossier id and sequence can still be read uses up that sequence (so the dossier's
later events apply); one dated more than `future_tolerance_s` ahead of the wall clock is
treated the same way. A message whose key is not its dossier id is dead-lettered as
misrouted (in the wrong partition it would split its dossier in two). A gap in a
dossier's sequences that stays open for `gap_timeout_s` (wall clock, or event time) is
released (`release_gaps`).

Every record is an absolute state, written to a compacted changelog topic partition
that matches the input partition; after a restart the store is read back from it and
processing resumes from the committed input offset. Nothing is lost (the offset is
committed only after the changelog is acknowledged) and nothing is counted twice (the
offsets in the records tell a redelivery from a new message).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, cast

import orjson

from domain.lifecycle import (
    NOT_CHECKED,
    ApplyResult,
    DossierState,
    Lifecycle,
    Outcome,
    restore_state,
    state_values,
)
from schemas.errors import EventValidationError
from schemas.events import DossierEvent, parse_event
from schemas.signing import Verifier, may_publish, refused
from stream_apps.alert_history import AlertFigures, AlertHistory
from stream_apps.codec import state_doc, state_from_doc
from stream_apps.retirement import FINAL, Retirement

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
    waiting_since: float | None = None  # clock when its current gap opened
    facts: Any = _UNKNOWN  # what the state contributes to the figures (not persisted)

    @property
    def pending(self) -> int:
        return self.state.waiting_events

    def counts(self) -> tuple[int, int, int, int]:
        return (self.applied, self.duplicates, self.dead_lettered, self.pending)


def encode_record(record: DossierRecord) -> bytes:
    return orjson.dumps(
        {
            "s": state_doc(record.state),
            "o": record.last_offset,
            "n": [record.applied, record.duplicates, record.dead_lettered],
            "w": record.waiting_since,
        }
    )


def decode_record(raw: bytes) -> DossierRecord:
    doc = orjson.loads(raw)
    applied, duplicates, dead = doc["n"]
    return DossierRecord(
        state_from_doc(doc["s"]), doc["o"], applied, duplicates, dead, doc.get("w")
    )


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


class RebuildPort(FiguresPort, Protocol):
    """Figures that can be rebuilt from every dossier at once (`FigureBook`)."""

    def begin_rebuild(self, *, now: int | None, keep_hours_from: int | None) -> None: ...
    def add(self, facts: Any) -> None: ...
    def add_retired(self, retired: Any) -> None: ...
    def end_rebuild(self) -> None: ...


_DOSSIER_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._:/-]{0,63}$")


def readable_ident(value: bytes) -> tuple[str, int] | None:
    """The dossier id and sequence of a message that fails the contract, if readable."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    dossier_id, seq = doc.get("dossier_id"), doc.get("sequence")
    if not isinstance(dossier_id, str) or not _DOSSIER_ID.match(dossier_id.strip()):
        return None
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= 100_000:
        return None
    return dossier_id.strip(), seq


def readable_agency(value: bytes) -> str:
    """The `agency.code` a message that fails the contract claims, or "" if unreadable."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ""
    agency = doc.get("agency") if isinstance(doc, dict) else None
    code = agency.get("code") if isinstance(agency, dict) else None
    return code if isinstance(code, str) else ""


def agency_of(state: DossierState) -> str:
    """The agency a dossier belongs to, or that its first waiting event names."""
    if state.agency:
        return state.agency
    for waiting in state.pending.values():
        if isinstance(waiting, DossierEvent):
            return waiting.agency.code
    return "unknown"


@dataclass
class PartitionStore:
    """The dossiers of one input partition and their exact message counts."""

    partition: int
    lifecycle: Lifecycle
    registry: Any = None  # an AgencyRegistry: events naming unknown agencies are invalid
    future_tolerance_s: float = 300.0
    clock_mode: str = "live"  # "event": gaps are timed on this partition's event clock
    records: dict[str, DossierRecord] = field(default_factory=dict)
    meta: PartitionMeta = field(default_factory=PartitionMeta)
    dirty: set[str] = field(default_factory=set)
    meta_dirty: bool = False
    # What the alert rules read, frozen as events cross hours when the figures run on
    # event time, else by the wall clock (`freeze_clock`).
    overdue: AlertHistory = field(default_factory=AlertHistory)
    alert_inputs: bool = True  # False: the alert rules are off, nothing to freeze
    # With a verifier, only events signed by the gateway or by the agency they name apply.
    verifier: Verifier | None = None
    # With a retirement, closed dossiers old enough leave the records, their contribution
    # kept (`stream_apps.retirement`).
    retirement: Retirement | None = None
    gone: set[str] = field(default_factory=set)  # retired records: tombstones to write
    stuck: dict[str, float] = field(default_factory=dict)  # dossier -> gap open since
    flagged: dict[str, frozenset[str]] = field(default_factory=dict)  # dossier -> flags
    _totals: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # applied, dup, dead, pending

    # -- processing -------------------------------------------------------------------
    def process(
        self,
        offset: int,
        key: bytes | None,
        value: bytes,
        figures: FiguresPort,
        *,
        now: float,
        clock: float | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> tuple[Verdict, list[DeadLetter]]:
        """Apply one input message at `offset`; return its verdict and any dead letters.

        `now` is the wall clock (epoch seconds) for the future-time check; `clock` times
        the sequence gaps (default: `now`, or with `clock_mode="event"` the latest event
        time applied in this partition, read as each message is settled). `headers`
        carry the signature the `verifier`, when there is one, checks first: an event
        nobody may vouch for is dead-lettered and touches no dossier (not even the
        sequence it claims, which the real event may still need).
        """
        if clock is None and self.clock_mode != "event":
            clock = now
        signer = None
        if self.verifier is not None:
            signer, why = self.verifier.signer(headers, value)
            if signer is None:
                return self._unusable(offset, key, value, why, None, figures, clock)
        try:
            event = parse_event(value, self.registry)
        except EventValidationError as exc:
            ident = readable_ident(value)
            if signer is not None and not may_publish(signer, readable_agency(value)):
                ident = None  # signed by another agency: it may not use up this sequence
            return self._unusable(
                offset, key, value, f"invalid event: {exc}", ident, figures, clock
            )
        if signer is not None and not may_publish(signer, event.agency.code):
            reason = refused(signer, event.agency.code)
            return self._unusable(offset, key, value, reason, None, figures, clock)
        if key != event.dossier_id.encode():
            # In another partition than its dossier's other events, it would split the
            # dossier in two: it cannot be applied here, and must not use up a sequence.
            reason = (
                f"misrouted: the message key {key[:80]!r} is not the dossier id "
                f"{event.dossier_id!r} (events are keyed by dossier id)"
                if key is not None
                else f"misrouted: the message has no key (events are keyed by dossier id "
                f"{event.dossier_id!r})"
            )
            return self._unusable(offset, key, value, reason, None, figures, clock)
        occurred = event.occurred_at.timestamp()  # read once: it is not a cheap call
        ahead = occurred - now
        if ahead > self.future_tolerance_s:
            reason = (
                f"future: occurred_at {event.occurred_at.isoformat()} is {ahead:.0f} s ahead of "
                f"the worker's clock (tolerance {self.future_tolerance_s:.0f} s)"
            )
            ident = (event.dossier_id, event.sequence)
            return self._unusable(offset, key, value, reason, ident, figures, clock)
        record = self.records.get(event.dossier_id)
        if record is not None and offset <= record.last_offset:
            return Verdict.REDELIVERY, []
        retired = self.retirement
        if (
            retired is not None
            and (record is None or record.state.status is None)
            and occurred <= retired.through
        ):
            reason = retired.late_reason(event.occurred_at, event.dossier_id)
            return self._unusable(offset, key, value, reason, None, figures, clock)
        if record is None:
            record = DossierRecord(DossierState(event.dossier_id))
            self.records[event.dossier_id] = record
        before_counts = record.counts()
        pending = dict(record.state.pending) if record.state.pending else {}
        saved = (state_values(record.state), pending, before_counts, record.facts)
        try:
            verdict, letters = self._apply(record, event, occurred, value, offset, figures)
        except Exception as exc:  # never stop on one message: undo it, dead-letter it
            values, pending, counts, facts = saved
            restore_state(record.state, values)
            record.state.pending = pending  # the values share the dict the lifecycle changed
            record.applied, record.duplicates, record.dead_lettered, _ = counts
            record.facts = facts
            record.dead_lettered += 1
            reason = f"cannot apply: {type(exc).__name__}: {exc}"
            verdict, letters = Verdict.DEAD_LETTER, [DeadLetter(key, value, reason, offset)]
        self._settled(record, offset, before_counts, clock)
        return verdict, letters

    def _unusable(
        self,
        offset: int,
        key: bytes | None,
        value: bytes,
        reason: str,
        ident: tuple[str, int] | None,
        figures: FiguresPort,
        clock: float | None,
    ) -> tuple[Verdict, list[DeadLetter]]:
        """A message that cannot apply: dead-lettered; its sequence used up when readable."""
        if ident is None:
            if offset <= self.meta.invalid_last_offset:
                return Verdict.REDELIVERY, []
            self.meta.invalid += 1
            self.meta.invalid_last_offset = offset
            self.meta_dirty = True
            return Verdict.DEAD_LETTER, [DeadLetter(key, value, reason, offset)]
        dossier_id, seq = ident
        record = self.records.get(dossier_id)
        if record is None:
            record = DossierRecord(DossierState(dossier_id))
            self.records[dossier_id] = record
        elif offset <= record.last_offset:
            return Verdict.REDELIVERY, []
        before_counts = record.counts()
        before = self._facts_before(record, figures)
        what = (
            "a message dated in the future" if reason.startswith("future") else "an invalid message"
        )
        result = self.lifecycle.void(record.state, seq, what, figures.facts)
        record.dead_lettered += 1
        note = (
            f" (sequence {seq} of dossier {dossier_id} is used up, so its later events apply)"
            if result.consumed
            else f" (sequence {seq} of dossier {dossier_id} was already used)"
        )
        letters = [DeadLetter(key, value, reason + note, offset)]
        letters += self._settle(record, result, None, value, offset, figures, before)
        self._settled(record, offset, before_counts, clock)
        return Verdict.DEAD_LETTER, letters

    @staticmethod
    def _facts_before(record: DossierRecord, figures: FiguresPort) -> Any:
        if record.facts is _UNKNOWN:
            record.facts = figures.facts(record.state)
        return record.facts

    def _apply(
        self,
        record: DossierRecord,
        event: DossierEvent,
        occurred: float,
        value: bytes,
        offset: int,
        figures: FiguresPort,
    ) -> tuple[Verdict, list[DeadLetter]]:
        """Apply a valid event whose `occurred_at` is `occurred` (epoch seconds)."""
        before = self._facts_before(record, figures)
        result = self.lifecycle.apply(record.state, event, figures.facts, before)
        if result.outcome is Outcome.DUPLICATE:
            record.duplicates += 1
            return Verdict.DUPLICATE, []
        if result.outcome is Outcome.PENDING:
            return Verdict.PENDING, []
        letters = self._settle(record, result, event, value, offset, figures, before, occurred)
        verdict = Verdict.APPLIED if result.outcome is Outcome.APPLIED else Verdict.DEAD_LETTER
        return verdict, letters

    def _settle(
        self,
        record: DossierRecord,
        result: ApplyResult,
        trigger: DossierEvent | None,
        value: bytes,
        offset: int,
        figures: FiguresPort,
        before: Any,
        trigger_at: float | None = None,
    ) -> list[DeadLetter]:
        """Count what a lifecycle step applied and rejected; move the figures.

        `trigger_at`: the `occurred_at` of `trigger` in epoch seconds, when known.
        """
        applied = result.applied
        record.applied += len(applied)
        record.dead_lettered += len(result.rejected)
        if applied:
            # The event-time clock moves with applied events only. Nearly always the one
            # applied is the message's own event, whose time the caller has read.
            if trigger_at is not None and len(applied) == 1 and applied[0] is trigger:
                latest = trigger_at
            else:
                latest = max(e.occurred_at for e in applied).timestamp()
            if (
                self.alert_inputs
                and self.clock_mode == "event"
                and latest >= self.overdue.next_boundary
            ):
                # Before this event applies: the hours that ended before it are final.
                self.overdue.freeze(int(latest), cast(AlertFigures, figures))
            after = result.facts
            if after is NOT_CHECKED:
                after = figures.facts(record.state)
            # Kept while the dossier can still change; a closed one's is made again if
            # ever needed (rarely: a duplicate), which keeps its record small.
            record.facts = _UNKNOWN if record.state.status in FINAL else after
            if after is not before:  # the same facts object: nothing to move
                figures.move(before, after)
            if latest > self.meta.max_event_time:
                self.meta.max_event_time = latest
                self.meta_dirty = True
        key = record.state.dossier_id.encode()
        return [
            DeadLetter(
                key,
                value if rejected is trigger else rejected.model_dump_json().encode(),
                reason
                if reason.startswith(("conflict", "cannot apply"))
                else f"rejected: {reason}",
                offset,
            )
            for rejected, reason in result.rejected
        ]

    def _settled(
        self,
        record: DossierRecord,
        offset: int,
        before_counts: tuple[int, ...],
        clock: float | None,
    ) -> None:
        """Bookkeeping after a message: offsets, totals, the changelog, gaps and flags."""
        record.last_offset = max(record.last_offset, offset)
        dossier_id = record.state.dossier_id
        self.dirty.add(dossier_id)
        applied, duplicates, dead, pending = record.counts()
        totals = self._totals
        totals[0] += applied - before_counts[0]
        totals[1] += duplicates - before_counts[1]
        totals[2] += dead - before_counts[2]
        totals[3] += pending - before_counts[3]
        self._track(record, self.meta.max_event_time if clock is None else clock)
        if self.retirement is not None:
            self.retirement.consider(record.state)

    def _track(self, record: DossierRecord, clock: float) -> None:
        state = record.state
        dossier_id = state.dossier_id
        if state.pending:
            if record.waiting_since is None:
                record.waiting_since = clock
            self.stuck[dossier_id] = record.waiting_since
        else:
            record.waiting_since = None
            self.stuck.pop(dossier_id, None)
        if state.flags:
            self.flagged[dossier_id] = state.flags
        else:
            self.flagged.pop(dossier_id, None)

    def release_gaps(
        self, clock: float | None, timeout_s: float, figures: FiguresPort
    ) -> list[DeadLetter]:
        """Release every gap open for `timeout_s` or longer at `clock`; return dead letters.

        `clock` None: this partition's event clock (as `process` times gaps in event mode).
        """
        if clock is None:
            clock = self.meta.max_event_time
        letters: list[DeadLetter] = []
        for dossier_id, since in list(self.stuck.items()):
            if clock - since < timeout_s:
                continue
            record = self.records[dossier_id]
            before_counts = record.counts()
            before = self._facts_before(record, figures)
            result = self.lifecycle.release(record.state, figures.facts)
            letters += self._settle(record, result, None, b"", record.last_offset, figures, before)
            record.waiting_since = None  # a later gap of the same dossier starts afresh
            self._settled(record, record.last_offset, before_counts, clock)
        return letters

    def feed_issues(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per agency: its stuck dossiers (gap open since) and flagged ones (flags)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for dossier_id, since in self.stuck.items():
            agency = agency_of(self.records[dossier_id].state)
            out.setdefault(agency, {"stuck": {}, "flagged": {}})["stuck"][dossier_id] = since
        for dossier_id, flags in self.flagged.items():
            agency = agency_of(self.records[dossier_id].state)
            entry = out.setdefault(agency, {"stuck": {}, "flagged": {}})
            entry["flagged"][dossier_id] = ",".join(sorted(flags))
        return out

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
            "stuck_dossiers": len(self.stuck),
            "flagged_dossiers": len(self.flagged),
        }

    # -- changelog ----------------------------------------------------------------------
    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Changelog records of what changed since the last call, meta last.

        Retired groups come before their dossiers' tombstones (see
        `stream_apps.retirement`): a batch cut short keeps a prefix of it.
        """
        out = self.retirement.take_changes() if self.retirement is not None else []
        out += [(dossier.encode(), None) for dossier in self.gone]
        self.gone.clear()
        out += [(dossier.encode(), encode_record(self.records[dossier])) for dossier in self.dirty]
        self.dirty.clear()
        out += self.overdue.take_changes()
        if self.meta_dirty:
            out.append((META_KEY, self.meta.encode()))
            self.meta_dirty = False
        return out

    # -- retirement ---------------------------------------------------------------------
    def retire(self, committed: int, figures: FiguresPort) -> int:
        """Retire the closed dossiers old enough at this partition's event clock whose last
        message is below `committed` (the committed input offset); return how many."""
        retirement = self.retirement
        clock = self.meta.max_event_time
        if retirement is None or not retirement.sweep_due(clock, committed):
            return 0
        records = self.records
        gone = retirement.sweep(clock, records, committed, lambda r: self._facts_before(r, figures))
        for dossier_id in gone:
            del records[dossier_id]
            self.dirty.discard(dossier_id)
        self.gone.update(gone)
        return len(gone)

    def retire_due(self, committed: int) -> bool:
        """True when `retire` would sweep (see `Retirement.sweep_due`)."""
        retirement = self.retirement
        return retirement is not None and retirement.sweep_due(self.meta.max_event_time, committed)

    def dossiers(self) -> tuple[int, int]:
        """(held, retired) dossiers."""
        retired = self.retirement.counts()[3] if self.retirement is not None else 0
        return len(self.records), retired

    def freeze_clock(self, t: int, figures: AlertFigures) -> None:
        """Live: the wall clock reached `t`; freeze the alert inputs of the hours that ended."""
        if t >= self.overdue.next_boundary:
            self.overdue.freeze(t, figures)

    def restore(self, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Rebuild from changelog records in log order (later records win)."""
        self.restore_records(changelog)
        self.end_restore()

    def restore_records(self, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Read one run of changelog records (in log order) during a restore."""
        records = self.records
        retirement = self.retirement
        for key, value in changelog:
            if self.overdue.restore(key, value):
                continue
            if key[:1] == b"\x00" and retirement is not None and retirement.restore(key, value):
                continue
            if value is None:  # a tombstone: the record is gone
                if key != META_KEY:
                    records.pop(key.decode(), None)
                continue
            if key == META_KEY:
                self.meta = PartitionMeta.decode(value)
            else:
                record = decode_record(value)
                records[record.state.dossier_id] = record

    def end_restore(self) -> None:
        """After the last changelog record: the totals and the stuck and flagged feeds."""
        totals = [0, 0, 0, 0]
        if self.retirement is not None:
            leftovers = self.retirement.end_restore(self.records)
            for dossier_id in leftovers:  # retired, but the tombstone was not written
                del self.records[dossier_id]
            self.gone.update(leftovers)
            totals[:3] = self.retirement.counts()[:3]
        for record in self.records.values():
            for i, n in enumerate(record.counts()):
                totals[i] += n
            if record.state.pending or record.state.flags:
                self._track(record, record.waiting_since or 0.0)
        self._totals = totals

    def restored_clock(self, now: float) -> int | None:
        """A clock the restored figures will not be read before: the partition's latest
        event time on the event clock, else the wall clock `now`; None with no event."""
        if self.clock_mode == "event":
            latest = self.meta.max_event_time
            return int(latest) if latest > 0 else None
        return int(now)

    def seeding(
        self, figures: RebuildPort, *, now: int | None, keep_hours_from: int | None, step: int
    ) -> Iterator[int]:
        """Rebuild `figures` from every dossier, `step` dossiers at a time; yields the
        number done after each step, so that a caller can let other work run between.

        Linear in the dossiers: with `now` the figures keep only the recent instants in
        their fine-grained buckets (`FigureBook.rebuild`).
        """
        figures.begin_rebuild(now=now, keep_hours_from=keep_hours_from)
        if self.retirement is not None:
            for rows in self.retirement.rows():
                figures.add_retired(rows)
        done = 0
        for record in self.records.values():
            facts = figures.facts(record.state)
            figures.add(facts)
            if record.state.status not in FINAL:
                record.facts = facts
            done += 1
            if done % step == 0:
                yield done
        figures.end_rebuild()
        yield done

    def states(self) -> Iterator[DossierState]:
        for record in self.records.values():
            yield record.state
