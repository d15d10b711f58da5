"""Shared steps of the end-to-end tests: a simulated workload, publishing it, reading Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
from kafka import KafkaProducer

from domain.alerts import AlertState
from schemas.alerts import AlertEvent
from schemas.events import DossierEvent
from schemas.registry import AgencyRegistry
from schemas.serving import WorkerMeta, meta_key, scope_key, series_key
from tests.integration.workers import read_hash


def simulate(path: Path, *args: str) -> list[bytes]:
    """Run `dossier-stream simulate` to a JSON Lines file; return its lines."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dossier_stream.cli",
            "simulate",
            "--speed",
            "max",
            "--quiet",
            "--out",
            str(path),
            *args,
        ],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def publish_raw(bootstrap: str, topic: str, lines: list[bytes], keys: list[bytes | None]) -> None:
    """Send the exact bytes, keyed, as an agency system would (no validation on the way)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
    )
    futures = []
    for key, line in zip(keys, lines, strict=True):
        if len(line) > 256 * 1024:  # alone in its batch, so the batch fits the broker's limit
            producer.flush(60)
            futures.append(producer.send(topic, key=key, value=line))
            producer.flush(60)
        else:
            futures.append(producer.send(topic, key=key, value=line))
    producer.flush(60)
    producer.close()
    for future in futures:
        future.get(0)  # raises if the broker refused a record: nothing is lost silently


def events_of(lines: list[bytes]) -> list[DossierEvent]:
    return [DossierEvent.model_validate_json(line) for line in lines]


def clock_of(events: list[DossierEvent]) -> int:
    """The event-time clock the worker reaches: the latest occurred_at, whole seconds."""
    return int(max(e.occurred_at.timestamp() for e in events))


def redis_figures(client: redis.Redis, prefix: str, scopes: list[str]) -> tuple[dict, dict]:
    snapshots = {s: read_hash(client, scope_key(prefix, s)) for s in scopes}
    series = {s: read_hash(client, series_key(prefix, s)) for s in scopes}
    return snapshots, series


def wait_until_equal(read, expected, timeout_s: float):  # type: ignore[no-untyped-def]
    """Poll `read()` until it equals `expected`; return the last value read."""
    deadline = time.monotonic() + timeout_s
    got = read()
    while got != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        got = read()
    return got


def first_difference(expected: dict, got: dict) -> str:
    for scope in sorted(set(expected) | set(got)):
        e, g = expected.get(scope, {}), got.get(scope, {})
        if e != g:
            fields = sorted(k for k in set(e) | set(g) if e.get(k) != g.get(k))
            shown = ", ".join(f"{k}: expected {e.get(k)!r} got {g.get(k)!r}" for k in fields[:5])
            return f"{scope}: {len(fields)} field(s) differ: {shown}"
    return "no difference"


def meta(client: redis.Redis, prefix: str) -> dict[str, str]:
    return read_hash(client, meta_key(prefix))


def dead_letters(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list:
    """Read the dead-letter topic from the start until `expected` records (or the timeout)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=2000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    out: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < expected and time.monotonic() < deadline:
            out.extend(consumer)
    finally:
        consumer.close()
    return out


def header(record, name: str) -> str:  # type: ignore[no-untyped-def]
    """A header of a consumed record as text ("" when absent)."""
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return ""


