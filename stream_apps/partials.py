"""Partial figures: one input partition's share of a scope, and their exact merge.

Each worker computes, for the partitions it owns, the counts every scope gets from that
partition's dossiers (`FigureBook.counts`, `series_buckets`) and publishes them keyed by
scope. Counts add across partitions; ratios do not, so they are derived only after the
merge (`merged_snapshot`). A partial is an absolute value per (scope, partition): the
newest replaces the older, so publishing one twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from domain.figures import (
    COUNT_FIELDS,
    COUNT_METRICS,
    WINDOWS,
    ScopeSeries,
    quotient_text,
)

SERIES_PREFIX = "series|"  # partial keys of time series: "series|{scope}"
FEED_PREFIX = "feed|"  # partial keys of an agency's stuck and flagged dossiers: "feed|{code}"
COUNTS_KEY = "_counts"  # partial key of the worker's event counts


def series_buckets(series: ScopeSeries) -> dict[str, dict[str, int]]:
    """`{"hourly.{metric}": {"<bucket start>": count}, "daily.{metric}": ...}`, no zeros."""
    out: dict[str, dict[str, int]] = {}
    for grain, table in (("hourly", series.hourly), ("daily", series.daily)):
        for m in COUNT_METRICS:
            buckets = table.get(m, {})
            out[f"{grain}.{m}"] = {str(k): v for k, v in buckets.items() if v}
    return out


OVERDUE_PREFIX = "overdue|"  # partial keys of the spike alert's frozen hours: "overdue|{scope}"
# Partial keys of an agency's gauge samples at hour ends: "samples|{scope}". Unlike every
# other partial, each carries only the samples taken since the stage's last round, and the
# merger keeps them until the alert rules have judged them (`PartialMerger.samples`).
SAMPLES_PREFIX = "samples|"


def merged_overdue_hours(parts: Iterable[Mapping[str, Any]]) -> tuple[dict[int, int], int] | None:
    """A scope's frozen hourly `became_overdue` counts summed over its partitions, and the
    first hour every one of them covers (the latest of their starts: before it, some
    partition's hours are unknown, not zero). None while no partition sent any."""
    total: dict[int, int] = {}
    starts: list[int] = []
    for part in parts:
        starts.append(int(part["from"]))
        for bucket, value in part["h"].items():
            key = int(bucket)
            total[key] = total.get(key, 0) + int(value)
    if not starts:
        return None
    start = max(starts)
    return {k: v for k, v in sorted(total.items()) if k >= start}, start


def sum_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total.get(name, 0) + value
    return total


# Per window, the names its ratios are read from and written to (made once, not per merge).
_RATIO_NAMES = tuple(
    tuple(
        f"{w}.{m}"
        for m in (
            "received_online_full",
            "received_online_partial",
            "received_total",
            "resolved_on_time",
            "resolved_late",
            "online_ratio",
            "full_online_ratio",
            "on_time_rate",
        )
    )
    for w in WINDOWS
)


def merged_snapshot(parts: Iterable[Mapping[str, int]]) -> dict[str, str]:
    """The Redis hash of a scope from its partitions' counts: sums, then ratios."""
    c = sum_counts(parts)
    out = {name: str(c.get(name, 0)) for name in COUNT_FIELDS}
    not_yet_due, open_now = c.get("not_yet_due_now", 0), c.get("open_now", 0)
    for full_n, partial_n, total_n, on_time_n, late_n, online, full_online, rate in _RATIO_NAMES:
        full, partial, total = c.get(full_n, 0), c.get(partial_n, 0), c.get(total_n, 0)
        on_time, late = c.get(on_time_n, 0), c.get(late_n, 0)
        out[online] = quotient_text(full + partial, total)
        out[full_online] = quotient_text(full, total)
        out[rate] = quotient_text(on_time + not_yet_due, on_time + late + open_now)
    return out


def merged_series(parts: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, str]:
    """The Redis hash of a scope's series: per field, bucket counts summed, as JSON."""
    total: dict[str, dict[int, int]] = {}
    for part in parts:
        for name, buckets in part.items():
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


_HOMES: dict[tuple[str, int], int] = {}  # (key, partitions) -> home: a few thousand keys


def home_of(key: str, partitions: int) -> int:
    """`home_partition` of a partial key, each worked out once (murmur2 is Python)."""
    home = _HOMES.get((key, partitions))
    if home is None:
        home = _HOMES[(key, partitions)] = home_partition(key.encode(), partitions)
    return home


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
    low: int | None = None  # hours before this are frozen in every partition of the stage
    group: RoundGroup | None = None  # cut jointly with the worker's other stage processes


@dataclass(frozen=True)
class RoundGroup:
    """Rounds cut together, at one clock, by the `size` stage processes of one worker.

    A worker with several stage processes (`stream_apps.joint_rounds`) has each of them
    cut its round `number` at the same clock; the figures stage applies the `size`
    rounds of a group together, so every snapshot is at one clock. `coordinator` names
    the worker's first process (a restart starts a new one); numbers grow.
    """

    coordinator: str
    number: int
    size: int


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
        home = home_of(key, partitions)
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
        "lw": 0 if rnd.low is None else rnd.low,
    }
    if rnd.group is not None:
        head["g"] = [rnd.group.coordinator, rnd.group.number, rnd.group.size]
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
    low: int = 0
    group: RoundGroup | None = None
    got: dict[int, int] = field(default_factory=dict)
    parts: list[tuple[int, str, Any, int]] = field(default_factory=list)  # p, key, body, home


