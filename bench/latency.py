"""Live latency of the dossier-stream worker: from an event's publication to its figure in Redis.

For each target rate (default 100, 1,000 and 5,000 events/s, 60 s each) the benchmark
starts one worker (`python -m dossier_stream.cli worker`, DOSSIER_CLOCK=live) on a fresh
topic (4 partitions) with a fresh app id, Redis prefix and web port, waits until the
worker owns its partitions (`/health`) and its first watermark is in Redis, then
publishes simulated Hải Phòng events at that rate with a paced aiokafka producer while
a poller thread reads the watermark `offsets` of `{prefix}:meta` every 20 ms.

The latency of the message at (partition p, offset o) is the time of the first poll
whose watermark for p is above o, minus the time just before the message was handed to
the producer (appended to its partition's record batch, which goes to the broker at
most --linger-ms, 5 ms, later; the broker's acknowledgement is reported apart). The
watermark names exactly the messages the counts and every figure in Redis cover
(docs/redis-contract.md), so this is publication to figure: the producer's linger,
Kafka, the dossier stage, the partials round trip, the figures stage and the Redis
flush all included. Poll times are taken when Redis's reply arrives, so a latency is
at most one poll interval (~20 ms) too long, never too short.

The events are the simulator's (the workload bench.pipeline caches), with every time
(occurred_at, emitted_at, appointment_at, apology_appointment_at) shifted by one
constant so that the latest occurred_at/emitted_at is --last-event-age seconds before
the wall clock: a live worker dead-letters events dated more than 300 s ahead of it,
and one shift keeps each dossier's order and every appointment after its receipt.

Progress goes to stderr every ~10 s; the table to stdout; everything measured, with the
machine, the code's commit and the worker's settings, to bench/results/latency.json.
Every topic, consumer group, Redis key, data directory and process it creates is
removed at the end of each rate, also on Ctrl-C. Not part of the test suite: nothing
here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import json
import math
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import orjson
import redis
from aiokafka import AIOKafkaProducer

from bench.pipeline import (
    BENCH_DIR,
    PROJECT_ROOT,
    WORKER_COMMAND,
    Child,
    CpuMeter,
    CpuShare,
    _plain,
    _worker_env,
    cleanup_worker_run,
    code_changed,
    code_under_test,
    free_port,
    get_json,
    load_workload,
    log_warnings,
    machine,
    partition_of,
    peak_rss_mib,
    redis_version,
    say,
    services_reachable,
    worker_env_option,
)
from common import kafka_admin
from common.settings import StackSettings
from stream_apps.settings import WorkerSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer

EXAMPLES = """\
examples:
  .venv/bin/python -m bench.latency                          # 100, 1,000, 5,000 events/s, 60 s each
  .venv/bin/python -m bench.latency --rates 1000 --seconds 15 --out /tmp/quick.json
  .venv/bin/python -m bench.latency --rates 5000 --worker-env DOSSIER_FLUSH_INTERVAL_S=0.1
  .venv/bin/python -m bench.latency --ref HEAD                # the worker runs HEAD, not the tree

