"""The worker's child processes, seen from the process `dossier-stream worker` starts.

A worker is one process that starts others and watches them (docs/worker.md, "Processes"):
the figures process (`stream_apps.figures_link`) and, with `DOSSIER_STAGE_PROCESSES` above
1, more dossier stage processes (`stream_apps.stage_group`). Each child gets one end of
a socket pair; across it every message is one line of JSON, the settings first (secrets
included: never in the environment). `ChildProcess` starts a child, restarts it with
backoff when it exits (or cannot be started, or its socket fails or says what is not
JSON), and stops it with the worker. A child dies with the worker, even by SIGKILL
(`stream_apps.child_side`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from mode import Service
from pydantic import SecretStr

from stream_apps.child_side import FD_ENV, LOGLEVEL_ENV, PARENT_ENV
from stream_apps.health import Backoff, Health
from stream_apps.settings import WorkerSettings

log = logging.getLogger(__name__)

STOP_GRACE_S = 20.0  # a child still running this long after SIGTERM is killed


def settings_line(settings: WorkerSettings) -> bytes:
    """The settings as one line of JSON, secrets included (for the socket, never a file)."""
    doc: dict[str, Any] = {}
    for name, value in settings.model_dump().items():
        doc[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return orjson.dumps({"settings": doc}, default=str) + b"\n"


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


@dataclass
class ChildStatus:
    """What /health says of a child process: its pid, whether it is ready, its restarts."""

    pid: int | None = None
    restarts: int = 0
    ready: bool = False


StatusT = TypeVar("StatusT", bound=ChildStatus)


class ChildProcess(Service, Generic[StatusT]):
    """Runs `command` as a child of this process for as long as the worker runs.

    While the child is not running, `health` has `component` down (so /health is
    degraded); a subclass marks it up again when the child says it is ready.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        health: Health,
        status: StatusT,
        *,
        name: str,
        component: str,
        command: list[str],
        loglevel: str = "info",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.health = health
        self.status = status
        self.name = name  # in log lines: "figures process", "stage process 2"
        self.component = component
        self.command = command
        self.loglevel = loglevel
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._stopping = False

    def receive(self, message: dict[str, Any]) -> None:
        """One message from the child."""
        raise NotImplementedError

    def child_started(self) -> None:
        """The child has its settings (a subclass may tell it more)."""

    def tell(self, message: dict[str, Any]) -> None:
        """Send one message to the child (lost if none runs: a new one is told on start)."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode(message))

    def connected(self) -> bool:
        """Whether the child is running and its socket open (and not being stopped)."""
        return self._writer is not None and not self._writer.is_closing() and not self._stopping

    def stopping(self) -> None:
        """The worker is stopping this child (a subclass may tell others)."""

    async def on_stop(self) -> None:
        self._stopping = True
        self.stopping()
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.warning(
                "%s %d still running %.0f s after SIGTERM: killed",
                *(self.name, proc.pid, STOP_GRACE_S),
            )
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("%s %d stopped (exit code %s)", self.name, proc.pid, proc.returncode)

    @Service.task
    async def _supervise(self) -> None:
        backoff = Backoff(first=0.5, cap=self.settings.retry_max_s)
        while not self.should_stop and not self._stopping:
            started = time.monotonic()
            code = await self._run_once()
            if self.should_stop or self._stopping:
                return
            self.status.ready = False
            self.health.failed(self.component, RuntimeError(f"{self.name} exited with {code}"))
            if time.monotonic() - started > 60:
                backoff.reset()
            await asyncio.sleep(backoff.next())
            self.status.restarts += 1
            log.warning("%s: starting it again (restart %d)", self.name, self.status.restarts)

    async def _run_once(self) -> int | None:
        """Run the child until it exits; return its exit code (None: it could not start)."""
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
            log.error("%s: cannot start %s: %r", self.name, self.command[0], exc)
            return None
        finally:
            theirs.close()
        self.status.pid = proc.pid
        log.info("%s %d started", self.name, proc.pid)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        try:
            writer.write(settings_line(self.settings))
            await writer.drain()
            self._writer = writer
            self.child_started()
            while True:
                line = await reader.readline()
                if not line:
                    break
                self.receive(orjson.loads(line))
        except (OSError, ValueError) as exc:  # orjson's decode error is a ValueError
            # A child we cannot hear is stopped, and started again by the supervisor.
            log.warning("%s %d: its socket failed: %r", self.name, proc.pid, exc)
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        finally:
            self._writer = None
            writer.close()
        code = await proc.wait()
        if not self._stopping:
            log.error("%s %d exited with code %s", self.name, proc.pid, code)
        return code
