"""Partial figures: one input partition's share of a scope, and their exact merge.

Each worker computes, for the partitions it owns, the counts every scope gets from that
partition's dossiers (`snapshot_counts`, `series_buckets`) and publishes them keyed by
scope. Counts add across partitions; ratios do not, so they are derived only after the
merge (`merged_snapshot`). A partial is an absolute value per (scope, partition): the
newest replaces the older, so publishing one twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from domain.figures import (
    COUNT_METRICS,
    GAUGES,
    WINDOWS,
    ScopeSeries,
    ScopeSnapshot,
    ratio_text,
)

SERIES_PREFIX = "series|"  # partial keys of time series: "series|{scope}"
FEED_PREFIX = "feed|"  # partial keys of an agency's stuck and flagged dossiers: "feed|{code}"
COUNTS_KEY = "_counts"  # partial key of the worker's event counts
COUNT_FIELDS = (*GAUGES, *(f"{w}.{m}" for w in WINDOWS for m in COUNT_METRICS))


def snapshot_counts(snapshot: ScopeSnapshot) -> dict[str, int]:
    """The additive fields of a snapshot (gauges and windowed counts)."""
    out = {g: getattr(snapshot, g) for g in GAUGES}
    for w, fig in snapshot.windows.items():
        for m in COUNT_METRICS:
            out[f"{w}.{m}"] = getattr(fig, m)
    return out


def series_buckets(series: ScopeSeries) -> dict[str, dict[str, int]]:
    """`{"hourly.{metric}": {"<bucket start>": count}, "daily.{metric}": ...}`, no zeros."""
    out: dict[str, dict[str, int]] = {}
    for grain, table in (("hourly", series.hourly), ("daily", series.daily)):
        for m in COUNT_METRICS:
            buckets = table.get(m, {})
            out[f"{grain}.{m}"] = {str(k): v for k, v in buckets.items() if v}
    return out


ALERT_HOURS = "alert.hourly.became_overdue"  # series partial: ~32 days of hours, for alerts
ALERT_COVERS = "alert.covers_from"  # ... and the first instant those hours cover


def alert_hours(hours: Mapping[int, int], covers_from: int) -> dict[str, Any]:
    """The series partial's alert fields: the kept hourly `became_overdue` counts."""
    return {
        ALERT_HOURS: {str(k): v for k, v in hours.items() if v and k >= covers_from},
        ALERT_COVERS: covers_from,
    }


def merged_alert_hours(parts: Iterable[Mapping[str, Any]]) -> tuple[dict[int, int], int] | None:
    """A scope's hourly `became_overdue` counts summed over its partitions, and the first
    instant every one of them covers (the latest of their starts: a partition whose
    partial is older may still hold hours the others have dropped, and those must not
    count as zeros). None while no partition sent them."""
    total: dict[int, int] = {}
    covers: list[int] = []
    for part in parts:
        if ALERT_COVERS not in part:
            continue
        covers.append(int(part[ALERT_COVERS]))
        for bucket, value in part.get(ALERT_HOURS, {}).items():
            key = int(bucket)
            total[key] = total.get(key, 0) + int(value)
    if not covers:
        return None
    start = max(covers)
    return {k: v for k, v in sorted(total.items()) if k >= start}, start


def sum_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total.get(name, 0) + value
    return total


def _ratio(num: int, den: int) -> str:
    return ratio_text(Fraction(num, den) if den else None)


def merged_snapshot(parts: Iterable[Mapping[str, int]]) -> dict[str, str]:
    """The Redis hash of a scope from its partitions' counts: sums, then ratios."""
    c = sum_counts(parts)
    out = {name: str(c.get(name, 0)) for name in COUNT_FIELDS}
    for w in WINDOWS:
        full, partial = (
            c.get(f"{w}.received_online_full", 0),
            c.get(f"{w}.received_online_partial", 0),
        )
        total = c.get(f"{w}.received_total", 0)
        on_time, late = c.get(f"{w}.resolved_on_time", 0), c.get(f"{w}.resolved_late", 0)
        out[f"{w}.online_ratio"] = _ratio(full + partial, total)
        out[f"{w}.full_online_ratio"] = _ratio(full, total)
        out[f"{w}.on_time_rate"] = _ratio(
            on_time + c.get("not_yet_due_now", 0), on_time + late + c.get("open_now", 0)
        )
    return out