Each rate takes about --seconds plus 15-30 s (worker start, drain, cleanup), more when
the worker falls behind the rate and has a backlog to drain. The first run of a large
--rates x --seconds simulates the workload once (cached in .local/bench/).
"""

T = TypeVar("T")
RESULTS = Path(__file__).resolve().parent / "results" / "latency.json"
# Every time of an event; all move by the same shift.
TIME_FIELDS = ("occurred_at", "emitted_at", "appointment_at", "apology_appointment_at")
# The times a live worker checks against the wall clock.
PAST_FIELDS = ("occurred_at", "emitted_at")
PROGRESS_S = 10.0  # a progress line this often
WINDOW_S = 10.0  # latency percentiles per window of publication time, in the JSON
# The worker settings that shape latency, recorded with the results.
RECORDED_SETTINGS = {
    "DOSSIER_CLOCK": "clock",
    "DOSSIER_FLUSH_INTERVAL_S": "flush_interval_s",
    "DOSSIER_SERIES_INTERVAL_S": "series_interval_s",
    "DOSSIER_FULL_PUBLISH_INTERVAL_S": "full_publish_interval_s",
    "DOSSIER_BATCH_MAX": "batch_max",
    "DOSSIER_FUTURE_TOLERANCE_S": "future_tolerance_s",
}
# The paced producer builds its own batches (`paced_publish`): linger is --linger-ms.
PRODUCER_SETTINGS: dict[str, Any] = {"acks": "all"}


# -- the events, dated now -------------------------------------------------------------------


def live_events(lines: Sequence[bytes], now: float, age_s: float) -> tuple[list[bytes], int]:
    """The events with every time shifted by one constant: (events, shift in seconds).

    The shift is a whole number of seconds that puts the latest occurred_at/emitted_at
    of `lines` `age_s` seconds before `now` (epoch seconds). One constant keeps the
    order of every dossier's events and every appointment after its receipt.
    """
    docs = [orjson.loads(line) for line in lines]
    latest = max(
        datetime.fromisoformat(doc[name]).timestamp()
        for doc in docs
        for name in PAST_FIELDS
        if doc.get(name)
    )
    shift_s = math.floor(now - age_s - latest)
    shift = timedelta(seconds=shift_s)
    out: list[bytes] = []
    for doc in docs:
        for name in TIME_FIELDS:
            value = doc.get(name)
            if value:
                doc[name] = (datetime.fromisoformat(value) + shift).isoformat()
        out.append(orjson.dumps(doc))
    return out, shift_s


# -- the watermark in Redis ---------------------------------------------------------------------


class WatermarkPoller(threading.Thread):
    """Reads `offsets`, `events_in` and `dead_lettered` of `{prefix}:meta` every interval.

    One HMGET: a single command, so the three fields are of one flush (each flush writes
    the meta hash inside its MULTI/EXEC). `history[p]` lists (time, watermark) each time
    partition p's watermark rose, the time being when the reply arrived
    (`time.perf_counter`).
    """

    def __init__(self, redis_url: str, meta_key: str, interval_s: float) -> None:
        super().__init__(name="watermark-poller", daemon=True)
        self.redis_url = redis_url
        self.meta_key = meta_key
        self.interval_s = interval_s
        self.history: dict[int, list[tuple[float, int]]] = {}
        self.events_in: int | None = None
        self.dead_lettered: int | None = None
        self.polls = 0
        self.errors = 0
        self.max_gap_s = 0.0  # longest time between two replies
        self.started = time.perf_counter()
        # (s since the poller started, s) of each gap between replies over 5 intervals:
        # a latency is only as exact as the poll that saw its watermark
        self.long_gaps: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def run(self) -> None:
        client = redis.Redis.from_url(self.redis_url)
        previous_raw: bytes | str | None = None
        last: float | None = None
        next_at = time.perf_counter()
        try:
            while not self._halt.is_set():
                try:
                    raw, events_in, dead = client.hmget(
                        self.meta_key, ["offsets", "events_in", "dead_lettered"]
                    )
                except redis.RedisError:
                    self.errors += 1
                else:
                    now = time.perf_counter()
                    if last is not None:
                        self.max_gap_s = max(self.max_gap_s, now - last)
                        if now - last > 5 * self.interval_s and len(self.long_gaps) < 100:
                            self.long_gaps.append((now - self.started, now - last))
                    last = now
                    with self._lock:
                        self.polls += 1
                        if events_in is not None:
                            self.events_in = int(events_in)
                        if dead is not None:
                            self.dead_lettered = int(dead)
                        if raw is not None and raw != previous_raw:
                            previous_raw = raw
                            for p, mark in orjson.loads(raw).items():
                                seen = self.history.setdefault(int(p), [])
                                if not seen or int(mark) > seen[-1][1]:
                                    seen.append((now, int(mark)))
                next_at += self.interval_s
                delay = next_at - time.perf_counter()
                if delay < 0:  # fell behind: go on from now, no burst of polls
                    next_at, delay = time.perf_counter(), 0.0
                self._halt.wait(delay)
        finally:
            client.close()

    def watermarks(self) -> dict[int, int]:
        with self._lock:
            return {p: seen[-1][1] for p, seen in self.history.items() if seen}

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def latencies(
    sent_at: Sequence[float],
    partitions: Sequence[int],
    offsets: Sequence[int],
    history: Mapping[int, Sequence[tuple[float, int]]],
) -> list[float | None]:
    """Seconds from each message's send to the first poll whose watermark passed it.

    `history[p]` is (poll time, watermark) with rising watermarks; a message at offset o
    of p is in Redis once p's watermark is above o. None: no poll saw it covered.
    """
    marks = {p: [m for _, m in seen] for p, seen in history.items()}
    out: list[float | None] = []
    for sent, p, o in zip(sent_at, partitions, offsets, strict=True):
        seen = history.get(p, ())
        k = bisect.bisect_right(marks.get(p, []), o)
        out.append(seen[k][0] - sent if k < len(seen) else None)
    return out


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, linear between closest ranks."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values_s: Sequence[float]) -> dict[str, float | int | None]:
    """Count, mean, p50, p90, p99 and max of seconds, in milliseconds."""
    if not values_s:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(v * 1000 for v in values_s)
    return {
        "n": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }


# -- the paced producer ----------------------------------------------------------------------------


@dataclass
class Sent:
    """What the producer did, per message in send order (times are `time.perf_counter`)."""

    sent_at: list[float]  # just before `send`: the publication time
    acked_at: list[float]  # when the broker's acknowledgement reached this process
    partitions: list[int]
    offsets: list[int]
    started: float  # the schedule's start: message i is due at started + i / rate
    last_sent: float  # the last message handed to the producer
    all_acked: float
    behind_s: list[float]  # per message, how late its send was against the schedule


async def paced_publish(
    bootstrap: str,
    topic: str,
    partitions: int,
    keys: Sequence[bytes],
    values: Sequence[bytes],
    parts: Sequence[int],
    rate: float,
    linger_s: float,
    progress: Callable[[int, float], None],
) -> Sent:
    """Hand message i to the producer at `started + i / rate`; return what happened.

    Keyed by dossier id; `parts[i]` is message i's partition (`partition_of`: murmur2,
    as `bench.pipeline.publish`, computed before so the clock does not see it). Each message
    is appended to its partition's open record batch when it is due (its publication
    time is taken just before); a batch goes to the broker (`send_batch`, acks=all) once
    it is `linger_s` old, as a producer's linger would send it, with every other open
    batch (one produce request rather than one per partition). A batch's acknowledgement
    gives its base offset: its k-th message is at base + k. Building the batches here
    costs far less CPU per message than one `send` each, which matters on a small machine
    the worker shares. `progress(sent, elapsed)` is called about every PROGRESS_S.
    """
    n = len(values)
    sent_at = [0.0] * n
    acked_at = [0.0] * n
    offsets = [-1] * n
    behind = [0.0] * n
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)
    await producer.start()
    try:
        futures: list[asyncio.Future[Any]] = []
        batches: list[Any] = [None] * partitions
        members: list[list[int]] = [[] for _ in range(partitions)]
        opened = [0.0] * partitions
        parts_range = range(partitions)

        def acked(indexes: list[int], future: asyncio.Future[Any]) -> None:
            now = time.perf_counter()
            base = None
            if not future.cancelled() and future.exception() is None:
                base = future.result().offset
            for k, j in enumerate(indexes):
                acked_at[j] = now
                if base is not None:
                    offsets[j] = base + k

        async def flush(p: int) -> None:
            batch, indexes = batches[p], members[p]
            batches[p], members[p] = None, []
            future = await producer.send_batch(batch, topic, partition=p)
            future.add_done_callback(lambda f: acked(indexes, f))
            futures.append(future)

        started = time.perf_counter()
        next_progress = started + PROGRESS_S
        i = 0
        while i < n or any(members):
            due = min(n, int((time.perf_counter() - started) * rate) + 1)
            while i < due:
                p = parts[i]
                if batches[p] is None:
                    batches[p] = producer.create_batch()
                    opened[p] = time.perf_counter()
                now = time.perf_counter()
                if batches[p].append(key=keys[i], value=values[i], timestamp=None) is None:
                    await flush(p)  # full: send it, open another
                    batches[p] = producer.create_batch()
                    opened[p] = now = time.perf_counter()
                    if batches[p].append(key=keys[i], value=values[i], timestamp=None) is None:
                        raise ValueError(f"an event of {len(values[i])} bytes fits no batch")
                sent_at[i] = now
                behind[i] = max(0.0, now - (started + i / rate))
                members[p].append(i)
                i += 1
            now = time.perf_counter()
            if any(members[p] and (i == n or now - opened[p] >= linger_s) for p in parts_range):
                # All together: the producer sends them in one request to the broker.
                for p in parts_range:
                    if members[p]:
                        await flush(p)
            if now >= next_progress:
                progress(i, now - started)
                next_progress += PROGRESS_S
            wake = [opened[p] + linger_s for p in range(partitions) if members[p]]
            if i < n:
                wake.append(started + i / rate)
            if wake:
                await asyncio.sleep(max(0.0, min(wake) - time.perf_counter()))
        last_sent = sent_at[-1] if n else started
        await asyncio.gather(*futures)  # raises if a send failed
        all_acked = time.perf_counter()
    finally:
        await producer.stop()
    return Sent(sent_at, acked_at, list(parts), offsets, started, last_sent, all_acked, behind)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine in a new event loop; on an exception (Ctrl-C) cancel it first.

    Not `asyncio.run`: its teardown held this process for 0.3-0.5 s after each
    publication (a gap in the polls, so in the latencies measured then); this does not.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)  # the producer's `finally` stops it
        raise
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# -- one rate ----------------------------------------------------------------------------------


@dataclass
class RateResult:
    rate: float  # target events/s
    seconds: float  # target length of the publication
    topic: str
    events: int  # sent and acknowledged
    achieved_events_per_s: float  # (events - 1) / (last send - first send)
    publish_s: float  # first send to the last acknowledgement
    shift_s: int  # added to every event time
    latency_ms: dict[str, float | int | None]  # send to the watermark passing it in Redis
    ack_ms: dict[str, float | int | None]  # send to the broker's acknowledgement
    behind_schedule_ms: dict[str, float | int | None]  # producer's lateness against the pace
    windows: list[dict[str, Any]]  # latency per WINDOW_S of publication time
    not_in_redis: int  # messages no poll saw covered before the drain timeout
    drain_s: float | None  # last send to every message covered in Redis
    events_in: int | None  # meta `events_in` at the end
    dead_lettered: int | None  # meta `dead_lettered` at the end
    dead_letter_reasons: dict[str, int]
    meta: dict[str, str]  # the meta hash at the end (offsets, counts, clock)
    watermark_rises: dict[int, int]  # per partition, how many times its watermark rose
    polls: int
    poll_max_gap_ms: float
    # (s since the first send, ms) of each gap between polls over 5 poll intervals
    poll_long_gaps: list[tuple[float, float]]
    poll_errors: int
    startup_s: float  # worker start to its partitions owned and the first watermark
    owned_partitions: list[int]
    cpu: CpuShare  # while publishing; `measured` is the worker
    peak_rss_mib: float | None
    log_warnings: dict[str, int]
    exit_code: int | None
    problems: list[str] = field(default_factory=list)


def wait_ready(
    child: Child,
    port: int,
    client: redis.Redis,
    meta_key: str,
    timeout_s: float,
) -> list[int]:
    """Until /health lists owned partitions and Redis's watermark names all of them.

    The watermark's arrival shows the whole path (dossier stage, partials, figures
    stage, Redis flush) running, so the first events do not measure the start-up.
    """
    deadline = time.perf_counter() + timeout_s
    owned: list[int] = []
    while True:
        child.check_alive()
        health = get_json(f"http://127.0.0.1:{port}/health")
        owned = [int(p) for p in (health or {}).get("partitions") or []]
        if owned:
            raw = client.hget(meta_key, "offsets")
            marks = orjson.loads(raw) if raw else {}
            if all(str(p) in marks for p in owned):
                return owned
        if time.perf_counter() > deadline:
            state = f"owns {owned}" if owned else "owns no partition"
            raise TimeoutError(f"worker not ready in {timeout_s} s ({state}):\n{child.log_tail()}")
        time.sleep(0.1)


def dead_letter_reasons(bootstrap: str, topic: str, expected: int) -> dict[str, int]:
    """The `reason` headers of the dead-letter topic, counted (first word of each)."""
    reasons: Counter[str] = Counter()
    if not expected:
        return {}
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    try:
        for i, message in enumerate(consumer):
            headers = dict(message.headers or [])
            reason = headers.get("reason", b"?").decode(errors="replace")
            reasons[reason.split(":", 1)[0]] += 1
            if i + 1 >= expected:
                break
    finally:
        consumer.close()
    return dict(reasons)


def windows_of(sent: Sent, lat: Sequence[float | None]) -> list[dict[str, Any]]:
    """Latency percentiles per WINDOW_S of publication time (the start-up transient)."""
    buckets: dict[int, list[float]] = {}
    for t, value in zip(sent.sent_at, lat, strict=True):
        if value is not None:
            buckets.setdefault(int((t - sent.started) // WINDOW_S), []).append(value)
    out: list[dict[str, Any]] = []
    for k in sorted(buckets):
        s = summary_ms(buckets[k])
        window: dict[str, Any] = {"from_s": k * WINDOW_S, "to_s": (k + 1) * WINDOW_S}
        out.append(window | {name: s[name] for name in ("n", "p50", "p99", "max")})
    return out


def run_rate(
    rate: float,
    args: argparse.Namespace,
    stack: StackSettings,
    lines: Sequence[bytes],
    keys: Sequence[bytes],
) -> RateResult:
    tag = f"bench.{uuid.uuid4().hex[:8]}"
    topic, dlq, app_id, prefix = f"{tag}.events", f"{tag}.dlq", f"{tag}.latency", f"{tag}:ds:v1"
    meta_key = f"{prefix}:meta"
    workdir = BENCH_DIR / "runs" / tag
    bootstrap, redis_url, parts = stack.kafka_bootstrap, stack.redis_url, args.partitions
    n = len(lines)
    child: Child | None = None
    poller: WatermarkPoller | None = None
    client = redis.Redis.from_url(redis_url)
    say(f"{rate:,.0f} events/s for {args.seconds:g} s: {n:,} events, topic {topic}")
    try:
        values, shift_s = live_events(lines, time.time(), args.last_event_age)
        routes = [partition_of(key, parts) for key in keys]
        say(
            f"  event times shifted by {shift_s / 86400:+.2f} days: "
            f"the last one {args.last_event_age:g} s ago"
        )
        kafka_admin.ensure_topics(bootstrap, {topic: parts, dlq: 1})
        port = free_port()
        env = (
            _worker_env(
                bootstrap, redis_url, topic, dlq, app_id, prefix, parts, port, workdir / "data"
            )
            | {"DOSSIER_CLOCK": "live"}
            | args.worker_env
        )
        started = time.perf_counter()
        child = Child("worker", WORKER_COMMAND, env, workdir / "worker.log", cwd=args.code_dir)
        owned = wait_ready(child, port, client, meta_key, args.timeout)
        startup_s = time.perf_counter() - started
        say(
            f"  worker {child.pid} owns partitions {owned}; "
            f"its watermark is in Redis {startup_s:.1f} s after its start"
        )

        # No garbage collection while measuring: a full collection held this process
        # for ~150 ms on the 2-core machine, and would hold the poller as long.
        gc.collect()
        gc.disable()
        poller = watch = WatermarkPoller(redis_url, meta_key, args.poll_ms / 1000)
        poller.start()
        worker = child

        def progress(count: int, elapsed: float) -> None:
            worker.check_alive()
            say(
                f"  {elapsed:5.1f} s: sent {count:,} ({count / elapsed:,.0f}/s), "
                f"Redis covers {sum(watch.watermarks().values()):,} "
                f"(events_in {watch.events_in}, dead-lettered {watch.dead_lettered})"
            )

        health = get_json(f"http://127.0.0.1:{port}/health") or {}
        # The worker's first process, its figures process, then its other stage processes.
        figures_pid = (health.get("figures_process") or {}).get("pid")
        stage_pids = [p.get("pid") for p in health.get("stage_processes", [])[1:]]
        meter = CpuMeter(
            [child.pid, *([figures_pid] if figures_pid else []), *(p for p in stage_pids if p)]
        )
        sent = run_async(
            paced_publish(
                bootstrap, topic, parts, keys, values, routes, rate, args.linger_ms / 1000, progress
            )
        )
        cpu = meter.stop()
        elapsed = sent.last_sent - sent.sent_at[0] if n > 1 else 0.0
        achieved = (n - 1) / elapsed if elapsed > 0 else float(n)
        say(
            f"  sent {n:,} in {sent.last_sent - sent.started:.1f} s ({achieved:,.0f}/s), "
            f"all acknowledged {sent.all_acked - sent.last_sent:.2f} s after the last send"
        )

        # Drain: until every message is under its partition's watermark.
        ends: dict[int, int] = {}
        for p, o in zip(sent.partitions, sent.offsets, strict=True):
            ends[p] = max(ends.get(p, 0), o + 1)
        drain_deadline = time.perf_counter() + args.drain
        next_progress = time.perf_counter() + PROGRESS_S
        drain_s: float | None = None
        while True:
            child.check_alive()
            marks = poller.watermarks()
            if all(marks.get(p, 0) >= end for p, end in ends.items()):
                drain_s = time.perf_counter() - sent.last_sent
                break
            now = time.perf_counter()
            if now > drain_deadline:
                say(f"  Redis's watermark did not cover every message in {args.drain:g} s")
                break
            if now >= next_progress:
                say(f"  draining: Redis covers {sum(marks.values()):,} of {n:,}")
                next_progress += PROGRESS_S
            time.sleep(0.05)
        time.sleep(2 * args.poll_ms / 1000)
        poller.stop()
        gc.enable()
        raw_meta = client.hgetall(meta_key)
        meta = {
            (k.decode() if isinstance(k, bytes) else str(k)): (
                v.decode() if isinstance(v, bytes) else str(v)
            )
            for k, v in raw_meta.items()
        }
        rss = peak_rss_mib(child.pid)
        exit_code = child.stop()
        warnings_seen = log_warnings([child.log])

        lat = latencies(sent.sent_at, sent.partitions, sent.offsets, poller.history)
        covered = [v for v in lat if v is not None]
        events_in = int(meta["events_in"]) if "events_in" in meta else None
        dead = int(meta["dead_lettered"]) if "dead_lettered" in meta else None
        problems = []
        if events_in != n:
            problems.append(f"meta events_in is {events_in}, not the {n:,} events sent")
        if dead:
            problems.append(f"{dead:,} event(s) dead-lettered")
        if len(covered) < n:
            problems.append(f"{n - len(covered):,} event(s) never under Redis's watermark")
        counts = Counter(sent.partitions)
        if any(ends.get(p) != c for p, c in counts.items()):
            problems.append(f"offsets are not 0..count-1 per partition: ends {ends}")
        if exit_code not in (0, None):
            problems.append(f"the worker exited with {exit_code}")
        for problem in problems:
            say(f"  problem: {problem}")
        reasons = dead_letter_reasons(bootstrap, dlq, dead or 0)
        if reasons:
            say(f"  dead-letter reasons: {reasons}")
        result = RateResult(
            rate=rate,
            seconds=args.seconds,
            topic=topic,
            events=n,
            achieved_events_per_s=achieved,
            publish_s=sent.all_acked - sent.started,
            shift_s=shift_s,
            latency_ms=summary_ms(covered),
            ack_ms=summary_ms([a - s for a, s in zip(sent.acked_at, sent.sent_at, strict=True)]),
            behind_schedule_ms=summary_ms(sent.behind_s),
            windows=windows_of(sent, lat),
            not_in_redis=n - len(covered),
            drain_s=drain_s,
            events_in=events_in,
            dead_lettered=dead,
            dead_letter_reasons=reasons,
            meta=meta,
            watermark_rises={p: len(seen) for p, seen in sorted(poller.history.items())},
            polls=poller.polls,
            poll_max_gap_ms=poller.max_gap_s * 1000,
            poll_long_gaps=[
                (t + poller.started - sent.started, gap * 1000) for t, gap in poller.long_gaps
            ],
            poll_errors=poller.errors,
            startup_s=startup_s,
            owned_partitions=owned,
            cpu=cpu,
            peak_rss_mib=rss,
            log_warnings=warnings_seen,
            exit_code=exit_code,
            problems=problems,
        )
        s = result.latency_ms
        say(
            f"  latency ms: p50 {_ms(s['p50'])}, p90 {_ms(s['p90'])}, p99 {_ms(s['p99'])}, "
            f"max {_ms(s['max'])}; worker cpu {_share(cpu.measured[0])}"
        )
        return result
    finally:
        gc.enable()
        if poller is not None and poller.is_alive():
            poller.stop()
        if child is not None and child.alive():
            child.stop()
        client.close()
        cleanup_worker_run(
            bootstrap,
            redis_url,
            topic=topic,
            dead_letter_topic=dlq,
            app_id=app_id,
            redis_prefix=prefix,
            workdir=None if args.keep_logs else workdir,
        )


# -- reporting ---------------------------------------------------------------------------------


def _ms(value: Any) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _more_stages(measured: Sequence[float | None]) -> str:
    """The CPU of the worker's stage processes after the first, or a dash."""
    return _share(sum(v or 0 for v in measured[2:])) if len(measured) > 2 else "–"


