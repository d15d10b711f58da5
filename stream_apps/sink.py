"""The Redis writer: absolute figures, one atomic pipeline per flush, then a notice."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from domain.aggregates import AggregateBook
from schemas.serving import meta_key, scope_key, updates_channel


class RedisSink:
    """Writes the dirty scopes of an `AggregateBook` to Redis.

    Values are absolute (never increments), so writing the same state twice, or
    replaying events after a crash, cannot double count. Each flush is one MULTI/EXEC
    transaction: a reader never sees half an update.
    """

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.last_flush_s = 0.0

    async def flush(
        self, book: AggregateBook, counts: Mapping[str, int], *, full: bool = False
    ) -> list[str]:
        """Write changed scopes (or all with `full`) and the counts; return the scopes written."""
        scopes = book.scopes() if full else sorted(book.dirty)
        book.dirty.clear()
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat()
        pipe = self.client.pipeline(transaction=True)
        for scope in scopes:
            pipe.hset(scope_key(self.prefix, scope), mapping=book.figures(scope))
        pipe.hset(meta_key(self.prefix), mapping={"updated_at": now, **dict(counts)})
        await pipe.execute()
        if scopes:
            notice = orjson.dumps({"updated_at": now, "scopes": scopes})
            await self.client.publish(updates_channel(self.prefix), notice)
        self.last_flush_s = time.perf_counter() - started
        return scopes

    async def is_empty(self) -> bool:
        """True when Redis lost our keys (restarted empty or flushed)."""
        return not await self.client.exists(meta_key(self.prefix))