def _whole(members: Mapping[str, _Staged | None]) -> bool:
    """Whether every round of a group has been received whole (or superseded: None)."""
    sizes = [rnd.group.size for rnd in members.values() if rnd is not None and rnd.group]
    return bool(sizes) and len(members) >= max(sizes)


class PartialMerger:
    """What one worker holds of the partials keyed to its partials partitions.

    Rounds (`round_messages`) are applied whole: a round's partials are kept aside
    until every partials partition this worker owns (`owned`, set by `assign`) has
    delivered its share, then all of them replace the older partials at once. So the
    merged figures are always those of whole rounds: each dossier stage's partitions at
    one input position (`positions`) and one clock, never half of a round.

    The rounds of a group (`RoundGroup`: a worker's stage processes cutting together at
    one clock) are kept aside until all of them are whole, then applied together: the
    figures of all that worker's partitions at one clock. A group that cannot be whole
    (a stage process died, or a share was lost) is applied, as far as it came, when a
    later group of the same worker is whole, so nothing waits forever.
    `merged_*` give the Redis hashes.
    """

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}  # key -> input partition -> {t, b}
        self.home: dict[str, int] = {}  # key -> partials partition that holds it
        self.dirty: set[str] = set()
        self.owned: set[int] = set()
        self.positions: dict[int, int] = {}  # input partition -> position of its last round
        # input partition -> end of the alert hours frozen as of its last round
        self.lows: dict[int, int] = {}
        self.overdue_dirty: set[str] = set()  # "overdue|" keys changed since the alerts read
        # "samples|{scope}" -> hour end -> input partition -> values, until judged
        self.samples: dict[str, dict[int, dict[int, list[int]]]] = {}
        self._staged: dict[str, dict[int, _Staged]] = {}  # instance -> seq -> round
        # Whole rounds of groups not whole yet: coordinator -> number -> instance -> round
        # (None: superseded by a later stage's round of its partitions, counted as whole)
        self._groups: dict[str, dict[int, dict[str, _Staged | None]]] = {}

    def accept_round(self, raw: bytes, home: int) -> bool:
        """Take one round message from partials partition `home`; True if a round applied."""
        doc = orjson.loads(raw)
        instance, seq = str(doc["i"]), int(doc["r"])
        staged = self._staged.setdefault(instance, {})
        rnd = staged.get(seq)
        if rnd is None:
            positions = {int(p): int(pos) for p, pos in doc["pos"].items()}
            group = doc.get("g")
            rnd = staged[seq] = _Staged(
                list(doc["chunks"]),
                int(doc["t"]),
                positions,
                int(doc.get("lw", 0)),
                None if group is None else RoundGroup(str(group[0]), int(group[1]), int(group[2])),
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
            if rnd.group is None:
                self._apply(rnd)
                applied |= set(rnd.positions)
                self._forget_other_stages(instance, set(rnd.positions))
            else:
                groups = self._groups.setdefault(rnd.group.coordinator, {})
                groups.setdefault(rnd.group.number, {})[instance] = rnd
        if not staged:
            self._staged.pop(instance, None)
        # A group is whole when its last round is, or when a round just applied superseded
        # the one it waited for.
        for coordinator in list(self._groups):
            applied |= self._settle(coordinator)
        return bool(applied)

    def _settle(self, coordinator: str) -> set[int]:
        """Apply the groups of `coordinator` up to its latest whole one, in order; return
        the input partitions of the rounds applied."""
        groups = self._groups.get(coordinator, {})
        whole = [n for n, members in groups.items() if _whole(members)]
        if not whole:
            return set()
        applied: set[int] = set()
        for number in sorted(n for n in groups if n <= max(whole)):
            for instance, rnd in sorted(groups.pop(number).items()):
                if rnd is None:
                    continue
                self._apply(rnd)
                applied |= set(rnd.positions)
                self._forget_other_stages(instance, set(rnd.positions))
        if not groups:
            self._groups.pop(coordinator, None)
        return applied

    def _missing(self, rnd: _Staged) -> list[int]:
        """The owned partials partitions whose share of the round has not all arrived."""
        return [
            home
            for home, n in enumerate(rnd.chunks)
            if home in self.owned and rnd.got.get(home, 0) < n
        ]

    def _apply(self, rnd: _Staged) -> None:
        for p, key, body, home in rnd.parts:
            if key.startswith(SAMPLES_PREFIX):
                kept = self.samples.setdefault(key, {})
                for g, values in body.items():
                    kept.setdefault(int(g), {})[p] = values
                self.home[key] = home
                continue
            self.docs.setdefault(key, {})[str(p)] = {"t": rnd.clock, "b": body}
            if key.startswith(OVERDUE_PREFIX):
                self.overdue_dirty.add(key)
            self.home[key] = home
            self.dirty.add(key)
        self.positions.update(rnd.positions)
        for p in rnd.positions:
            self.lows[p] = rnd.low

    def _forget_other_stages(self, instance: str, partitions: set[int]) -> None:
        """Drop rounds of other stages for partitions this one now holds, half-received (a
        stage that stopped mid-round never sends the rest) or waiting for their group:
        they are older than what was just applied."""
        for other in [i for i in self._staged if i != instance]:
            rounds = self._staged[other]
            for seq in [s for s, r in rounds.items() if set(r.positions) & partitions]:
                del rounds[seq]
            if not rounds:
                del self._staged[other]
        for groups in self._groups.values():
            for members in groups.values():
                for other, rnd in members.items():
                    if other != instance and rnd is not None and set(rnd.positions) & partitions:
                        members[other] = None

    def assign(self, owned: set[int]) -> None:
        """The partials partitions owned now: keys of the others go, rounds start over."""
        self.drop_partitions({h for h in self.home.values() if h not in owned})
        self.owned = set(owned)
        self._staged = {}
        self._groups = {}

    def drop_partitions(self, homes: set[int]) -> None:
        for key in [k for k, h in self.home.items() if h in homes]:
            self.docs.pop(key, None)
            self.samples.pop(key, None)
            self.home.pop(key, None)
            self.dirty.discard(key)

    def take_dirty(self, *, everything: bool = False) -> list[str]:
        keys = sorted(self.docs) if everything else sorted(self.dirty)
        self.dirty.clear()
        return keys

    def bodies(self, key: str) -> list[Any]:
        return [part["b"] for part in self.docs.get(key, {}).values()]

    def ready_samples(self, upto: int) -> dict[str, dict[int, list[int]]]:
        """Per scope, the samples of hour ends up to `upto` summed over input partitions
        (a partition with no sample of a scope holds none of its dossiers)."""
        out: dict[str, dict[int, list[int]]] = {}
        for key, kept in self.samples.items():
            for g in sorted(g for g in kept if g <= upto):
                total: list[int] = []
                for values in kept[g].values():
                    total += [0] * (len(values) - len(total))
                    for i, v in enumerate(values):
                        total[i] += v
                out.setdefault(key.removeprefix(SAMPLES_PREFIX), {})[g] = total
        return out

    def drop_samples(self, upto: int) -> None:
        """Forget the samples of hour ends up to `upto` (judged)."""
        for kept in self.samples.values():
            for g in [g for g in kept if g <= upto]:
                del kept[g]

    def settled_hour(self) -> int | None:
        """The end of the hours every input partition has frozen (`overdue|` and
        `samples|` partials): the alert rules judge what lies before it. None while a
        partition may still deliver older hours (its round said 0)."""
        lows = list(self.lows.values())
        if 0 in lows:
            return None  # a partition may still deliver older hours
        known = [low for low in lows if low > 0]
        return min(known) if known else None

    def clock(self, key: str) -> int:
        return max((part["t"] for part in self.docs.get(key, {}).values()), default=0)