class Publisher(threading.Thread):
    """Streams a workload in over about `pace_s` seconds, in chunks; survives broker outages.

    `hurry()` drops the pauses between the chunks still to come: once the outages the
    pace was chosen to span are over, the rest need not trickle in.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        lines: list[bytes],
        keys: list[bytes],
        *,
        pace_s: float = 4.0,
        chunks: int = 40,
    ) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.lines, self.keys = bootstrap, topic, lines, keys
        self.pace_s, self.chunks = pace_s, chunks
        self.error: BaseException | None = None
        self.sent = 0
        self._hurry = threading.Event()

    def hurry(self) -> None:
        """Send the remaining chunks one after the other, without pausing."""
        self._hurry.set()

    def run(self) -> None:
        try:
            producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                linger_ms=20,
                batch_size=256 * 1024,
                delivery_timeout_ms=300_000,
                max_block_ms=240_000,
                # Reconnect within a second of the broker's return (the client's default
                # backs off up to 30 s after an outage).
                reconnect_backoff_max_ms=1000,
            )
            chunk = max(1, -(-len(self.lines) // self.chunks))
            for start in range(0, len(self.lines), chunk):
                futures = [
                    producer.send(self.topic, key=key, value=line)
                    for key, line in zip(
                        self.keys[start : start + chunk],
                        self.lines[start : start + chunk],
                        strict=True,
                    )
                ]
                producer.flush(300)
                for future in futures:
                    future.get(0)
                self.sent += len(futures)
                self._hurry.wait(self.pace_s / self.chunks)
            producer.close()
        except BaseException as exc:  # reported by the test
            self.error = exc


# -- the whole Redis contract -----------------------------------------------------------

ALERT_KEYS = ("alerts:open", "alerts:log", "alerts:state")


def _check_alert_key(client: redis.Redis, rest: str, key: str) -> None:
    """The alert keys hold what the contract says: `AlertEvent` JSON, rule states."""
    if rest == "alerts:log":
        for _id, fields in client.xrange(key):
            event = AlertEvent.model_validate_json(_field(fields, "alert"))
            assert _field(fields, "id") == event.id, key
    elif rest == "alerts:open":
        for incident, body in read_hash(client, key).items():
            event = AlertEvent.model_validate_json(body)
            assert (event.incident_id, event.action) == (incident, "opened"), key
    else:
        for name, body in read_hash(client, key).items():
            assert AlertState.from_dict(json.loads(body)).key == name, key


ONLINE_TARGET = 0.80  # DOSSIER_ONLINE_TARGET's default
TARGET_WINDOW = "qtd"  # DOSSIER_TARGET_WINDOW's default


def _zero(fields: dict[str, str]) -> bool:
    return all(v in ("0", "", "{}") for v in fields.values())


def contract_view(client: redis.Redis, prefix: str) -> dict:
    """Every key under `prefix`, read by the patterns of docs/redis-contract.md.

    A key the contract does not name fails; the meta hash must parse as `WorkerMeta`
    (which forbids unknown fields). Scopes whose figures are all zero (a scope every
    dossier left, e.g. after a transfer) are set apart under "zero_scopes".
    """
    view: dict = {"scope": {}, "series": {}, "rank": {}, "below_target": set()}
    view["feeds"] = {}
    view["zero_scopes"] = set()
    for raw in client.scan_iter(f"{prefix}:*", count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        rest = key.removeprefix(prefix + ":")
        kind, _, name = rest.partition(":")
        if kind in ("scope", "series"):
            view[kind][name] = read_hash(client, key)
        elif kind == "rank":
            view["rank"][name] = {
                (m.decode() if isinstance(m, bytes) else m): score
                for m, score in client.zrange(key, 0, -1, withscores=True)  # type: ignore[union-attr]
            }
        elif rest == "below_target":
            view["below_target"] = {
                m.decode() if isinstance(m, bytes) else m
                for m in client.smembers(key)  # type: ignore[union-attr]
            }
        elif rest == "meta":
            WorkerMeta.model_validate(read_hash(client, key))
        elif kind in ("stuck", "flagged"):
            view["feeds"][rest] = read_hash(client, key)
        elif rest in ALERT_KEYS:
            _check_alert_key(client, rest, key)  # the alert tests judge what they hold
        else:
            raise AssertionError(f"{key} is not a key of the Redis contract")
    for scope in [s for s, f in view["scope"].items() if _zero(f)]:
        view["zero_scopes"].add(scope)
        del view["scope"][scope]
        view["series"].pop(scope, None)
    for scope in [s for s, f in view["series"].items() if s not in view["scope"] and _zero(f)]:
        del view["series"][scope]
    view.pop("zero_scopes")
    return view


def expected_view(
    snapshots: dict[str, dict[str, str]],
    series: dict[str, dict[str, str]],
    registry: AgencyRegistry | None = None,
    *,
    feeds: dict[str, dict[str, str]] | None = None,
) -> dict:
    """What `contract_view` must read, from the reference's figures and the contract's rules.

    Rankings: every agency of a level scored by `overdue_now`, and by its online ratio over
    the target window when it has one. Below target: city bodies whose ratio is known and
    strictly below 0.80.
    """
    registry = registry or AgencyRegistry.default()
    rank: dict[str, dict[str, float]] = {}
    below: set[str] = set()
    for scope, fields in snapshots.items():
        if not scope.startswith("agency:"):
            continue
        code = scope.removeprefix("agency:")
        agency = registry.get(code)
        assert agency is not None, code
        level = agency.level.value
        rank.setdefault(f"overdue_now:{level}", {})[code] = float(fields["overdue_now"])
        ratio = fields[f"{TARGET_WINDOW}.online_ratio"]
        if ratio:
            rank.setdefault(f"online_ratio:{level}", {})[code] = float(ratio)
            if level == "city" and float(ratio) < ONLINE_TARGET:
                below.add(code)
    return {
        "scope": snapshots,
        "series": series,
        "rank": rank,
        "below_target": below,
        "feeds": feeds or {},
    }


def view_difference(expected: dict, got: dict) -> str:
    for part in ("scope", "series"):
        if expected[part] != got[part]:
            return f"{part}: " + first_difference(expected[part], got[part])
    for part in ("rank", "below_target", "feeds"):
        if expected[part] != got[part]:
            return f"{part}: expected {expected[part]!r}\ngot {got[part]!r}"
    return "no difference"


class RedisPoller(threading.Thread):
    """Calls `poll()` over and over, `interval_s` apart, until `stop` is set."""

    interval_s = 0.0

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        super().__init__(daemon=True)
        self.client, self.prefix = client, prefix
        self.stop = threading.Event()

    def poll(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            if self.interval_s:
                time.sleep(self.interval_s)


def _field(fields: dict, name: str) -> str:
    """A stream entry's field, whether the client decodes responses or not."""
    value = fields[name] if name in fields else fields[name.encode()]
    return value.decode() if isinstance(value, bytes) else str(value)
