"""The Redis writer: absolute figures, one atomic transaction per flush, then a notice."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from schemas.alerts import AlertEvent
from schemas.serving import (
    UpdateNotice,
    alerts_channel,
    alerts_log_key,
    alerts_open_key,
    alerts_state_key,
    below_target_key,
    flagged_key,
    meta_key,
    rank_key,
    scope_key,
    series_key,
    stuck_key,
    updates_channel,
)


class RedisSink:
    """Writes merged figures to Redis.

    Values are absolute (never increments), so writing the same figures twice, or
    replaying after a crash, cannot double count. Each flush is one MULTI/EXEC
    transaction: a reader never sees half an update.

    Only the fields whose value differs from what this sink last wrote to the same hash
    are sent (replaying history, packing every field of every changed hash was a fifth
    of the worker's time). The memory of what was
    written holds only while Redis holds it: `forget()` empties it (the caller does so
    when Redis lost its keys, a write failed, the keys changed owner, and every full
    publish interval), and a failed transaction empties it too. After that, every hash is
    written whole again.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        *,
        level_of: Callable[[str], str | None],
        target: float,
        target_window: str,
        clock_mode: str,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.level_of = level_of
        self.target = target
        self.target_window = target_window
        self.clock_mode = clock_mode
        self.last_flush_s = 0.0
        self.last_success: float | None = None  # time.monotonic() of the last flush written
        self.flushes = 0
        self.fields_written = 0  # fields sent by the figures' HSETs, over all flushes
        self._written: dict[str, dict[str, str]] = {}  # key -> its fields as last written
        self.forgotten_at = time.monotonic()

    def forget(self) -> None:
        """Write every hash whole from now on, until it has been written once."""
        self._written.clear()
        self.forgotten_at = time.monotonic()

    def _changed(
        self, key: str, fields: Mapping[str, str], staged: dict[str, dict[str, str]]
    ) -> dict[str, str]:
        """The fields of `fields` that Redis does not hold already (all, if not known)."""
        before = self._written.get(key)
        changed = (
            dict(fields)
            if before is None
            else {f: v for f, v in fields.items() if before.get(f) != v}
        )
        if changed:
            staged[key] = changed
        return changed

    async def write(
        self,
        snapshots: Mapping[str, Mapping[str, str]],
        series: Mapping[str, Mapping[str, str]],
        counts: Mapping[str, int] | None,
        clock: int | None,
        feeds: Mapping[str, Mapping[str, Mapping[str, object]]] | None = None,
        positions: Mapping[int, int] | None = None,
    ) -> None:
        """One transaction: the figures, then meta with the counts and the watermark.

        `positions` (input partition -> next offset) is the input position the counts
        and every figure written so far cover: the watermark a reader checks.
        """
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat()
        p = self.prefix
        pipe = self.client.pipeline(transaction=True)
        staged: dict[str, dict[str, str]] = {}  # what this transaction writes, by key
        ratio_field = f"{self.target_window}.online_ratio"
        ranks = _Ranks()
        for scope, fields in snapshots.items():
            key = scope_key(p, scope)
            known = key in self._written
            changed = self._changed(key, fields, staged)
            if changed:
                pipe.hset(key, mapping=_mapping(changed))
            if not known or "overdue_now" in changed or ratio_field in changed:
                self._rank(ranks, scope, fields)
        ranks.stage(pipe, p)
        for scope, fields in series.items():
            key = series_key(p, scope)
            changed = self._changed(key, fields, staged)
            if changed:
                pipe.hset(key, mapping=_mapping(changed))
        for agency, feed in (feeds or {}).items():
            pipe.delete(stuck_key(p, agency), flagged_key(p, agency))
            stuck = {str(k): _iso(float(str(v))) for k, v in feed.get("stuck", {}).items()}
            if stuck:
                pipe.hset(stuck_key(p, agency), mapping=_mapping(stuck))
            flagged = {str(k): str(v) for k, v in feed.get("flagged", {}).items()}
            if flagged:
                pipe.hset(flagged_key(p, agency), mapping=_mapping(flagged))
        meta: dict[str, str | int] = {
            "updated_at": now,
            "clock_mode": self.clock_mode,
            "target_window": self.target_window,
        }
        if clock:
            meta["clock"] = datetime.fromtimestamp(clock, UTC).isoformat()
        if counts is not None:
            meta.update(counts)
        if positions is not None:
            meta["offsets"] = orjson.dumps(
                {str(k): v for k, v in sorted(positions.items())}
            ).decode()
        pipe.hset(meta_key(p), mapping=_mapping(meta))
        try:
            await pipe.execute()
        except BaseException:
            self.forget()  # it may or may not have been applied: nothing is known now
            raise
        for key, fields in staged.items():
            self._written.setdefault(key, {}).update(fields)
            self.fields_written += len(fields)
        scopes = sorted(set(snapshots) | set(series))
        if scopes:
            notice = UpdateNotice(
                updated_at=now, clock=meta.get("clock"), scopes=scopes
            ).model_dump_json()
            await self.client.publish(updates_channel(p), notice)
        self.last_flush_s = time.perf_counter() - started
        self.last_success = time.monotonic()
        self.flushes += 1

    def _rank(self, ranks: _Ranks, scope: str, fields: Mapping[str, str]) -> None:
        if not scope.startswith("agency:"):
            return
        code = scope.removeprefix("agency:")
        level = self.level_of(code)
        if level is None:
            return
        ranks.overdue.setdefault(level, {})[code] = int(fields.get("overdue_now", "0"))
        ratio = fields.get(f"{self.target_window}.online_ratio", "")
        if ratio:
            ranks.ratio.setdefault(level, {})[code] = float(ratio)
        else:
            ranks.unrated.setdefault(level, []).append(code)
        if level == "city":
            (ranks.below if below_target(ratio, self.target) else ranks.met).append(code)

    async def write_alerts(
        self,
        states: Mapping[str, str],
        events: Sequence[AlertEvent],
        *,
        open_now: Mapping[str, str] | None = None,
        log_maxlen: int = 10_000,
    ) -> None:
        """One transaction: the rules' new states and each alert event, stored once.

        Each event goes to the capped log stream, to the hash of open alerts (added when
        it opens, removed when it clears) and to the alerts channel. States and events
        commit together, so an event judged again after a crash (from the old states) was
        never stored: the log holds each alert once. `open_now` replaces the whole hash
        of open alerts (writing everything anew after Redis came back empty).
        """
        p = self.prefix
        pipe = self.client.pipeline(transaction=True)
        if states:
            pipe.hset(alerts_state_key(p), mapping=_mapping(states))
        if open_now is not None:
            pipe.delete(alerts_open_key(p))
            if open_now:
                pipe.hset(alerts_open_key(p), mapping=_mapping(open_now))
        for event in events:
            body = event.model_dump_json()
            pipe.xadd(
                alerts_log_key(p),
                {"id": event.id, "alert": body},
                maxlen=log_maxlen,
                approximate=True,
            )
            if event.open:
                pipe.hset(alerts_open_key(p), event.incident_id, body)
            else:
                pipe.hdel(alerts_open_key(p), event.incident_id)
            pipe.publish(alerts_channel(p), body)
        await pipe.execute()

    async def read_alerts(self) -> tuple[dict[str, str], dict[str, str]]:
        """The stored rule states and open alerts (JSON by key)."""
        p = self.prefix
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(alerts_state_key(p))
        pipe.hgetall(alerts_open_key(p))
        states, opened = await pipe.execute()
        return _decoded(states), _decoded(opened)

    async def is_empty(self) -> bool:
        """True when Redis lost our keys (restarted empty or flushed)."""
        return not await self.client.exists(meta_key(self.prefix))


@dataclass
class _Ranks:
    """The rank changes of one flush, gathered: one command per ranking, not per agency."""

    overdue: dict[str, dict[str, int]] = field(default_factory=dict)  # level -> code -> n
    ratio: dict[str, dict[str, float]] = field(default_factory=dict)  # level -> code -> ratio
    unrated: dict[str, list[str]] = field(default_factory=dict)  # level -> codes, no ratio
    below: list[str] = field(default_factory=list)  # departments below the target
    met: list[str] = field(default_factory=list)  # departments at or above it

    def stage(self, pipe: aioredis.client.Pipeline, prefix: str) -> None:
        for level, scores in self.overdue.items():
            pipe.zadd(rank_key(prefix, "overdue_now", level), scores)
        for level, ratios in self.ratio.items():
            pipe.zadd(rank_key(prefix, "online_ratio", level), ratios)
        for level, codes in self.unrated.items():
            pipe.zrem(rank_key(prefix, "online_ratio", level), *codes)
        if self.below:
            pipe.sadd(below_target_key(prefix), *self.below)
        if self.met:
            pipe.srem(below_target_key(prefix), *self.met)


def below_target(ratio: str, target: float) -> bool:
    """A department is below target when its online ratio is known and strictly below it."""
    return ratio != "" and float(ratio) < target


def _decoded(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    def text(x: bytes | str) -> str:
        return x.decode() if isinstance(x, bytes) else x

    return {text(k): text(v) for k, v in raw.items()}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


_Field = bytes | bytearray | memoryview | str | int | float


def _mapping(fields: Mapping[str, str | int]) -> dict[_Field, _Field]:
    # redis-py's hset wants its wider types; the values are already Redis-ready.
    return dict(fields.items())
