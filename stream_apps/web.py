"""The worker's health and metrics endpoint, served by its first process.

`/health` says what all of the worker's processes are doing: the dossier stage's state in
every stage process (`stream_apps.stage_group`), and what the figures process last
reported (`stream_apps.figures_link`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from mode import Service

from common import native
from stream_apps.book import rust_book_loaded
from stream_apps.figures_link import FiguresStatus
from stream_apps.metrics import CONTENT_TYPE, WorkerMetrics
from stream_apps.stage_group import StageGroup


def health_report(stages: StageGroup, figures: FiguresStatus) -> dict[str, Any]:
    """The body of /health."""
    down = {**figures.down, **stages.down()}  # the figures process's, and the stages'
    status = "degraded" if down else "ok"
    if not stages.ready():
        status = "starting"
    return {
        "status": status,
        "down": dict(sorted(down.items())),
        "partitions": stages.partitions(),
        "counts": stages.counts(),
        "dossiers": stages.dossiers(),
        "native": native.active,
        "figure_book": "rust" if rust_book_loaded() else "python",
        "clock": stages.clock(),
        "last_flush_s": figures.last_flush_s,
        "figures_keys": figures.figures_keys,
        "counts_sources": figures.counts_sources,
        "figures_process": {
            "pid": figures.pid,
            "ready": figures.ready,
            "restarts": figures.restarts,
        },
        "stage_processes": stages.processes(),
    }


class WebService(Service):
    """Serves /health and /metrics on `host`:`port`."""

    def __init__(
        self,
        host: str,
        port: int,
        stages: StageGroup,
        figures: FiguresStatus,
        metrics: WorkerMetrics,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.host, self.port = host, port
        self.stages, self.figures, self.metrics = stages, figures, metrics
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(health_report(self.stages, self.figures))

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type=CONTENT_TYPE)
