"""The figures process's Faust consumer fetches within `FETCH_MAX_WAIT_MS`, not Faust's 1.5 s."""

from __future__ import annotations

import asyncio

import faust

from stream_apps.faust_transport import FETCH_MAX_WAIT_MS, Transport


def test_the_worker_consumer_waits_at_most_the_short_fetch() -> None:
    async def build() -> int:
        app = faust.App("transport-test", broker="kafka://127.0.0.1:1", autodiscover=False)
        app.transport = Transport(app.conf.broker_consumer, app)
        consumer = app.consumer  # made by the transport; nothing connects yet
        client = consumer._thread._create_worker_consumer(app.transport)
        wait: int = client._fetch_max_wait_ms
        return wait

    assert asyncio.run(build()) == FETCH_MAX_WAIT_MS == 100
