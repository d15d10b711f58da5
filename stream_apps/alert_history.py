"""What the alert rules read, frozen per input partition as its clock passes each hour.

The figures (`domain.figures`) describe the dossiers as they are now. A dossier
transferred to another agency a week after it fell due moves its `became_overdue` to the
new agency, in the old hour; a gauge read at a round's clock counts whatever the other
partitions have read by then. Rules judged on such figures would give different alerts
depending on how far each partition had been read: a replay would not give the alerts
the live run gave. So each input partition keeps what the rules need, taken when its
clock reaches the end of an hour (in event time, at the first event at or after it,
before that event applies; live, by the wall clock), and never changed afterwards:

- per scope, the dossiers that became overdue in each hour (`overdue_spike`), kept
  about 33 days and written to the changelog (one record per scope, one for the span);
- per agency, `near_due_now` at each hour's end (`near_due_backlog`), and for the target
  agencies, at each Vietnam midnight, the dossiers received and received online over the
  target window up to it (`online_target`); kept as long, one changelog record per hour
  end (a tombstone when it is dropped), and sent to the figures stage once, or all
  again after a restart or a rebalance (the rules skip what they have judged).

Everything here is a function of the partition's events before the hour's end, in the
partition's order: the same live and in every replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

HOUR = 3600
DAY = 86400
VN_MIDNIGHT = 17 * HOUR  # 00:00 in Vietnam (UTC+7) is 17:00 UTC
KEEP_S = 33 * DAY  # the spike rule looks back 21 working days: about 31 calendar days
KEY_PREFIX = b"\x00overdue|"
SPAN_KEY = b"\x00overdue-span"
SAMPLE_PREFIX = b"\x00samples|"


class AlertFigures(Protocol):
    """What a partition's figures (`domain.figures.FigureBook`) tell the history."""

    def overdue_between(self, h0: int, h1: int) -> Mapping[str, Mapping[int, int]]: ...
    def near_due_at(self, scopes: Iterable[str], t: int) -> Mapping[str, int]: ...
    def received_in(self, scope: str, window: str, t: int) -> tuple[int, int]: ...
    def scopes(self) -> list[str]: ...
    def keep_hours_from(self, t: int) -> None: ...


