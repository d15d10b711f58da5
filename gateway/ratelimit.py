"""Per-agency rate limits: a token bucket of events, refilled at a steady rate.

Each agency has a bucket that holds at most `burst` events' worth of allowance and gains
`rate` per second. A request of n events is let through when the bucket holds n, which it
then loses; otherwise it is refused and told how long until the bucket holds n. Decisions:
- the cost is the number of events, not of requests (a batch of 1,000 weighs 1,000);
- a refused request takes nothing from the bucket;
- `burst` must be at least the largest allowed request, or such a request could never pass
  (`GatewaySettings` checks it).
The clock is passed in (monotonic seconds), so that the arithmetic is tested without time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """The allowance of one agency: `level` events available at time `at`."""

    rate: float
    burst: float
    level: float
    at: float

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.level = min(self.burst, self.level + (now - self.at) * self.rate)
            self.at = now

    def take(self, cost: float, now: float) -> float:
        """Take `cost` if available: 0.0; otherwise the seconds until it will be."""
        self._refill(now)
        if cost <= self.level:
            self.level -= cost
            return 0.0
        if cost > self.burst:
            return math.inf
        return (cost - self.level) / self.rate


class RateLimiter:
    """One token bucket per agency, each starting full."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, agency: str, events: int) -> float:
        """0.0 when `agency` may send `events` now (and they are counted), else the wait."""
        now = self._clock()
        bucket = self._buckets.get(agency)
        if bucket is None:
            bucket = self._buckets[agency] = TokenBucket(self.rate, self.burst, self.burst, now)
        return bucket.take(events, now)


def retry_after(wait_s: float) -> int:
    """The Retry-After header's whole seconds for a wait: rounded up, at least 1."""
    return max(1, math.ceil(wait_s))
