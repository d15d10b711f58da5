"""The figures process of a worker: its composition root (see `stream_apps.figures_link`).

Started by the worker, never by hand: it reads its settings from the socket the worker
gave it (`stream_apps.child_side`), runs the figures stage (the Faust app of
`stream_apps.app`: the merge agent, the Redis writer, the alert rules and their
webhooks) and reports to the worker over the same socket. It dies with the worker's
first process: Linux sends it SIGKILL when its parent ends, however the parent ends.
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

from stream_apps.child_side import run

if TYPE_CHECKING:  # imported in the functions: after `native.activate()`
    import faust

    from stream_apps.settings import WorkerSettings


def main() -> int:
    return run("figures process", "stream_apps.figures_main", build_figures_worker)


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
