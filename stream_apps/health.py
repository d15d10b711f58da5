"""What the worker cannot reach now; one log line as an outage starts and one as it ends."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Outage:
    """One service unreachable since `since` (epoch seconds), with the last error seen."""

    since: float
    error: str
    retries: int = 0


@dataclass
class Health:
    """Outages by component ("kafka", "redis") and retry counts, for /health and /metrics."""

    down: dict[str, Outage] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)

    def failed(self, component: str, exc: BaseException) -> None:
        """A call to `component` failed and will be retried."""
        self.retries[component] = self.retries.get(component, 0) + 1
        error = f"{type(exc).__name__}: {exc}"[:300]
        outage = self.down.get(component)
        if outage is None:
            self.down[component] = Outage(time.time(), error, 1)
            log.warning(
                "%s unreachable (%s): retrying with backoff until it is back", component, error
            )
        else:
            outage.retries += 1
            outage.error = error

    def ok(self, component: str) -> None:
        """A call to `component` succeeded."""
        outage = self.down.pop(component, None)
        if outage is not None:
            log.warning(
                "%s is back after %.1f s (%d retries)",
                component,
                time.time() - outage.since,
                outage.retries,
            )

    def status(self, ready: bool) -> str:
        if not ready:
            return "starting"
        return "degraded" if self.down else "ok"

    def report(self) -> dict[str, dict[str, object]]:
        return {
            name: {"since": o.since, "seconds": round(time.time() - o.since, 1), "error": o.error}
            for name, o in sorted(self.down.items())
        }


class Backoff:
    """Delays that double from `first` up to `cap` seconds, reset on success."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.delay = self.first


class Throttle(logging.Filter):
    """Lets each message of a logger through at most once per `interval_s`.

    Kafka's client logs every failed reconnect (tens of thousands of lines in a minute of
    broker outage); `Health` already says once when an outage starts and once when it
    ends, so the client's repeats are noise.
    """

    def __init__(self, interval_s: float = 60.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[key] = now
        return True


def quiet_client_logs(prefixes: tuple[str, ...] = ("aiokafka", "faust.transport")) -> Throttle:
    """Throttle the repeated messages of the Kafka client loggers (existing ones included)."""
    throttle = Throttle()
    names = [n for n in logging.root.manager.loggerDict if n.startswith(prefixes)]
    for name in {*names, *prefixes}:
        logging.getLogger(name).addFilter(throttle)
    return throttle
