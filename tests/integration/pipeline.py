"""Shared steps of the end-to-end tests: a simulated workload, publishing it, reading Redis."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import redis
from kafka import KafkaProducer

from schemas.events import DossierEvent
from schemas.serving import meta_key, scope_key, series_key
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