COLUMNS: list[tuple[str, Callable[[RateResult], str]]] = [
    ("rate/s", lambda r: f"{r.rate:,.0f}"),
    ("events", lambda r: f"{r.events:,}"),
    ("sent/s", lambda r: f"{r.achieved_events_per_s:,.0f}"),
    ("p50 ms", lambda r: _ms(r.latency_ms["p50"])),
    ("p90 ms", lambda r: _ms(r.latency_ms["p90"])),
    ("p99 ms", lambda r: _ms(r.latency_ms["p99"])),
    ("max ms", lambda r: _ms(r.latency_ms["max"])),
    ("drain s", lambda r: "–" if r.drain_s is None else f"{r.drain_s:,.1f}"),
    ("ack p50 ms", lambda r: f"{r.ack_ms['p50']:,.1f}" if r.ack_ms["p50"] is not None else "–"),
    ("worker cpu", lambda r: _share(r.cpu.measured[0])),
    ("figures cpu", lambda r: _share(r.cpu.measured[1]) if len(r.cpu.measured) > 1 else "–"),
    ("stages+ cpu", lambda r: _more_stages(r.cpu.measured)),
    ("others cpu", lambda r: _share(r.cpu.others)),
    ("events_in", lambda r: "–" if r.events_in is None else f"{r.events_in:,}"),
    ("dead", lambda r: "–" if r.dead_lettered is None else f"{r.dead_lettered:,}"),
]


