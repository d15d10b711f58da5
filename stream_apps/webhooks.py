"""Webhook delivery of alert events: Alertmanager-shaped POSTs with retries and a timeout.

Delivery is at least once: the worker reads the alerts topic with its consumer group and
commits only after every URL took the event or gave up, so a crash sends some events
again. Receivers drop repeats by `alerts[].annotations.alert_id` (the event's `id`).
What no retry could deliver becomes a dead-letter record with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from schemas.alerts import AlertEvent, alertmanager_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Undelivered:
    """An event one URL did not take after every attempt."""

    url: str
    attempts: int
    reason: str
    event: AlertEvent

    def record(self) -> bytes:
        return orjson.dumps(
            {
                "url": self.url,
                "attempts": self.attempts,
                "reason": self.reason,
                "failed_at": datetime.now(UTC).isoformat(),
                "alert": self.event.model_dump(mode="json"),
            }
        )


Post = Callable[[str, dict[str, Any]], Awaitable[int]]


def aiohttp_post(session: aiohttp.ClientSession, timeout_s: float) -> Post:
    """POST JSON with `session`; the HTTP status."""

    async def post(url: str, body: dict[str, Any]) -> int:
        async with session.post(
            url,
            data=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            return response.status

    return post


async def deliver(
    post: Post,
    urls: Sequence[str],
    event: AlertEvent,
    *,
    retries: int,
    backoff_s: float = 1.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[Undelivered]:
    """POST the event to every URL; retry 5xx, 429 and network errors with backoff.

    A 2xx is delivered; a 4xx other than 408 and 429 is refused for good (retrying the
    same body cannot help). Returns what was not delivered.
    """
    body = alertmanager_payload(event)
    failed: list[Undelivered] = []
    for url in urls:
        reason = ""
        attempts = 0
        for attempt in range(retries + 1):
            attempts = attempt + 1
            try:
                status = await post(url, body)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if 200 <= status < 300:
                    reason = ""
                    break
                reason = f"HTTP {status}"
                if 400 <= status < 500 and status not in (408, 429):
                    break
            if attempt < retries:
                await sleep(backoff_s * 2**attempt)
        if reason:
            log.warning(
                "alert %s not delivered to %s after %d attempt(s): %s",
                event.id,
                url,
                attempts,
                reason,
            )
            failed.append(Undelivered(url, attempts, reason, event))
    return failed
