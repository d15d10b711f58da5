"""The token bucket: `burst` events at once, then `rate` events per second."""

from __future__ import annotations

import math

import pytest

from gateway.ratelimit import RateLimiter, TokenBucket, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# (rate, burst, [(advance s, cost, expected wait)]): expected from the rule, by hand.
CASES = [
    # A full bucket of 10 lets 10 through at once, then the 11th waits 1/rate.
    (5.0, 10, [(0, 10, 0.0), (0, 1, 0.2)]),
    # After 1 s at 5/s, 5 are back: 5 pass, a 6th needs 0.2 s more.
    (5.0, 10, [(0, 10, 0.0), (1.0, 5, 0.0), (0, 1, 0.2)]),
    # The bucket never holds more than the burst, however long the pause.
    (5.0, 10, [(0, 10, 0.0), (3600, 10, 0.0), (0, 1, 0.2)]),
    # A refused request takes nothing: 4 held, 6 refused (wait (6-4)/2), 4 still pass.
    (2.0, 10, [(0, 6, 0.0), (0, 6, 1.0), (0, 4, 0.0)]),
    # A request larger than the burst can never pass.
    (100.0, 10, [(0, 11, math.inf)]),
]


@pytest.mark.parametrize(("rate", "burst", "steps"), CASES)
def test_bucket(rate: float, burst: int, steps: list[tuple[float, int, float]]) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, burst, burst, clock.now)
    for advance, cost, expected in steps:
        clock.now += advance
        assert bucket.take(cost, clock.now) == pytest.approx(expected)


def test_each_agency_has_its_own_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=3, clock=clock)
    assert limiter.take("SO-XD", 3) == 0.0
    assert limiter.take("SO-XD", 1) == pytest.approx(1.0)
    assert limiter.take("SO-YTE", 3) == 0.0  # another agency is not slowed down
    clock.now += 2.5
    assert limiter.take("SO-XD", 2) == 0.0
    assert limiter.take("SO-XD", 1) == pytest.approx(0.5)


@pytest.mark.parametrize(("wait", "header"), [(0.01, 1), (1.0, 1), (1.2, 2), (59.5, 60)])
def test_retry_after_rounds_up_to_whole_seconds(wait: float, header: int) -> None:
    assert retry_after(wait) == header


def test_rate_and_burst_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 10, Clock())
