"""Webhook delivery (`stream_apps.webhooks.deliver`): what is retried, how long it waits,
what becomes a dead letter. A fake `post` answers; `sleep` only records the waits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest

from schemas.alerts import AlertEvent
from stream_apps.webhooks import Undelivered, deliver

OK = "http://receiver.example/ok"
BAD = "http://receiver.example/bad"
AT = datetime(2026, 4, 8, 4, 0, tzinfo=UTC)
EVENT = AlertEvent(
    id="013a67ed-da4e-5755-95d2-d41a259cb2be",
    incident_id="f86da63d-a4d9-5d85-8d82-d6b827eb09af",
    kind="overdue_spike",
    scope="agency:SO-YTE",
    agency="SO-YTE",
    agency_name="Sở Y tế",
    severity="critical",
    action="opened",
    at=AT,
    opened_at=AT,
    figures={"became_overdue": 14},
    baseline={"open_level": 5, "close_line": 3},
)

Answer = int | BaseException


class FakePost:
    """Answers each URL from its own script of statuses or exceptions; the last one repeats."""

    def __init__(self, scripts: dict[str, Iterable[Answer]]) -> None:
        self.scripts = {url: list(answers) for url, answers in scripts.items()}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, url: str, body: dict[str, Any]) -> int:
        self.calls.append((url, body))
        script = self.scripts[url]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def tries(self, url: str) -> int:
        return sum(1 for u, _ in self.calls if u == url)


def run(
    post: FakePost, urls: list[str], *, retries: int = 3, backoff_s: float = 1.0
) -> tuple[list[Undelivered], list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    failed = asyncio.run(
        deliver(post, urls, EVENT, retries=retries, backoff_s=backoff_s, sleep=sleep)
    )
    return failed, waits


@pytest.mark.parametrize("status", [200, 202, 204, 299])
def test_a_2xx_is_delivered_at_the_first_attempt(status: int) -> None:
    post = FakePost({OK: [status]})
    failed, waits = run(post, [OK])
    assert failed == []
    assert post.tries(OK) == 1
    assert waits == []


def test_the_body_is_the_alertmanager_webhook_of_the_event() -> None:
    post = FakePost({OK: [200]})
    run(post, [OK])
    ((url, body),) = post.calls
    assert url == OK
    assert body["version"] == "4" and body["status"] == "firing"
    (alert,) = body["alerts"]
    assert alert["annotations"]["alert_id"] == "013a67ed-da4e-5755-95d2-d41a259cb2be"
    assert alert["fingerprint"] == "f86da63d-a4d9-5d85-8d82-d6b827eb09af"


def test_a_500_then_a_200_is_delivered_after_one_retry() -> None:
    post = FakePost({OK: [500, 200]})
    failed, waits = run(post, [OK])
    assert failed == []
    assert post.tries(OK) == 2
    assert waits == [1.0]


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_timeouts_throttling_and_server_errors_are_retried(status: int) -> None:
    post = FakePost({OK: [status, status, 200]})
    failed, _ = run(post, [OK])
    assert failed == []
    assert post.tries(OK) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_a_4xx_is_refused_for_good_and_not_retried(status: int) -> None:
    post = FakePost({OK: [status, 200]})
    failed, waits = run(post, [OK])
    assert failed == [Undelivered(OK, 1, f"HTTP {status}", EVENT)]
    assert post.tries(OK) == 1
    assert waits == []


def test_a_404_names_the_status() -> None:
    failed, _ = run(FakePost({OK: [404]}), [OK])
    assert [f.reason for f in failed] == ["HTTP 404"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            aiohttp.ClientConnectionError("connection refused"),
            "ClientConnectionError: connection refused",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "ConnectionRefusedError: [Errno 111] Connection refused",
        ),
        (TimeoutError(), "TimeoutError"),
    ],
)
@pytest.mark.parametrize("retries", [0, 1, 3])
def test_a_network_error_every_time_is_tried_retries_plus_one_times(
    error: BaseException, reason: str, retries: int
) -> None:
    post = FakePost({OK: [error]})
    failed, waits = run(post, [OK], retries=retries)
    assert post.tries(OK) == retries + 1
    assert failed == [Undelivered(OK, retries + 1, reason, EVENT)]
    assert len(waits) == retries  # no wait after the last attempt


def test_a_server_error_every_time_ends_undelivered_with_the_last_status() -> None:
    post = FakePost({OK: [503]})
    failed, _ = run(post, [OK], retries=2)
    assert failed == [Undelivered(OK, 3, "HTTP 503", EVENT)]


@pytest.mark.parametrize(
    ("backoff_s", "retries", "expected"),
    [
        (1.0, 4, [1, 2, 4, 8]),
        (0.5, 3, [0.5, 1, 2]),
        (2.0, 1, [2]),
        (1.0, 0, []),
    ],
)
def test_the_waits_between_attempts_double(
    backoff_s: float, retries: int, expected: list[float]
) -> None:
    _, waits = run(FakePost({OK: [500]}), [OK], retries=retries, backoff_s=backoff_s)
    assert waits == expected


def test_of_two_urls_only_the_failing_one_is_undelivered() -> None:
    post = FakePost({OK: [200], BAD: [500]})
    failed, _ = run(post, [BAD, OK], retries=2)
    assert failed == [Undelivered(BAD, 3, "HTTP 500", EVENT)]
    assert post.tries(OK) == 1 and post.tries(BAD) == 3


def test_a_failing_url_first_does_not_stop_the_next_one_from_being_tried() -> None:
    post = FakePost({BAD: [aiohttp.ClientConnectionError("reset")], OK: [200]})
    failed, _ = run(post, [BAD, OK], retries=1)
    assert [f.url for f in failed] == [BAD]
    assert post.tries(OK) == 1


def test_the_dead_letter_record_names_url_attempts_reason_and_the_alert() -> None:
    record = orjson.loads(Undelivered(BAD, 3, "HTTP 503", EVENT).record())
    assert record["url"] == BAD and record["attempts"] == 3 and record["reason"] == "HTTP 503"
    assert AlertEvent.model_validate(record["alert"]) == EVENT
    failed_at = datetime.fromisoformat(record["failed_at"])
    assert failed_at.tzinfo is not None
