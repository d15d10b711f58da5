"""The dashboard's ASGI app: HTML pages, a JSON API and server-sent events, all from Redis.

It reads only Redis (never Kafka). Every view is read in one transaction with
`{prefix}:meta`, and answers with the watermark (`offsets`) its figures are as of. When
Redis does not answer, the API says so in a 503 `{"error": "…"}` and the page shows the
same line and retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import redis
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sse_starlette.sse import EventSourceResponse

from common.connections import async_redis_client, redis_client
from dashboard import pages
from dashboard.reader import Reader
from dashboard.settings import DashboardSettings
from schemas.registry import AgencyRegistry
from schemas.serving import (
    AgencyResponse,
    AlertsResponse,
    BelowTargetResponse,
    ErrorResponse,
    MetaResponse,
    OverviewResponse,
    RankingResponse,
    ScopeResponse,
    SeriesResponse,
    alerts_channel,
    updates_channel,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
API = "/api/v1"
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

Window = Literal["1h", "24h", "7d", "30d", "mtd", "qtd", "ytd"]
Level = Literal["city", "commune"]
RankMetric = Literal["online_ratio", "overdue_now"]
ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "Redis unreachable"},
}
T = TypeVar("T")


class NotFound(Exception):
    """What was asked for has no figures (an unknown agency, a scope never written)."""


def redis_unreachable(url: str, exc: BaseException) -> str:
    """The one line the API and the page give when Redis does not answer."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return f"Redis unreachable at {url} ({detail}); the figures cannot be read"