@dataclass
class AlertHistory:
    """One partition's frozen alert inputs."""

    target_scopes: frozenset[str] = frozenset()  # agencies judged on the online target
    target_window: str = "qtd"
    start: int = 0  # first hour the overdue hours cover (epoch seconds); 0: no event yet
    upto: int = 0  # hours before this are frozen
    hours: dict[str, dict[int, int]] = field(default_factory=dict)
    # hour end -> scope -> [near_due_now] or [near_due_now, received, online]
    samples: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)  # scopes to write to the changelog
    unpublished: set[str] = field(default_factory=set)  # scopes to send as partials
    span_dirty: bool = False
    samples_dirty: set[int] = field(default_factory=set)  # hour ends to write (or delete)
    samples_fresh: set[int] = field(default_factory=set)  # hour ends not sent yet

    @property
    def next_boundary(self) -> int:
        """The clock at which the next freeze is due."""
        return self.upto + HOUR if self.upto else 0

    def freeze(self, t: int, figures: AlertFigures) -> None:
        """The partition's clock reached `t`: freeze every hour that ended by then."""
        end = t // HOUR * HOUR
        if not self.upto:
            self.start = self.upto = end
            self.span_dirty = True
            figures.keep_hours_from(end)
            return
        if end <= self.upto:
            return
        for scope, counts in figures.overdue_between(self.upto, end).items():
            kept = self.hours.setdefault(scope, {})
            kept.update((h, n) for h, n in counts.items() if n)
            self._changed(scope)
        agencies = [s for s in figures.scopes() if s.startswith("agency:")]
        for g in range(self.upto + HOUR, end + 1, HOUR):
            taken = {s: [n] for s, n in figures.near_due_at(agencies, g).items()}
            if g % DAY == VN_MIDNIGHT:
                for scope in self.target_scopes:
                    received, online = figures.received_in(scope, self.target_window, g - 1)
                    taken.setdefault(scope, [0]).extend((received, online))
            self.samples[g] = taken
            self.samples_dirty.add(g)
            self.samples_fresh.add(g)
        previous_day = self.upto // DAY
        self.upto = end
        self.span_dirty = True
        figures.keep_hours_from(end)
        if end // DAY != previous_day:
            self._forget_before(end - KEEP_S)

    def _forget_before(self, floor: int) -> None:
        for g in [g for g in self.samples if g < floor]:
            del self.samples[g]
            self.samples_dirty.add(g)
            self.samples_fresh.discard(g)
        if self.start >= floor:
            return
        self.start = floor
        for scope, kept in self.hours.items():
            old = [h for h in kept if h < floor]
            for h in old:
                del kept[h]
            if old:
                self._changed(scope)

    def _changed(self, scope: str) -> None:
        self.dirty.add(scope)
        self.unpublished.add(scope)

    # -- changelog --------------------------------------------------------------------
    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """Changelog records of what changed; None deletes a dropped sample."""
        out: list[tuple[bytes, bytes | None]] = [
            (KEY_PREFIX + scope.encode(), orjson.dumps(_text_keys(self.hours.get(scope, {}))))
            for scope in sorted(self.dirty)
        ]
        self.dirty.clear()
        for g in sorted(self.samples_dirty):
            taken = self.samples.get(g)
            out.append(
                (SAMPLE_PREFIX + str(g).encode(), None if taken is None else orjson.dumps(taken))
            )
        self.samples_dirty.clear()
        if self.span_dirty:
            out.append((SPAN_KEY, orjson.dumps({"s": self.start, "u": self.upto})))
            self.span_dirty = False
        return out

    def restore(self, key: bytes, value: bytes | None) -> bool:
        """Take one changelog record if it is ours (None: deleted); True if it was."""
        if key.startswith(SAMPLE_PREFIX):
            g = int(key.removeprefix(SAMPLE_PREFIX))
            if value is None:
                self.samples.pop(g, None)
                self.samples_fresh.discard(g)
            else:
                self.samples[g] = {s: list(v) for s, v in orjson.loads(value).items()}
                self.samples_fresh.add(g)
            return True
        if value is None:
            return False
        if key == SPAN_KEY:
            doc = orjson.loads(value)
            self.start, self.upto = int(doc["s"]), int(doc["u"])
            return True
        if key.startswith(KEY_PREFIX):
            scope = key.removeprefix(KEY_PREFIX).decode()
            self.hours[scope] = {int(h): int(n) for h, n in orjson.loads(value).items()}
            self.unpublished.add(scope)
            return True
        return False

    # -- partials ---------------------------------------------------------------------
    def partial(self, scope: str) -> dict[str, object]:
        """The partial of one scope: its frozen hours since `from`."""
        kept = {h: n for h, n in self.hours.get(scope, {}).items() if h >= self.start}
        return {"from": self.start, "h": _text_keys(kept)}

    def take_unpublished(self, *, everything: bool = False) -> list[str]:
        scopes = sorted(self.hours) if everything else sorted(self.unpublished)
        self.unpublished.clear()
        return scopes

    def take_samples(self, *, everything: bool = False) -> dict[str, dict[str, list[int]]]:
        """The samples not sent yet (or all kept), per scope: hour end (text) -> values."""
        out: dict[str, dict[str, list[int]]] = {}
        for g in sorted(self.samples if everything else self.samples_fresh):
            for scope, values in self.samples[g].items():
                out.setdefault(scope, {})[str(g)] = values
        self.samples_fresh.clear()
        return out


def _text_keys(hours: Mapping[int, int]) -> dict[str, int]:
    return {str(h): n for h, n in sorted(hours.items())}
