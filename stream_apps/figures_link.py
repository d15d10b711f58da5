"""The worker's two processes and the line between them.

A worker is two processes (docs/worker.md, "Two processes"):
- the dossier stage, in the process `dossier-stream worker` starts: it reads the events,
  keeps every dossier's state and its changelog, and publishes rounds of partial figures
  to the partials topic;
- the figures stage, a Faust worker of its own (`stream_apps.figures_main`), started and
  watched by the first: its agent merges the rounds, its writer serves them in Redis,
  and its alert rules judge them.

They share no memory: the rounds travel through Kafka as before. Across a socket pair
the figures process tells the stage when it owns its partials partitions (the stage then
publishes every partial again, as after a rebalance) and reports, twice a second, what
`/health` and `/metrics` say of it. The stage process sends the settings once, first.

Each message is one line of JSON. This module holds the stage's side: `FiguresProcess`,
a service that starts the figures process, restarts it if it ever exits, and stops it
with the worker. The figures process dies with the stage process, even by SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from mode import Service
from pydantic import SecretStr

from stream_apps.health import Backoff, Health
from stream_apps.settings import WorkerSettings

log = logging.getLogger(__name__)

FD_ENV = "DOSSIER_FIGURES_FD"  # the figures process's end of the socket pair
PARENT_ENV = "DOSSIER_FIGURES_PARENT"  # the pid of the stage process
LOGLEVEL_ENV = "DOSSIER_FIGURES_LOGLEVEL"  # the worker's --loglevel
STOP_GRACE_S = 20.0  # a figures process still running this long after SIGTERM is killed


def settings_line(settings: WorkerSettings) -> bytes:
    """The settings as one line of JSON, secrets included (for the socket, never a file)."""
    doc: dict[str, Any] = {}
    for name, value in settings.model_dump().items():
        doc[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return orjson.dumps({"settings": doc}, default=str) + b"\n"


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


@dataclass
class FiguresStatus:
    """What the figures process last reported, for /health and /metrics."""

    pid: int | None = None
    restarts: int = 0
    ready: bool = False
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


class FiguresProcess(Service):
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
        super().__init__(**kwargs)
        self.settings = settings
        self.health = health
        self.on_ready = on_ready
        self.on_flushes = on_flushes
        self.command = command or [sys.executable, "-m", "stream_apps.figures_main"]
        self.loglevel = loglevel
        self.status = FiguresStatus()
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False

    async def on_stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.warning(
                "figures process %d still running %.0f s after SIGTERM: killed",
                proc.pid,
                STOP_GRACE_S,
            )
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("figures process %d stopped (exit code %s)", proc.pid, proc.returncode)

    @Service.task
    async def _supervise(self) -> None:
        backoff = Backoff(first=0.5, cap=self.settings.retry_max_s)
        while not self.should_stop and not self._stopping:
            started = time.monotonic()
            code = await self._run_once()
            if self.should_stop or self._stopping:
                return
            self.status.ready = False
            self.health.failed("figures", RuntimeError(f"figures process exited with {code}"))
            if time.monotonic() - started > 60:
                backoff.reset()
            await asyncio.sleep(backoff.next())
            self.status.restarts += 1
            log.warning("figures process: starting it again (restart %d)", self.status.restarts)

    async def _run_once(self) -> int | None:
        """Run one figures process until it exits; return its exit code."""
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env[FD_ENV] = str(theirs.fileno())
        env[PARENT_ENV] = str(os.getpid())
        env[LOGLEVEL_ENV] = self.loglevel
        try:
            self._proc = proc = await asyncio.create_subprocess_exec(
                *self.command, pass_fds=(theirs.fileno(),), env=env
            )
        except OSError as exc:
            ours.close()
            log.error("figures process: cannot start %s: %r", self.command[0], exc)
            return None
        finally:
            theirs.close()
        self.status.pid = proc.pid
        log.info("figures process %d started", proc.pid)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        try:
            writer.write(settings_line(self.settings))
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    break
                self._receive(orjson.loads(line))
        except (OSError, ValueError) as exc:  # orjson's decode error is a ValueError
            # A figures process we cannot hear is stopped, and started again below.
            log.warning("figures process %d: its socket failed: %r", proc.pid, exc)
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        finally:
            writer.close()
        code = await proc.wait()
        if not self._stopping:
            log.error("figures process %d exited with code %s", proc.pid, code)
        return code

    def _receive(self, message: dict[str, Any]) -> None:
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