def merged_series(parts: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, str]:
    """The Redis hash of a scope's series: per field, bucket counts summed, as JSON."""
    total: dict[str, dict[int, int]] = {}
    for part in parts:
        for name, buckets in part.items():
            if name.startswith("alert."):
                continue
            into = total.setdefault(name, {})
            for bucket, value in buckets.items():
                key = int(bucket)
                into[key] = into.get(key, 0) + value
    out: dict[str, str] = {}
    for grain in ("hourly", "daily"):
        for m in COUNT_METRICS:
            summed = total.get(f"{grain}.{m}", {})
            obj = {str(k): summed[k] for k in sorted(summed) if summed[k]}
            out[f"{grain}.{m}"] = orjson.dumps(obj).decode()
    return out


def merged_feed(parts: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """An agency's stuck and flagged dossiers from every partition (dossiers are disjoint)."""
    stuck: dict[str, Any] = {}
    flagged: dict[str, Any] = {}
    for part in parts:
        stuck.update(part.get("stuck", {}))
        flagged.update(part.get("flagged", {}))
    return {"stuck": dict(sorted(stuck.items())), "flagged": dict(sorted(flagged.items()))}


def home_partition(key: bytes, partitions: int) -> int:
    """The partials partition a key lives in (the Kafka producer's default partitioner)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


BUNDLE_MAX_BYTES = 512 * 1024  # a round's message to one partials partition is cut below this


@dataclass(frozen=True)
class Round:
    """One dossier stage's changed partials at one input position of all its partitions.

    `positions` gives, per input partition of the stage, the next input offset: the
    partials cover exactly the messages before it, all at `clock`. `instance` tells one
    dossier stage from another (a worker's restart starts a new one); `seq` counts the
    rounds of an instance. `parts` are (input partition, key, body).
    """

    instance: str
    seq: int
    clock: int
    positions: dict[int, int]
    parts: list[tuple[int, str, Any]]
    series: bool = False  # the time series of every scope changed since the last such round
    low: int | None = None  # the clock every partition of the stage has reached (<= clock)


def round_messages(rnd: Round, partitions: int) -> list[tuple[int, bytes]]:
    """The round as (partials partition, value) messages: at least one to every partition.

    Each key goes to its home partition; every partition gets a message even when none of
    the round's keys lives there, so a figures stage knows each round is complete once
    every partition it owns has delivered its share (`chunks` says how many messages
    each partition gets). Large shares are cut into several messages.
    """
    shares: list[list[list[tuple[int, str, Any]]]] = [[[]] for _ in range(partitions)]
    sizes = [0] * partitions
    for p, key, body in rnd.parts:
        home = home_partition(key.encode(), partitions)
        size = len(orjson.dumps(body)) + len(key) + 12
        if sizes[home] and sizes[home] + size > BUNDLE_MAX_BYTES:
            shares[home].append([])
            sizes[home] = 0
        shares[home][-1].append((p, key, body))
        sizes[home] += size
    head = {
        "i": rnd.instance,
        "r": rnd.seq,
        "t": rnd.clock,
        "pos": {str(p): pos for p, pos in sorted(rnd.positions.items())},
        "chunks": [len(share) for share in shares],
        "s": int(rnd.series),
        "lw": rnd.clock if rnd.low is None else rnd.low,
    }
    return [
        (home, orjson.dumps({**head, "parts": part}))
        for home, share in enumerate(shares)
        for part in share
    ]


@dataclass
class _Staged:
    """A round being received: its messages so far, per partials partition."""

    chunks: list[int]
    clock: int
    positions: dict[int, int]
    series: bool = False
    low: int = 0
    got: dict[int, int] = field(default_factory=dict)
    parts: list[tuple[int, str, Any, int]] = field(default_factory=list)  # p, key, body, home


class PartialMerger:
    """What one worker holds of the partials keyed to its partials partitions.

    Rounds (`round_messages`) are applied whole: a round's partials are kept aside
    until every partials partition this worker owns (`owned`, set by `assign`) has
    delivered its share, then all of them replace the older partials at once. So the
    merged figures are always those of whole rounds: each dossier stage's partitions at
    one input position (`positions`) and one clock, never half of a round.
    `merged_*` give the Redis hashes.
    """

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}  # key -> input partition -> {t, b}
        self.home: dict[str, int] = {}  # key -> partials partition that holds it
        self.dirty: set[str] = set()
        self.owned: set[int] = set()
        self.positions: dict[int, int] = {}  # input partition -> position of its last round
        self.clocks: dict[int, int] = {}  # input partition -> clock of its last round
        self.series_clocks: dict[int, int] = {}  # ... of its last round with the series
        self.series_lows: dict[int, int] = {}  # ... the low clock of its last series round
        self.lows: dict[int, int] = {}  # ... the low clock of its last round
        self._staged: dict[str, dict[int, _Staged]] = {}  # instance -> seq -> round

    def accept_round(self, raw: bytes, home: int) -> bool:
        """Take one round message from partials partition `home`; True if a round applied."""
        doc = orjson.loads(raw)
        instance, seq = str(doc["i"]), int(doc["r"])
        staged = self._staged.setdefault(instance, {})
        rnd = staged.get(seq)
        if rnd is None:
            positions = {int(p): int(pos) for p, pos in doc["pos"].items()}
            rnd = staged[seq] = _Staged(
                list(doc["chunks"]),
                int(doc["t"]),
                positions,
                bool(doc.get("s", 0)),
                int(doc.get("lw", doc["t"])),
            )
        rnd.got[home] = rnd.got.get(home, 0) + 1
        rnd.parts.extend((int(p), str(key), body, home) for p, key, body in doc["parts"])
        applied: set[int] = set()  # input partitions of the rounds applied now
        # Each partials partition is read in order, so an instance's rounds complete in
        # order.
        while staged:
            first = min(staged)
            missing = self._missing(staged[first])
            if missing:
                later = [r for s, r in staged.items() if s != first]
                if not all(any(r.got.get(h, 0) for r in later) for h in missing):
                    break
                # A later round's share arrived where this one's is missing: that share
                # was lost (a partition moved mid-round). Drop the round; the next full
                # publish replaces whatever it carried.
                del staged[first]
                continue
            rnd = staged.pop(first)
            self._apply(rnd)
            applied |= set(rnd.positions)
        if applied:
            self._forget_other_stages(instance, applied)
        return bool(applied)

    def _missing(self, rnd: _Staged) -> list[int]:
        """The owned partials partitions whose share of the round has not all arrived."""
        return [
            home
            for home, n in enumerate(rnd.chunks)
            if home in self.owned and rnd.got.get(home, 0) < n
        ]

    def _apply(self, rnd: _Staged) -> None:
        for p, key, body, home in rnd.parts:
            self.docs.setdefault(key, {})[str(p)] = {"t": rnd.clock, "b": body}
            self.home[key] = home
            self.dirty.add(key)
        self.positions.update(rnd.positions)
        for p in rnd.positions:
            self.clocks[p] = rnd.clock
            self.lows[p] = rnd.low
            if rnd.series:
                self.series_clocks[p] = rnd.clock
                self.series_lows[p] = rnd.low

    def _forget_other_stages(self, instance: str, partitions: set[int]) -> None:
        """Drop half-received rounds of other stages for partitions this one now holds
        (a stage that stopped mid-round never sends the rest)."""
        for other in [i for i in self._staged if i != instance]:
            rounds = self._staged[other]
            for seq in [s for s, r in rounds.items() if set(r.positions) & partitions]:
                del rounds[seq]
            if not rounds:
                del self._staged[other]

    def assign(self, owned: set[int]) -> None:
        """The partials partitions owned now: keys of the others go, rounds start over."""
        self.drop_partitions({h for h in self.home.values() if h not in owned})
        self.owned = set(owned)
        self._staged = {}

    def drop_partitions(self, homes: set[int]) -> None:
        for key in [k for k, h in self.home.items() if h in homes]:
            self.docs.pop(key, None)
            self.home.pop(key, None)
            self.dirty.discard(key)

    def take_dirty(self, *, everything: bool = False) -> list[str]:
        keys = sorted(self.docs) if everything else sorted(self.dirty)
        self.dirty.clear()
        return keys

    def bodies(self, key: str) -> list[Any]:
        return [part["b"] for part in self.docs.get(key, {}).values()]

    def figures_clock(self) -> int | None:
        """The clock every merged figure is complete as of: the oldest input partition's
        last round (a scope a round does not carry did not change up to its clock)."""
        return min(self.clocks.values()) if self.clocks else None

    def settled_clock(self, skew_s: int = 3600) -> int | None:
        """`figures_clock`, when no input partition's last round was more than `skew_s`
        behind its own clock; else None. In event time the partitions of a replay run
        apart, and the gauges of one that lags count dossiers as overdue or near due
        whose next events it has not read yet."""
        t = self.figures_clock()
        if t is None or any(self.clocks[p] - low > skew_s for p, low in self.lows.items()):
            return None
        return t

    def series_clock(self) -> int | None:
        """The same for the time series, which only some rounds carry."""
        if not self.clocks or set(self.series_clocks) != set(self.clocks):
            return None
        return min(self.series_clocks.values())

    def settled_hour(self) -> int | None:
        """The start of the hour before which the hourly series are final: every input
        partition's time series are as of a later clock, and every partition's events
        have reached it (in event time a partition that lags could still add or remove
        a dossier that fell due: it is not judged yet)."""
        if self.series_clock() is None:
            return None
        return min(self.series_lows.values()) // 3600 * 3600

    def clock(self, key: str) -> int:
        return max((part["t"] for part in self.docs.get(key, {}).values()), default=0)