def create_app(
    settings: DashboardSettings | None = None, registry: AgencyRegistry | None = None
) -> FastAPI:
    """The app, reading the Redis of `settings` with the agencies of `registry`."""
    settings = settings or DashboardSettings()
    registry = registry or AgencyRegistry.default()
    timeout = settings.redis_timeout_s
    client = redis_client(
        settings,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )
    reader = Reader(client, settings.redis_prefix, registry, settings.online_target)
    app = FastAPI(
        title="dossier-stream dashboard API",
        version="1",
        description="The worker's live dossier figures as Redis holds them "
        "(docs/redis-contract.md), each response read in one transaction and stamped with "
        "its watermark (`offsets`). "
        "See docs/dashboard.md.",
    )
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    async def read(call: Callable[[], T]) -> T:
        return await run_in_threadpool(call)

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def _redis_down(request: Request, exc: Exception) -> Response:
        message = redis_unreachable(settings.redis_url, exc)
        log.warning("%s", message)
        if request.url.path.startswith("/api/") or request.query_params.get("fragment"):
            return JSONResponse({"error": message}, status_code=503)
        return HTMLResponse(pages.error_page(message), status_code=503)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=404)

    # -- pages -------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def overview_page(
        window: Window | None = None,
        sort: str | None = None,
        dir: str | None = None,
        level: str | None = None,
        fragment: bool = False,
    ) -> HTMLResponse:
        data = await read(lambda: reader.overview(window))
        body = pages.overview_fragment(data, pages.TableView.parse(sort, dir, level))
        return _html(body if fragment else pages.page(body))

    @app.get("/agency/{code}", response_class=HTMLResponse, include_in_schema=False)
    async def agency_page(
        code: str, window: Window | None = None, fragment: bool = False
    ) -> HTMLResponse:
        data = await read(lambda: reader.agency(code, window))
        if data is None:
            return HTMLResponse(
                pages.page(f"<p>Không có đơn vị <span class='en'>no agency</span> {code!s}</p>"),
                status_code=404,
            )
        body = pages.agency_fragment(data)
        return _html(body if fragment else pages.page(body, data.agency.name))

    # -- the JSON API ------------------------------------------------------------------

    @app.get(f"{API}/meta", responses=ERRORS)
    async def meta() -> MetaResponse:
        """The worker's meta hash and its watermark."""
        return await read(reader.meta)

    @app.get(f"{API}/overview", responses=ERRORS)
    async def overview(window: Window | None = None) -> OverviewResponse:
        """Everything the city page shows: city figures, every agency with its marks, the
        city's series and the alerts; `window` defaults to the worker's target window."""
        return await read(lambda: reader.overview(window))

    @app.get(f"{API}/scopes/{{scope}}", responses={**ERRORS, 404: {"model": ErrorResponse}})
    async def scope(scope: str) -> ScopeResponse:
        """One scope's figures: `city`, `level:city`, `level:commune`, `agency:{code}`,
        `field:{field}`."""
        found = await read(lambda: reader.scope(scope))
        if found is None:
            raise NotFound(f"no figures for scope {scope!r}")
        return found

    @app.get(f"{API}/series/{{scope}}", responses=ERRORS)
    async def series(scope: str) -> SeriesResponse:
        """A scope's hourly (168 h) and daily (90 d) series; zero buckets are left out."""
        return await read(lambda: reader.series(scope))

    @app.get(f"{API}/rankings/{{metric}}/{{level}}", responses=ERRORS)
    async def ranking(
        metric: RankMetric, level: Level, limit: Annotated[int | None, Query(ge=1)] = None
    ) -> RankingResponse:
        """Agencies of a level by online ratio (target window) or overdue now, highest first."""
        return await read(lambda: reader.ranking(metric, level, limit))

    @app.get(f"{API}/below-target", responses=ERRORS)
    async def below_target() -> BelowTargetResponse:
        """City bodies whose online ratio over the target window is below the target."""
        return await read(reader.below_target)

    @app.get(f"{API}/alerts", responses=ERRORS)
    async def alerts(limit: Annotated[int, Query(ge=1, le=500)] = 20) -> AlertsResponse:
        """Alerts open now and the latest `limit` alert events, newest first."""
        return await read(lambda: reader.alerts(limit))

    @app.get(f"{API}/agencies/{{code}}", responses={**ERRORS, 404: {"model": ErrorResponse}})
    async def agency(code: str, window: Window | None = None) -> AgencyResponse:
        """Everything an agency's page shows."""
        found = await read(lambda: reader.agency(code, window))
        if found is None:
            raise NotFound(f"no agency {code!r} in the registry")
        return found

    @app.get(f"{API}/health", responses=ERRORS)
    async def health() -> dict[str, str]:
        """`ok` when Redis answers."""
        await read(client.ping)
        return {"status": "ok"}

    @app.get(f"{API}/events", include_in_schema=True, response_class=Response)
    async def events(request: Request) -> EventSourceResponse:
        """Server-sent events: `update` (the worker's update notice, JSON) after each flush,
        `alert` (an AlertEvent, JSON) as each is stored; `error` when Redis is lost."""
        return EventSourceResponse(_relay(request, settings), ping=15)

    return app


def _html(body: str) -> HTMLResponse:
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


async def _relay(request: Request, settings: DashboardSettings) -> AsyncIterator[dict[str, Any]]:
    """Relays the worker's update notices and alerts from Redis pub/sub to one browser."""
    prefix = settings.redis_prefix
    alerts = alerts_channel(prefix)
    client = async_redis_client(
        settings, decode_responses=True, socket_connect_timeout=settings.redis_timeout_s
    )
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(updates_channel(prefix), alerts)
        yield {"event": "hello", "data": json.dumps({"prefix": prefix}), "retry": 2000}
        while not await request.is_disconnected():
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            kind = "alert" if message["channel"] == alerts else "update"
            yield {"event": kind, "data": message["data"]}
    except REDIS_ERRORS as exc:
        yield {
            "event": "error",
            "data": json.dumps({"error": redis_unreachable(settings.redis_url, exc)}),
        }
    except asyncio.CancelledError:
        raise
    finally:
        try:
            await pubsub.aclose()
            await client.aclose()
        except REDIS_ERRORS:
            pass