def render_table(results: Sequence[RateResult]) -> str:
    header = [title for title, _ in COLUMNS]
    body = [[fmt(r) for _, fmt in COLUMNS] for r in results]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(w) for cell, w in zip(cells, widths, strict=True))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def worker_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The latency-relevant settings the workers ran with (environment, else default)."""
    out = {}
    for name, attr in RECORDED_SETTINGS.items():
        default = WorkerSettings.model_fields[attr].default
        out[name] = env.get(name, str(default))
    return out


# -- main ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def rates(text: str) -> list[float]:
        values = [float(v) for v in text.split(",") if v.strip()]
        if not values or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError("rates are positive numbers, e.g. 100,1000,5000")
        return values

    parser.add_argument(
        "--rates",
        type=rates,
        default=[100.0, 1000.0, 5000.0],
        help="target events/s, comma-separated, each on a fresh topic and worker "
        "(default 100,1000,5000)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="seconds of publication at each rate (default 60): rate x seconds events",
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions (default 4)")
    parser.add_argument(
        "--poll-ms", type=float, default=20.0, help="ms between Redis polls (default 20)"
    )
    parser.add_argument(
        "--linger-ms",
        type=float,
        default=5.0,
        help="most ms a message waits in the producer's batch before it goes to the broker "
        "(default 5, the worker's own producer's linger; part of the latency)",
    )
    parser.add_argument(
        "--last-event-age",
        type=float,
        default=30.0,
        help="seconds before the wall clock the shifted workload's last event lies (default 30)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=300.0,
        help="seconds to wait after the last send for Redis to cover every event (default 300)",
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2025, 9, 22),
        help="first simulated day (default 2025-09-22, the workload of bench.pipeline)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="simulator --scale (default 1)")
    parser.add_argument(
        "--ref",
        default=None,
        metavar="GIT_REF",
        help="run the worker from this commit (exported to .local/bench/trees/), "
        "not from the working tree, which others may change during the run",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the worker, e.g. DOSSIER_FLUSH_INTERVAL_S=0.1 (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds the worker may take to be ready"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help=f"keep worker logs under {BENCH_DIR}/runs"
    )
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seconds <= 0 or args.partitions < 1 or args.poll_ms <= 0:
        raise SystemExit("--seconds, --partitions and --poll-ms must be positive")
    args.worker_env = worker_env_option(args.worker_env)
    signal.signal(signal.SIGTERM, _interrupt)  # cleaned up like Ctrl-C
    # The poller thread and the producer's event loop share the GIL: switch often, so a
    # poll's reply time is not held back by a burst of sends.
    sys.setswitchinterval(0.001)
    stack = StackSettings()
    if not services_reachable(stack):
        return 1
    args.code_dir, code = code_under_test(args.ref)
    counts = [max(1, round(rate * args.seconds)) for rate in args.rates]
    workload = load_workload(max(counts), args.seed, args.start, args.scale, None)
    results: list[RateResult] = []
    try:
        for rate, count in zip(args.rates, counts, strict=True):
            results.append(
                run_rate(rate, args, stack, workload.lines[:count], workload.keys[:count])
            )
    except KeyboardInterrupt:
        say("interrupted: cleaned up; no results written")
        return 130
    if not args.ref and code_changed(code):
        code["changed_during_run"] = True
        say("warning: the worker's code changed during the benchmark (use --ref)")
    print(render_table(results))
    for r in results:
        for problem in r.problems:
            print(f"{r.rate:,.0f}/s: {problem}")
    env = {**os.environ, "DOSSIER_CLOCK": "live", **args.worker_env}
    doc = {
        "benchmark": "bench.latency",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python -m bench.latency", *(argv or sys.argv[1:])]),
        "machine": {**machine(), "redis_server": redis_version(stack.redis_url)},
        "code": code,
        "workload": {
            "simulate": " ".join(workload.spec.command(Path("FILE"))[3:]),
            "generated_events": workload.generated_lines,
            "events": len(workload.lines),
            "cache": str(workload.spec.path().relative_to(PROJECT_ROOT)),
            "times": "every event time shifted by one constant per rate (shift_s) so the "
            f"latest occurred_at/emitted_at is {args.last_event_age:g} s before the wall clock",
        },
        "settings": {
            "rates": args.rates,
            "seconds": args.seconds,
            "partitions": args.partitions,
            "poll_interval_ms": args.poll_ms,
            "drain_timeout_s": args.drain,
            "producer": {
                "client": "aiokafka AIOKafkaProducer, create_batch + send_batch",
                **PRODUCER_SETTINGS,
                "linger_ms": args.linger_ms,
            },
            "publication_time": "time.perf_counter() just before the message is appended "
            "to the producer's record batch (handed to the producer, before the broker "
            "acknowledged it); the batch is sent at most linger_ms later",
            "figure_time": "reply time of the first HMGET of {prefix}:meta whose offsets "
            "watermark for the message's partition is above its offset",
            "percentiles": "linear between closest ranks",
            "worker": worker_settings(env),
            "worker_env": args.worker_env,
        },
        "results": [_plain(r) for r in results],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    say(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
