"""The figures process, seen from the worker's first process.

The figures stage runs in a process of its own (docs/worker.md, "Processes"), a Faust
worker (`stream_apps.figures_main`) started and watched by the process `dossier-stream
worker` starts: its agent merges the rounds of partial figures every dossier stage
publishes, its writer serves them in Redis, and its alert rules judge them.

They share no memory: the rounds travel through Kafka. Across their socket pair
(`stream_apps.child_process`) the figures process tells the worker when it owns its
partials partitions (every dossier stage then publishes every partial again, as after a
rebalance) and reports, twice a second, what `/health` and `/metrics` say of it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stream_apps.child_process import ChildProcess, ChildStatus
from stream_apps.health import Health
from stream_apps.settings import WorkerSettings


@dataclass
class FiguresStatus(ChildStatus):
    """What the figures process last reported, for /health and /metrics."""

    last_flush_s: float | None = None
    figures_keys: int = 0
    counts_sources: list[int] = field(default_factory=list)
    down: dict[str, Any] = field(default_factory=dict)  # its outages: redis, kafka
    retries: dict[str, int] = field(default_factory=dict)
    seconds_since_flush: float | None = None
    reported_at: float = 0.0  # monotonic

    def update(self, report: dict[str, Any]) -> None:
        self.last_flush_s = report.get("last_flush_s")
        self.figures_keys = int(report.get("figures_keys", 0))
        self.counts_sources = list(report.get("counts_sources", []))
        self.down = dict(report.get("down", {}))
        self.retries = dict(report.get("retries", {}))
        self.seconds_since_flush = report.get("seconds_since_flush")
        self.reported_at = time.monotonic()


class FiguresProcess(ChildProcess[FiguresStatus]):
    """Starts the figures process, restarts it when it exits, stops it with the worker.

    `on_ready` runs each time the figures stage owns its partials partitions (after every
    rebalance of its group, and after a restart); `on_flushes` gets the durations of the
    Redis flushes it reports. While no figures process runs, `health` says "figures" is
    down, so /health is degraded.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        health: Health,
        on_ready: Callable[[], None],
        on_flushes: Callable[[list[float]], None] | None = None,
        command: list[str] | None = None,
        loglevel: str = "info",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            settings,
            health,
            FiguresStatus(),
            name="figures process",
            component="figures",
            command=command or [sys.executable, "-m", "stream_apps.figures_main"],
            loglevel=loglevel,
            **kwargs,
        )
        self.on_ready = on_ready
        self.on_flushes = on_flushes

    def receive(self, message: dict[str, Any]) -> None:
        if message.get("ready"):
            self.status.ready = True
            self.health.ok("figures")
            self.on_ready()
        report = message.get("status")
        if report is not None:
            self.status.update(report)
            flushes = report.get("flushes")
            if flushes and self.on_flushes is not None:
                self.on_flushes([float(x) for x in flushes])
