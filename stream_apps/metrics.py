"""Prometheus metrics of one worker, read from its stages when scraped."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from stream_apps.figures_link import FiguresStatus
from stream_apps.stage_group import StageGroup

CONTENT_TYPE = "text/plain"  # Prometheus text format 0.0.4; aiohttp adds the charset


class WorkerMetrics:
    """The worker's metrics; `render()` is what `/metrics` serves."""

    def __init__(self, stages: StageGroup, figures: FiguresStatus) -> None:
        self.registry = CollectorRegistry()
        self.flush_seconds = Histogram(
            "dossier_redis_flush_seconds",
            "Time to write one flush of figures to Redis",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        self.batch_seconds = Histogram(
            "dossier_batch_seconds",
            "Time to apply one input batch and checkpoint it",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.registry.register(_StageCollector(stages, figures))

    def observe_flushes(self, durations: list[float]) -> None:
        """Redis flushes the figures process reported (seconds each)."""
        for seconds in durations:
            self.flush_seconds.observe(seconds)

    def observe_batches(self, durations: list[float]) -> None:
        """Batches another stage process reported (seconds each)."""
        for seconds in durations:
            self.batch_seconds.observe(seconds)

    def render(self) -> str:
        return generate_latest(self.registry).decode("utf-8")


class _StageCollector(Collector):
    def __init__(self, stages: StageGroup, figures: FiguresStatus) -> None:
        self.stages = stages
        self.figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = self.stages.counts()
        for name, help_text in (
            ("events_in", "Input messages consumed (redeliveries after a crash excluded)"),
            ("applied", "Events applied to a dossier's state"),
            ("duplicates", "Events whose sequence number was already applied"),
            ("dead_lettered", "Messages sent to the dead-letter topic"),
        ):
            yield CounterMetricFamily(f"dossier_{name}", help_text, value=counts.get(name, 0))
        yield GaugeMetricFamily(
            "dossier_pending_events",
            "Events waiting for an earlier sequence number of their dossier",
            value=counts.get("pending", 0),
        )
        lag = GaugeMetricFamily(
            "dossier_consumer_lag", "Messages behind the end of the partition", labels=["partition"]
        )
        for partition, behind in sorted(self.stages.lag().items()):
            lag.add_metric([str(partition)], behind)
        yield lag
        yield GaugeMetricFamily(
            "dossier_open_dossiers",
            "Dossiers received and not yet resolved or closed, in this worker's partitions",
            value=self.stages.open_dossiers(),
        )
        dossiers = self.stages.dossiers()
        yield GaugeMetricFamily(
            "dossier_held_dossiers",
            "Dossier records held in memory and the changelog, in this worker's partitions",
            value=dossiers["held"],
        )
        yield GaugeMetricFamily(
            "dossier_retired_dossiers",
            "Closed dossiers reduced to their contribution, in this worker's partitions",
            value=dossiers["retired"],
        )
        yield GaugeMetricFamily(
            "dossier_assigned_partitions",
            "Input partitions this worker owns",
            value=len(self.stages.partitions()),
        )
        for name, help_text in (
            ("stuck_dossiers", "Dossiers waiting on a sequence gap in this worker's partitions"),
            ("flagged_dossiers", "Dossiers flagged for their agency (gap released, time clamped)"),
        ):
            yield GaugeMetricFamily(f"dossier_{name}", help_text, value=counts.get(name, 0))
        stage_down, stage_retries = self.stages.down(), self.stages.retries()
        figures = self.figures
        retries = CounterMetricFamily(
            "dossier_retries",
            "Calls to Kafka or Redis retried after a failure (figures, stages: process restarts)",
            labels=["service"],
        )
        down = GaugeMetricFamily(
            "dossier_service_down",
            "1 while Kafka or Redis is unreachable, or the figures process (or another "
            "stage process) is not running",
            labels=["service"],
        )
        for service in ("kafka", "redis", "figures"):
            count = stage_retries.get(service, 0) + figures.retries.get(service, 0)
            retries.add_metric([service], count)
            is_down = service in stage_down or service in figures.down
            down.add_metric([service], 1 if is_down else 0)
        children = [name for name in stage_retries if name.startswith("stage process")]
        retries.add_metric(["stages"], sum(stage_retries[name] for name in children))
        stages_down = any(name.startswith("stage process") for name in stage_down)
        down.add_metric(["stages"], 1 if stages_down else 0)
        yield retries
        yield down
        rounds = self.stages.rounds
        if rounds is not None:
            yield CounterMetricFamily(
                "dossier_joint_rounds",
                "Rounds the stage processes cut together, at one clock",
                value=rounds.groups,
            )
            yield CounterMetricFamily(
                "dossier_joint_round_waits",
                "Times a stage process did not stop for a joint round in time (Redis waited)",
                value=rounds.left_out,
            )
        if figures.seconds_since_flush is not None:
            # As the figures process last reported it, plus the time since its report.
            yield GaugeMetricFamily(
                "dossier_seconds_since_redis_flush",
                "Seconds since figures were last written to Redis",
                value=figures.seconds_since_flush + time.monotonic() - figures.reported_at,
            )
