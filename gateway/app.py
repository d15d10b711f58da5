"""The gateway's ASGI app: `POST /v1/events` for agency systems, `GET /v1/health`.

Each request goes through, in order: the token (401), the media type (415), the size
(413), the body's JSON (400, or 413 beyond the event count), the agency's rate limit (429),
the agency of every event (403), the contract (400), and the broker's acknowledgement of
every event (202, or 503 with what was acknowledged). Whatever refuses a request refuses
all of it: nothing of a refused request is published. One log line per request names the
agency, the token id (never the token), the event count and the status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from gateway import batch, body
from gateway.errors import BodyError, TokenFileError, TooLargeError
from gateway.models import (
    Accepted,
    DeliveryStatus,
    EventProblems,
    EventResult,
    FieldProblem,
    Forbidden,
    Health,
    Invalid,
    NotAcknowledged,
    Problem,
    RateLimited,
)
from gateway.ratelimit import RateLimiter, retry_after
from gateway.sender import Sender, SenderUnavailable
from gateway.settings import GatewaySettings
from gateway.tokens import TokenBook, TokenEntry
from producers.publisher import partition_for
from schemas.events import DossierEvent
from schemas.registry import AgencyRegistry

log = logging.getLogger("gateway")

EVENTS = "/v1/events"
# Module level: the endpoint's annotation names it (annotations are read as strings).
bearer = HTTPBearer(auto_error=False, description="the agency's API token (dsg_…)")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dossier-stream"'}

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_CHALLENGE = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": Accepted, "description": "every event acknowledged by the broker"},
    400: {"model": Invalid, "description": "a body that is no JSON, or invalid events"},
    401: {"model": Problem, "description": "no token, or an unknown one", "headers": _CHALLENGE},
    403: {"model": Forbidden, "description": "events for another agency than the token's"},
    413: {"model": Problem, "description": "a body over the size or event-count limit"},
    415: {"model": Problem, "description": "neither application/json nor application/x-ndjson"},
    429: {"model": RateLimited, "description": "the agency's rate limit", "headers": _RETRY_AFTER},
    503: {"model": NotAcknowledged, "description": "the broker did not acknowledge in time"},
}
DESCRIPTION = """\
Agency systems (one-stop-shop web apps of departments and communes) send dossier events
over HTTPS with their agency's API token. Every event must satisfy the event contract
(docs/event-contract.md) and name the token's agency. A request is published whole or not
at all; the 202 answer comes after the broker acknowledged every event. See docs/gateway.md.
"""


def _json(status: int, model: BaseModel, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status, headers=headers)


def create_app(
    settings: GatewaySettings,
    sender: Sender,
    tokens: Callable[[], TokenBook],
    *,
    registry: AgencyRegistry | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The app: `tokens()` gives the accepted tokens (read on each request), `sender` Kafka."""
    registry = registry or AgencyRegistry.default()
    limiter = RateLimiter(settings.gateway_rate_per_s, settings.gateway_burst, clock)
    signer = settings.signer_pair

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(sender.close)

    app = FastAPI(
        title="dossier-stream gateway",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings

    def publish(agency: str, items: list[Any]) -> tuple[int, BaseModel]:
        """Check and send one request's items (in a worker thread: validation is CPU)."""
        checked = batch.check(items, agency, registry)
        if isinstance(checked, batch.Forbidden):
            shown = ", ".join(str(i) for i in checked.indexes[:20])
            more = "…" if len(checked.indexes) > 20 else ""
            return 403, Forbidden(
                error=f"{len(checked.indexes)} event(s) name an agency other than {agency} "
                f"(agency.code), at index {shown}{more}; nothing was published",
                agency=agency,
                indexes=checked.indexes,
            )
        if isinstance(checked, batch.Invalid):
            return 400, _invalid(checked)
        try:
            partitions = sender.partitions()
        except SenderUnavailable as exc:
            return 503, NotAcknowledged(error=f"{exc}; nothing was published")
        records = batch.records(items, checked, partitions, partition_for, signer)
        deliveries = sender.send(records, settings.gateway_ack_timeout_s)
        if all(d.acknowledged for d in deliveries):
            return 202, Accepted(
                agency=agency,
                count=len(records),
                events=[
                    EventResult(
                        index=r.index,
                        event_id=r.event_id,
                        dossier_id=r.dossier_id,
                        partition=d.partition or 0,
                        offset=d.offset or 0,
                    )
                    for r, d in zip(records, deliveries, strict=True)
                ],
            )
        missing = sum(1 for d in deliveries if not d.acknowledged)
        return 503, NotAcknowledged(
            error=f"the broker did not acknowledge {missing} of {len(records)} event(s) within "
            f"{settings.gateway_ack_timeout_s:g} s: resend those not acknowledged",
            events=[
                DeliveryStatus(
                    index=r.index,
                    event_id=r.event_id,
                    dossier_id=r.dossier_id,
                    status="acknowledged" if d.acknowledged else "not_acknowledged",
                    partition=d.partition,
                    offset=d.offset,
                )
                for r, d in zip(records, deliveries, strict=True)
            ],
        )

    @app.post(
        EVENTS,
        status_code=202,
        response_model=Accepted,
        responses=RESPONSES,
        openapi_extra={"requestBody": _request_body(settings.gateway_max_events)},
    )
    async def post_events(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Any:
        """Publish one event, a JSON array of events, or JSON Lines, for the token's agency."""
        started = time.perf_counter()
        entry: TokenEntry | None = None
        count = 0

        def done(status: int, response: JSONResponse, note: str = "") -> JSONResponse:
            who = f"agency={entry.agency} token={entry.id}" if entry else "agency=-"
            log.info(
                "POST %s %s events=%d status=%d %.1f ms%s",
                EVENTS,
                who,
                count,
                status,
                (time.perf_counter() - started) * 1000,
                f" ({note})" if note else "",
            )
            return response

        try:
            book = tokens()
        except TokenFileError as exc:
            log.error("%s", exc)
            unreadable = NotAcknowledged(error="the gateway cannot read its tokens; try again")
            return done(503, _json(503, unreadable), "tokens file unreadable")
        if credentials is None:
            problem = Problem(error="no API token: send `Authorization: Bearer <token>`")
            return done(401, _json(401, problem, CHALLENGE), "no token")
        entry = book.verify(credentials.credentials)
        if entry is None:
            problem = Problem(error="unknown or revoked API token")
            return done(401, _json(401, problem, CHALLENGE), "unknown token")
        try:
            kind = body.media_type(request.headers.get("content-type"))
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit():
                body.check_size(int(declared), settings.gateway_max_body_bytes)
            raw = await _read_limited(request, settings.gateway_max_body_bytes)
            items = body.parse_body(raw, kind, settings.gateway_max_events)
        except body.UnsupportedMediaType as exc:
            return done(415, _json(415, Problem(error=str(exc))))
        except TooLargeError as exc:
            return done(413, _json(413, Problem(error=str(exc))))
        except BodyError as exc:
            return done(400, _json(400, Invalid(error=str(exc))))
        count = len(items)
        wait = limiter.take(entry.agency, count)
        if wait > 0:
            seconds = retry_after(wait)
            limited = RateLimited(
                error=f"agency {entry.agency} is over its rate limit of "
                f"{settings.gateway_rate_per_s:g} events/s (burst {settings.gateway_burst}); "
                f"retry after {seconds} s",
                retry_after_s=seconds,
            )
            return done(429, _json(429, limited, {"Retry-After": str(seconds)}))
        status, result = await run_in_threadpool(publish, entry.agency, items)
        return done(status, _json(status, result))

    @app.get("/v1/health")
    async def health() -> Health:
        """Liveness: `ok` while the process serves requests (it does not ask the broker)."""
        return Health()

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default_openapi()
            event = DossierEvent.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(event.pop("$defs", {}))
            components["DossierEvent"] = event
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _invalid(invalid: batch.Invalid) -> Invalid:
    events = [
        EventProblems(
            index=index,
            errors=[FieldProblem(field=e.field, message=e.message, value=e.value) for e in errors],
        )
        for index, errors in sorted(invalid.errors.items())
    ]
    first = events[0]
    where = ", ".join(e.field for e in first.errors)
    return Invalid(
        error=f"{len(events)} event(s) do not satisfy the contract (first: index {first.index}, "
        f"{where}); nothing was published",
        events=events,
    )


async def _read_limited(request: Request, max_bytes: int) -> bytes:
    """The body, stopping (413) as soon as it is over `max_bytes`."""
    parts = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        body.check_size(size, max_bytes)
        parts.append(chunk)
    return b"".join(parts)


def _request_body(max_events: int) -> dict[str, Any]:
    event = {"$ref": "#/components/schemas/DossierEvent"}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        event,
                        {"type": "array", "items": event, "minItems": 1, "maxItems": max_events},
                    ]
                }
            },
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "description": "one DossierEvent (JSON object) per line",
                }
            },
        },
    }
