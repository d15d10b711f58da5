"""The Redis writer on a real Redis: only changed fields are sent, and whatever it does
not know Redis holds, it writes whole."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from common.settings import StackSettings
from schemas.serving import meta_key, rank_key, scope_key, series_key
from stream_apps.sink import RedisSink

FIGURES = {"overdue_now": "3", "qtd.received_total": "10", "qtd.online_ratio": "0.700000"}
SERIES = {"daily.received_total": '{"2025-09-01":4}', "hourly.received_total": "{}"}


def sink_for(stack: StackSettings, prefix: str) -> RedisSink:
    return RedisSink(
        aioredis.Redis.from_url(stack.redis_url),
        prefix,
        level_of=lambda code: "city",
        target=0.8,
        target_window="qtd",
        clock_mode="event",
    )


def test_only_changed_fields_are_sent_until_the_sink_forgets(
    stack: StackSettings, names, redis_client: redis.Redis
) -> None:
    prefix = names.redis_prefix
    scope, series, meta = (
        scope_key(prefix, "agency:SO-XD"),
        series_key(prefix, "agency:SO-XD"),
        meta_key(prefix),
    )
    ranks = rank_key(prefix, "overdue_now", "city")

    async def scenario() -> None:
        sink = sink_for(stack, prefix)

        async def write(figures: dict[str, str], counts: dict[str, int]) -> int:
            before = sink.fields_written
            await sink.write({"agency:SO-XD": figures}, {"agency:SO-XD": SERIES}, counts, 1)
            return sink.fields_written - before

        try:
            # First write: every field of both hashes.
            assert await write(FIGURES, {"events_in": 1}) == len(FIGURES) + len(SERIES)
            assert redis_client.hgetall(scope) == FIGURES
            assert redis_client.zscore(ranks, "SO-XD") == 3

            # One field changed: one field sent; Redis holds the whole new figures.
            changed = FIGURES | {"overdue_now": "4"}
            assert await write(changed, {"events_in": 2}) == 1
            assert redis_client.hgetall(scope) == changed
            assert redis_client.hgetall(series) == SERIES
            assert redis_client.zscore(ranks, "SO-XD") == 4  # the ranking follows
            assert redis_client.hget(meta, "events_in") == "2"  # meta is always written

            # A field deleted behind the sink's back is not sent again while unchanged...
            redis_client.hdel(scope, "qtd.received_total")
            assert await write(changed, {"events_in": 3}) == 0
            assert "qtd.received_total" not in redis_client.hgetall(scope)
            # ...and is, whole, once the sink forgets (the worker does it every interval).
            sink.forget()
            assert await write(changed, {"events_in": 4}) == len(FIGURES) + len(SERIES)
            assert redis_client.hgetall(scope) == changed

            # A failed transaction leaves nothing known: the next write is whole.
            redis_client.delete(scope)
            redis_client.set(scope, "not a hash")
            try:
                await write(FIGURES, {"events_in": 5})  # overdue_now changed: HSET fails
                raise AssertionError("HSET on a string key must fail the transaction")
            except ResponseError:
                pass
            redis_client.delete(scope)
            assert await write(FIGURES, {"events_in": 6}) == len(FIGURES) + len(SERIES)
            assert redis_client.hgetall(scope) == FIGURES
            assert redis_client.hgetall(series) == SERIES
        finally:
            await sink.client.aclose()

    asyncio.run(scenario())
