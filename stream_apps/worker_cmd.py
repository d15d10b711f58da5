"""Run the stream worker: dossier events in, every dossier's state kept, figures served in Redis.

The worker has two stages in separate processes (see docs/worker.md, "Processes"): this one
runs the dossier stage and starts the figures stage's Faust worker beside it
(`stream_apps.figures_main`), and with --stage-processes N, N - 1 more dossier stage
processes that share the partitions (`stream_apps.stage_main`). It exposes a health
check on 127.0.0.1 (see --web-port) and stops cleanly, all its processes, on SIGTERM or
Ctrl-C.
Settings come from DOSSIER_* environment variables; the options below override them.
Run several workers (each with its own --web-port) to share the partitions.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import mode

from common import kafka_admin, native
from common.connections import kafka_options
from common.errors import EXIT_USAGE, CommandError
from domain.alerts import AlertThresholds, parse_thresholds
from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from stream_apps.book import new_partition_book, rust_book_loaded
from stream_apps.dossier_stage import DossierStage
from stream_apps.figures_link import FiguresProcess
from stream_apps.health import quiet_client_logs
from stream_apps.joint_rounds import JointRounds
from stream_apps.metrics import WorkerMetrics
from stream_apps.settings import WorkerSettings
from stream_apps.stage_group import StageGroup, StageProcess
from stream_apps.web import WebService

EXAMPLES = """\
examples:
  dossier-stream worker                                  # local broker and Redis
  dossier-stream worker --web-port 6067                  # a second worker on this machine
  dossier-stream worker --clock event                    # replaying history
  dossier-stream worker --clock event --stage-processes 2  # ... on two cores
  DOSSIER_KAFKA_BOOTSTRAP=kafka:9092 DOSSIER_REDIS_URL=redis://redis:6379/0 dossier-stream worker
"""

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (DOSSIER_KAFKA_BOOTSTRAP)")
    parser.add_argument("--redis-url", help="Redis URL (DOSSIER_REDIS_URL)")
    parser.add_argument("--topic", help="events topic (DOSSIER_EVENTS_TOPIC)")
    parser.add_argument("--dead-letter-topic", help="dead-letter topic (DOSSIER_DEAD_LETTER_TOPIC)")
    parser.add_argument("--redis-prefix", help="Redis key prefix (DOSSIER_REDIS_PREFIX)")
    parser.add_argument("--app-id", help="consumer group and topic prefix (DOSSIER_APP_ID)")
    parser.add_argument("--web-port", type=int, help="health endpoint port (DOSSIER_WEB_PORT)")
    parser.add_argument("--partitions", type=int, help="partitions of the internal topics")
    parser.add_argument("--clock", choices=["live", "event"], help="figures' clock (DOSSIER_CLOCK)")
    parser.add_argument(
        "--stage-processes",
        type=int,
        metavar="N",
        help="dossier stage processes, each taking a share of the partitions, cutting their "
        "rounds together at one clock; one per core speeds up replays and catch-ups "
        "(DOSSIER_STAGE_PROCESSES, default 1)",
    )


def settings_from(args: argparse.Namespace) -> WorkerSettings:
    overrides: dict[str, Any] = {
        "kafka_bootstrap": args.bootstrap,
        "redis_url": args.redis_url,
        "events_topic": args.topic,
        "dead_letter_topic": args.dead_letter_topic,
        "redis_prefix": args.redis_prefix,
        "app_id": args.app_id,
        "web_port": args.web_port,
        "partitions": args.partitions,
        "clock": args.clock,
        "stage_processes": args.stage_processes,
    }
    return WorkerSettings(**{k: v for k, v in overrides.items() if v is not None})


def build_stage(settings: WorkerSettings) -> DossierStage:
    """One dossier stage (each stage process of the worker has one)."""
    registry = AgencyRegistry.default()
    calendar = WorkingCalendar()
    return DossierStage(
        settings,
        Lifecycle(calendar_resume(calendar)),
        lambda _partition: new_partition_book(
            calendar, second_supplement_late=settings.second_supplement_late
        ),
        registry=registry,
        target_scopes=frozenset(f"agency:{a.code}" for a in registry if a.level.value == "city"),
    )


def build_worker(settings: WorkerSettings, loglevel: str = "info") -> mode.Worker:
    """The composition root of the worker's first process: a dossier stage, the other
    stage processes and the figures process it starts (they have their own:
    `stream_apps.stage_main`, `stream_apps.figures_main`), and the web endpoint."""
    quiet_client_logs()
    if settings.alerts and settings.alerts_thresholds_file is not None:
        load_thresholds(settings.alerts_thresholds_file)  # a bad file stops us here, not there
    stage = build_stage(settings)
    topics = {
        settings.events_topic: settings.partitions,
        settings.dead_letter_topic: 1,
        stage.changelog_topic: settings.partitions,
        stage.partials_topic: settings.partitions,
    }
    if settings.alerts:
        topics[settings.alerts_topic] = settings.partitions
        topics[settings.alerts_undelivered_topic] = 1
    kafka_admin.ensure_topics(
        settings.kafka_bootstrap,
        topics,
        compacted={stage.changelog_topic, stage.partials_topic},
        options=kafka_options(settings),
        replication_factor=settings.replication_factor,
        min_insync_replicas=settings.min_insync_replicas,
    )
    others: list[StageProcess] = []

    def figures_owned() -> None:
        stage.figures_owned()
        for other in others:
            other.figures_owned()

    figures = FiguresProcess(settings, stage.health, figures_owned, loglevel=loglevel)
    others.extend(
        StageProcess(
            settings,
            stage.health,
            i,
            lambda: figures.status.ready,
            on_stopping=stage.leave,
            loglevel=loglevel,
        )
        for i in range(2, settings.stage_processes + 1)
    )
    stages = StageGroup(stage, others)
    # With several stage processes, this one says when each cuts its rounds, at one clock.
    if others:
        stages.rounds = JointRounds(stage, others)
    rounds = [stages.rounds] if stages.rounds is not None else []
    metrics = WorkerMetrics(stages, figures.status)
    stage.on_batch = metrics.batch_seconds.observe
    for other in others:
        other.on_batches = metrics.observe_batches
    figures.on_flushes = metrics.observe_flushes
    web = WebService(settings.web_host, settings.web_port, stages, figures.status, metrics)
    return mode.Worker(
        stage,
        *others,
        *rounds,
        figures,
        web,
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,
    )


def load_thresholds(path: Path) -> AlertThresholds:
    """The thresholds file, or one clear line naming it (exit code 2)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(
            f"alert thresholds file {path}: {exc.strerror or exc}", EXIT_USAGE
        ) from None
    try:
        return parse_thresholds(text)
    except ValueError as exc:
        raise CommandError(f"alert thresholds file {path}: {exc}", EXIT_USAGE) from None


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    log.info(
        "worker %s: events %s on %s, figures to %s under %s, clock %s",
        settings.app_id,
        settings.events_topic,
        settings.kafka_bootstrap,
        settings.redis_url,
        settings.redis_prefix,
        settings.clock,
    )
    log.info("compiled core (DOSSIER_NATIVE): %s", native.status)
    log.info("figure book: %s", "Rust (native/)" if rust_book_loaded() else "Python")
    if settings.signing_master_key is not None:
        log.info("events must be signed by the gateway or the agency they name (docs/security.md)")
    else:
        log.info("event signatures are not checked (no DOSSIER_SIGNING_MASTER_KEY)")
    level = {"WARNING": "warn"}.get(str(args.log_level).upper(), str(args.log_level).lower())
    build_worker(settings, loglevel=level).execute_from_commandline()
    return 0
