"""Outage bookkeeping: one log line as an outage starts, one as it ends, none per retry."""

from __future__ import annotations

import logging

import pytest

from stream_apps.health import Backoff, Health, Throttle


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = Health()
    with caplog.at_level(logging.INFO, logger="stream_apps.health"):
        for _ in range(50):
            health.failed("redis", ConnectionError("refused"))
        assert health.status(ready=True) == "degraded"
        assert list(health.report()) == ["redis"]
        health.ok("redis")
        health.ok("redis")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "redis unreachable" in lines[0] and "redis is back" in lines[1]
    assert "50 retries" in lines[1]
    assert health.retries == {"redis": 50} and health.status(ready=True) == "ok"


def test_status_is_starting_until_ready() -> None:
    health = Health()
    health.failed("kafka", TimeoutError())
    assert health.status(ready=False) == "starting"


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(first=0.5, cap=3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_throttle_lets_each_message_through_once_per_interval() -> None:
    throttle = Throttle(interval_s=3600)

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, msg, None, None)

    verdicts = [throttle.filter(record("Unable to connect %s")) for _ in range(100)]
    assert verdicts == [True] + [False] * 99
    assert throttle.filter(record("another message")) is True
