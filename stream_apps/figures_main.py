"""The figures process of a worker: its composition root (see `stream_apps.figures_link`).

Started by the worker's dossier stage process, never by hand: it reads its settings from
the socket the stage process gave it (`DOSSIER_FIGURES_FD`), runs the figures stage (the
Faust app of `stream_apps.app`: the merge agent, the Redis writer, the alert rules and
their webhooks) and reports to the stage process over the same socket. It dies with the
stage process: Linux sends it SIGKILL when its parent ends, however the parent ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from common import native

if TYPE_CHECKING:  # imported in the functions: after `native.activate()`
    import faust

    from stream_apps.settings import WorkerSettings

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent ends (Linux); exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        raise SystemExit("figures process: the worker that started it is gone")


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("figures process: the worker closed the socket before the settings")
        data += chunk
    return data


def main() -> int:
    from stream_apps.figures_link import FD_ENV, LOGLEVEL_ENV, PARENT_ENV

    fd, parent = os.environ.get(FD_ENV), os.environ.get(PARENT_ENV)
    if fd is None or parent is None:
        print(
            "stream_apps.figures_main is started by `dossier-stream worker`, not by hand",
            file=sys.stderr,
        )
        return 2
    _die_with_parent(int(parent))
    native.activate()  # before the figures stage imports the compiled core
    import orjson

    sock = socket.socket(fileno=int(fd))
    doc = orjson.loads(_read_line(sock))["settings"]

    from stream_apps.settings import WorkerSettings

    settings = WorkerSettings(**doc)
    loglevel = os.environ.get(LOGLEVEL_ENV, "info")
    build_figures_worker(settings, sock, loglevel).execute_from_commandline()
    return 0


def build_figures_worker(
    settings: WorkerSettings, sock: socket.socket, loglevel: str = "info"
) -> faust.Worker:
    """The figures stage's objects: registry, calendar, Redis sink, alert engine, app."""
    import faust

    from common.connections import async_redis_client
    from domain.alerts import DEFAULT_THRESHOLDS
    from domain.calendar import WorkingCalendar
    from schemas.registry import AgencyRegistry
    from stream_apps.alerting import AgencyInfo, AlertEngine
    from stream_apps.app import create_app
    from stream_apps.health import quiet_client_logs
    from stream_apps.sink import RedisSink
    from stream_apps.stage_link import StageLink
    from stream_apps.worker_cmd import load_thresholds

    quiet_client_logs()
    registry = AgencyRegistry.default()

    def level_of(code: str) -> str | None:
        agency = registry.get(code)
        return agency.level.value if agency else None

    def agency_info(code: str) -> AgencyInfo | None:
        agency = registry.get(code)
        return AgencyInfo(agency.level.value, agency.name) if agency else None

    sink = RedisSink(
        async_redis_client(
            settings,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        ),
        settings.redis_prefix,
        level_of=level_of,
        target=settings.online_target,
        target_window=settings.target_window,
        clock_mode=settings.clock,
    )
    alerts = None
    if settings.alerts:
        thresholds = DEFAULT_THRESHOLDS
        if settings.alerts_thresholds_file is not None:
            thresholds = load_thresholds(settings.alerts_thresholds_file)
        alerts = AlertEngine(thresholds, WorkingCalendar(), agency_info)
    link = StageLink(settings, sock)
    app = create_app(settings, link, sink, alerts)
    return faust.Worker(app, link, loglevel=loglevel, quiet=True, redirect_stdouts=False)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
