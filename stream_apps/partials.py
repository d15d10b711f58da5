"""Partial figures: one input partition's share of a scope, and their exact merge.

Each worker computes, for the partitions it owns, the counts every scope gets from that
partition's dossiers (`snapshot_counts`, `series_buckets`) and publishes them keyed by
scope. Counts add across partitions; ratios do not, so they are derived only after the
merge (`merged_snapshot`). A partial is an absolute value per (scope, partition): the
newest replaces the older, so publishing one twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import orjson

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


def encode_partial(partition: int, clock: int, body: Any) -> bytes:
    return orjson.dumps({"p": partition, "t": clock, "b": body})


class PartialMerger:
    """What one worker holds of the partials keyed to its partials partitions.

    `accept` records a partition's newest partial of a key and returns the key's whole
    document (for the Faust table); `merged` gives the Redis hash of a key.
    """

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.home: dict[str, int] = {}  # key -> partials partition that holds it
        self.dirty: set[str] = set()

    def accept(self, key: str, raw: bytes, home: int) -> bytes:
        # One key's partials arrive in the order they were sent (same key, same
        # partition), and a partition has one owner at a time: the newest one wins.
        doc = orjson.loads(raw)
        current = self.docs.setdefault(key, {})
        current[str(doc["p"])] = {"t": doc["t"], "b": doc["b"]}
        self.home[key] = home
        self.dirty.add(key)
        return orjson.dumps(current)

    def restore(self, key: str, raw: bytes, home: int) -> None:
        self.docs[key] = orjson.loads(raw)
        self.home[key] = home
        self.dirty.add(key)

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

    def clock(self, key: str) -> int:
        return max((part["t"] for part in self.docs.get(key, {}).values()), default=0)
