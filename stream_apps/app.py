"""The Faust app of the figures stage: an agent and its merged table of partials, the Redis
writer and the alert rules. It runs in the worker's figures process
(`stream_apps.figures_main`); the dossier stage runs in the other (`stream_apps.figures_link`).

The dossier stage applies the events topic to the dossier states and, every flush
interval, publishes a round of its partitions' changed partial figures at one input
position (one message per partials partition). Here, the agent applies whole rounds to
its in-memory table of the partials of the scopes whose partials partitions this worker
owns (`PartialMerger`), merges them (counts add, ratios are derived after) and writes
Redis with the watermark. So per-agency figures are exact when several workers share the
input partitions. One writer task flushes Redis as soon as a round has been applied, and
at least every flush interval.

The writer lets no outage stop the worker: a Redis write that fails is retried with
backoff and, once Redis answers again, every figure is written anew (Redis may have come
back empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import faust
import orjson
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from redis.exceptions import RedisError

from schemas.alerts import AlertEvent
from stream_apps.alerting import AlertEngine, states_json
from stream_apps.faust_transport import Transport
from stream_apps.health import Backoff
from stream_apps.kafka_io import faust_credentials
from stream_apps.partials import (
    COUNTS_KEY,
    FEED_PREFIX,
    OVERDUE_PREFIX,
    SAMPLES_PREFIX,
    SERIES_PREFIX,
    PartialMerger,
    merged_feed,
    merged_overdue_hours,
    merged_series,
    merged_snapshot,
    sum_counts,
)
from stream_apps.settings import WorkerSettings
from stream_apps.sink import RedisSink
from stream_apps.stage_link import StageLink
from stream_apps.webhooks import aiohttp_post, deliver

log = logging.getLogger(__name__)


STATUS_INTERVAL_S = 0.5  # how often the figures process reports to the worker


def create_app(
    settings: WorkerSettings,
    link: StageLink,
    sink: RedisSink,
    alerts: AlertEngine | None = None,
) -> faust.App:
    """Build the figures stage's Faust app. Nothing connects until the worker starts it."""
    datadir = Path(settings.data_dir) / settings.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        store="memory://",
        autodiscover=False,
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        # Faust's own topics (its assignor's leader topic) get the cluster's replication.
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=False,  # /health and /metrics: the worker's first process
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 10),
        broker_credentials=faust_credentials(settings),
    )
    # Faust's aiokafka transport, its consumer fetching within 100 ms (not 1.5 s).
    app.transport = Transport(app.conf.broker_consumer, app)
    raw: faust.Schema = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    partials = app.topic(
        link.partials_topic, schema=raw, partitions=settings.partitions, internal=False
    )
    merger = PartialMerger()
    round_merged = asyncio.Event()  # wakes the Redis writer as soon as a round is whole

    @app.agent(partials)
    async def merge_partials(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        # A handful of messages per round (one per partials partition and dossier
        # partition), however many scopes changed: the per-message cost stays small.
        async for event in stream.events():
            if merger.accept_round(event.value, event.message.partition):
                round_merged.set()
            yield None

    @app.timer(interval=STATUS_INTERVAL_S)
    async def report() -> None:
        link.report(
            {
                "last_flush_s": sink.last_flush_s,
                "figures_keys": len(merger.docs),
                "counts_sources": sorted(merger.docs.get(COUNTS_KEY, {})),
                "seconds_since_flush": None
                if sink.last_success is None
                else time.monotonic() - sink.last_success,
            }
        )

    if settings.alert_webhooks:
        alert_topic = app.topic(settings.alerts_topic, schema=raw, internal=False)
        webhook_state: dict[str, Any] = {}

        @app.agent(alert_topic)
        async def deliver_alerts(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
            # A handful of alerts a day: one message at a time is fine here.
            try:
                async for value in stream:
                    try:
                        event = AlertEvent.model_validate_json(value)
                    except ValidationError as exc:
                        log.warning("alerts topic: a record is not an AlertEvent, skipped: %s", exc)
                        await publish_undelivered([(b"", _not_an_alert(value, exc))])
                        yield None
                        continue
                    session = webhook_state.get("session")
                    if session is None:
                        session = webhook_state["session"] = aiohttp.ClientSession()
                    failed = await deliver(
                        aiohttp_post(session, settings.webhook_timeout_s),
                        settings.alert_webhooks,
                        event,
                        retries=settings.webhook_retries,
                    )
                    key = event.scope.encode()
                    if failed:
                        await publish_undelivered([(key, f.record()) for f in failed])
                    yield None
            finally:
                session = webhook_state.pop("session", None)
                if session is not None:
                    await session.close()

        async def publish_undelivered(records: list[tuple[bytes, bytes]]) -> None:
            """Dead-letter records, retried while Kafka is down (the agent waits)."""
            backoff = Backoff(first=settings.flush_interval_s, cap=settings.retry_max_s)
            while True:
                try:
                    await link.publish(settings.alerts_undelivered_topic, records)
                    link.health.ok("kafka")
                    return
                except (TimeoutError, KafkaError, OSError) as exc:
                    link.health.failed("kafka", exc)
                    await asyncio.sleep(backoff.next())

    outages = link.health
    redis_backoff = Backoff(first=settings.flush_interval_s, cap=settings.retry_max_s)
    redis_state: dict[str, Any] = {"rewrite": False, "next_try": 0.0}

    @app.task
    async def write_redis() -> None:
        """Write Redis when a round has been merged, and at least every flush interval.

        One writer: flushes never overlap, so an older one cannot land after a newer one.
        """
        while not app.should_stop:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(round_merged.wait(), settings.flush_interval_s)
            round_merged.clear()
            try:
                await flush_to_redis()
            except Exception:  # a bug must not stop the figures for good: log it, go on
                log.exception("writing the figures to Redis failed")
                await asyncio.sleep(settings.flush_interval_s)

    async def flush_to_redis() -> None:
        if time.monotonic() < redis_state["next_try"]:
            return
        try:
            await _flush(rewrite=redis_state["rewrite"])
        except (RedisError, OSError) as exc:
            # The keys taken for this flush were not written: write everything next time.
            redis_state["rewrite"] = True
            outages.failed("redis", exc)
            redis_state["next_try"] = time.monotonic() + redis_backoff.next()
            return
        if redis_state["rewrite"]:
            log.info("Redis written anew: every figure this worker owns")
        redis_state["rewrite"] = False
        redis_backoff.reset()
        outages.ok("redis")

    async def _flush(*, rewrite: bool) -> None:
        full = rewrite or await sink.is_empty()
        if full and merger.docs and not rewrite:
            log.info("Redis holds none of our keys: writing every figure this worker owns")
        if full or time.monotonic() - sink.forgotten_at >= settings.full_publish_interval_s:
            # Whole hashes again: after a loss, and every interval, so that a key changed
            # or deleted behind the worker's back is whole again within it.
            sink.forget()
        keys = merger.take_dirty(everything=full)
        snapshots: dict[str, dict[str, str]] = {}
        series: dict[str, dict[str, str]] = {}
        feeds: dict[str, dict[str, dict[str, Any]]] = {}
        counts = None
        for key in keys:
            if key.startswith(OVERDUE_PREFIX):
                continue  # the alert rules' input (below), not a figure
            if key == COUNTS_KEY:
                counts = sum_counts(merger.bodies(key))
            elif key.startswith(SERIES_PREFIX):
                series[key.removeprefix(SERIES_PREFIX)] = merged_series(merger.bodies(key))
            elif key.startswith(FEED_PREFIX):
                feeds[key.removeprefix(FEED_PREFIX)] = merged_feed(merger.bodies(key))
            else:
                snapshots[key] = merged_snapshot(merger.bodies(key))
        clock = max((merger.clock(k) for k in keys), default=0) or None
        if keys or full:
            try:
                positions = dict(merger.positions) if counts is not None else None
                await sink.write(snapshots, series, counts, clock, feeds, positions)
            except BaseException:
                merger.dirty.update(keys)
                raise
            link.flushes.append(sink.last_flush_s)
        if alerts is not None:
            await judge_alerts(alerts, rewrite=full)

    alert_view = _AlertView()

    async def judge_alerts(engine: AlertEngine, *, rewrite: bool) -> None:
        """Judge the alert rules on the merged figures; publish, then store, what changed.

        Kafka first, then Redis: a crash between the two sends the events again (same
        ids) and stores them once, since Redis stores them with the states they came from.
        """
        if not engine.loaded:
            states, opened = await sink.read_alerts()
            engine.load(states, opened)
            rewrite = False  # what Redis has is what we hold
            log.info(
                "alerts: %d rule states and %d open alerts read from Redis",
                len(states),
                len(opened),
            )
        if rewrite:
            owned = set(alert_view.hours) | {
                key.removeprefix(SAMPLES_PREFIX) for key in merger.samples
            }
            engine.drop_scopes(lambda scope: scope in owned)
            stored, opened = engine.stored_form()
            await sink.write_alerts(
                stored, [], open_now=opened, log_maxlen=settings.alerts_log_maxlen
            )
        # What the rules read is taken from the merger with no await in between, so it
        # is all from the same rounds: the settled hour and the hours and samples it covers.
        settled = merger.settled_hour()
        for key in merger.overdue_dirty:
            hours = merged_overdue_hours(merger.bodies(key))
            if hours is not None:
                scope = key.removeprefix(OVERDUE_PREFIX)
                alert_view.hours[scope] = hours
                alert_view.changed.add(scope)
        merger.overdue_dirty.clear()
        if settled is None or settled == alert_view.judged_at:
            return
        samples = merger.ready_samples(settled)
        changed = set(alert_view.changed)
        verdict = engine.judge(settled, alert_view.hours, samples, changed)
        if verdict.events:
            records = [(e.scope.encode(), e.model_dump_json().encode()) for e in verdict.events]
            try:
                await link.publish(settings.alerts_topic, records)
            except (TimeoutError, KafkaError, OSError) as exc:
                outages.failed("kafka", exc)
                return  # judged again at the next flush, from the same states
            outages.ok("kafka")
        if verdict:
            await sink.write_alerts(
                states_json(verdict), verdict.events, log_maxlen=settings.alerts_log_maxlen
            )
            engine.commit(verdict)
        merger.drop_samples(settled)
        alert_view.judged_at = settled
        alert_view.changed -= changed
        for e in verdict.events:
            log.warning(
                "alert %s %s: %s at %s (%s)",
                e.action,
                e.kind,
                e.agency_name or e.scope,
                e.at.isoformat(),
                e.id,
            )

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def drop_revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        homes = {tp.partition for tp in revoked if tp.topic == link.partials_topic}
        if homes:
            merger.assign(merger.owned - homes)
            sink.forget()  # another worker may write those keys before they come back
            alert_view.forget(merger.docs)
            if alerts is not None:
                alerts.loaded = False  # the next owner stores what it judges; read it again
            log.info("figures stage: partials partitions %s revoked", sorted(homes))

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def restore_partials(sender: Any, **kwargs: Any) -> None:
        actives = {
            tp.partition for tp in app.consumer.assignment() if tp.topic == link.partials_topic
        }
        merger.assign(actives)
        sink.forget()
        alert_view.forget(merger.docs)
        if alerts is not None:
            alerts.loaded = False
        # The previous owner of a partials partition took its rounds with it: every
        # worker's dossier stage publishes all of its partials again, as whole rounds.
        link.figures_ready()
        log.info("figures stage: partials partitions %s active", sorted(actives))

    return app


class _AlertView:
    """The merged inputs of the spike rule, kept between flushes."""

    def __init__(self) -> None:
        self.hours: dict[str, tuple[dict[int, int], int]] = {}  # scope -> overdue hours
        self.judged_at: int | None = None  # the settled hour last judged
        self.changed: set[str] = set()  # scopes whose hours changed since then

    def forget(self, docs: Any) -> None:
        """Keep only the scopes whose partials this worker still holds."""
        self.hours = {k: v for k, v in self.hours.items() if OVERDUE_PREFIX + k in docs}
        self.judged_at = None
        self.changed = set(self.hours)


def _not_an_alert(value: bytes, exc: Exception) -> bytes:
    return orjson.dumps(
        {"reason": f"not an AlertEvent: {exc}", "value": value.decode("utf-8", "replace")}
    )
