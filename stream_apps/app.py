"""The Faust app: the events topic, the dossier-state table, the agent, the flush timer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust

from stream_apps.codec import decode_state
from stream_apps.processor import EventProcessor
from stream_apps.settings import WorkerSettings
from stream_apps.sink import RedisSink

log = logging.getLogger(__name__)


def create_app(settings: WorkerSettings, processor: EventProcessor, sink: RedisSink) -> faust.App:
    """Build the worker's Faust app. Nothing connects until the worker starts it."""
    datadir = Path(settings.data_dir) / settings.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        store="memory://",
        autodiscover=False,
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )
    raw = faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    events = app.topic(settings.events_topic, schema=raw, partitions=settings.partitions)
    dead_letters = app.topic(settings.dead_letter_topic, schema=raw)
    # The single source of truth: one JSON document per dossier, keyed like the events
    # topic (by dossier id), so its changelog is co-partitioned with the input.
    dossiers = app.Table(
        "dossiers", default=None, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )

    @app.agent(events)
    async def apply_events(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            for letter in processor.process(dossiers, event.key, event.value):
                log.warning("dead letter for key %r: %s", letter.key, letter.reason)
                await dead_letters.send(
                    key=letter.key,
                    value=letter.value,
                    headers={"reason": letter.reason.encode("utf-8")},
                )
            yield None

    @app.timer(interval=settings.flush_interval_s)
    async def flush_to_redis() -> None:
        full = await sink.is_empty()
        if full:
            log.info("Redis holds none of our keys: writing the full current state")
        await sink.flush(processor.book, processor.counts, full=full)

    @app.on_rebalance_complete.connect
    async def rebuild_figures(sender: Any, **kwargs: Any) -> None:
        states = [decode_state(raw) for raw in dossiers.data.values() if raw is not None]
        processor.rebuild(states)
        log.info("figures rebuilt from %d recovered dossier states", len(states))

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "counts": dict(processor.counts)})

    return app
