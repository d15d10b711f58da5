"""End-to-end throughput of the dossier-stream worker, beside two baselines, in one run.

Each run publishes a simulated Hải Phòng workload once to a fresh topic (4 partitions,
keyed by dossier id) and reads that same topic four ways, one after the other:

1. raw consumer: an aiokafka `getmany` loop that validates every message with pydantic
   (`DossierEvent.model_validate_json`), in this process, from its first message;
2. Faust iterate-only: a minimal Faust app (`bench/faust_iterate.py`, its own process)
   whose agent only iterates `stream.events()`, from its first message;
3. the pipeline: the real worker (`python -m dossier_stream.cli worker`, its own
   process, DOSSIER_CLOCK=event), from its first applied event until Redis
   `{prefix}:meta` shows `events_in == N`: dossier states, windows, partials, their
   merge and the Redis flush all done;
4. optionally (--scale-out) two workers of one app sharing the 4 partitions.

Progress goes to stderr; the table of results to stdout; everything measured, with the
machine and the workload, to bench/results/latest.json. Every topic, consumer group,
Redis key, data directory and process the benchmark creates is removed at the end.
Not part of the test suite: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from common import kafka_admin
from common.settings import StackSettings
from dossier_stream.settings import LocalStackSettings
from schemas.events import DossierEvent

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient

EXAMPLES = """\
examples:
  .venv/bin/python -m bench.pipeline --events 200000            # 3 runs, the default
  .venv/bin/python -m bench.pipeline --events 200000 --runs 1 --skip-faust
  .venv/bin/python -m bench.pipeline --events 200000 --scale-out  # + two workers
  .venv/bin/python -m bench.pipeline --events 50000 --runs 1 --out /tmp/quick.json
"""

TARGET_EVENTS_PER_S = 20_000  # one worker, end to end (the quarter)
# Events a simulated day at scale 1, on the low side (19 days from 2025-09-22 gave 298,709,
# 15,700 a day with the weekends): the first guess of --days; too few days are redone.
EVENTS_PER_DAY_ESTIMATE = 11_000
# The repository this file is in (not `dossier_stream.settings.PROJECT_ROOT`: with --ref
# the project's modules may come from an exported tree).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_ROOT / ".local" / "bench"
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
POLL_S = 0.02  # Redis polls while a pipeline runs
SAMPLE_S = 0.5  # /health polls and timeline samples while a pipeline runs
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORKER_COMMAND = (sys.executable, "-m", "dossier_stream.cli", "worker")

_T0 = time.perf_counter()


def say(message: str) -> None:
    """Progress line on stderr."""
    print(f"[{time.perf_counter() - _T0:7.1f} s] {message}", file=sys.stderr, flush=True)


# -- the workload --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadSpec:
    """Arguments of `dossier-stream simulate`; the cached file is named after them."""

    seed: int
    start: date
    days: int
    scale: float

    def path(self) -> Path:
        name = f"workload-seed{self.seed}-{self.start.isoformat()}-d{self.days}-x{self.scale:g}"
        return BENCH_DIR / f"{name}.jsonl"

    def command(self, out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dossier_stream.cli",
            "simulate",
            "--speed",
            "max",
            "--quiet",
            "--seed",
            str(self.seed),
            "--start",
            self.start.isoformat(),
            "--days",
            str(self.days),
            "--scale",
            f"{self.scale:g}",
            "--out",
            str(out),
        ]


@dataclass
class Workload:
    spec: WorkloadSpec
    generated_lines: int  # lines of the simulator's file; the first `len(lines)` are used
    lines: list[bytes]
    keys: list[bytes]
    generate_s: float | None  # None: read from the cache

    @property
    def mean_bytes(self) -> float:
        return sum(map(len, self.lines)) / len(self.lines)


def generate_workload(spec: WorkloadSpec) -> float | None:
    """Simulate the workload's file unless it is cached; the seconds it took, or None."""
    path = spec.path()
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    say(f"simulating: {' '.join(spec.command(path)[2:])}")
    started = time.perf_counter()
    try:
        subprocess.run(spec.command(tmp), check=True, timeout=1800, cwd=PROJECT_ROOT)
        tmp.replace(path)  # only a complete file is ever cached
    finally:
        tmp.unlink(missing_ok=True)
    return time.perf_counter() - started


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def load_workload(events: int, seed: int, start: date, scale: float, days: int | None) -> Workload:
    """The first `events` events of a simulated workload (generated once, then cached)."""
    auto = days is None
    days = days or max(1, math.ceil(events / (EVENTS_PER_DAY_ESTIMATE * max(scale, 1e-6))))
    total_generate = 0.0
    generated_any = False
    while True:
        spec = WorkloadSpec(seed, start, days, scale)
        spent = generate_workload(spec)
        if spent is not None:
            total_generate += spent
            generated_any = True
        count = _count_lines(spec.path())
        if events == 0 and not auto:
            events = count  # --events 0 with --days: every event of the workload
        if count >= events:
            break
        if not auto:
            raise SystemExit(
                f"--days {days} --scale {scale:g} gives {count:,} events, fewer than "
                f"--events {events:,}: raise --days or --scale, or leave --days out"
            )
        days = math.ceil(days * events / max(count, 1) * 1.05) + 1
        say(f"{count:,} events are too few; trying --days {days}")
    lines: list[bytes] = []
    with spec.path().open("rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if line:
                lines.append(line)
                if len(lines) == events:
                    break
    keys = [orjson.loads(line)["dossier_id"].encode() for line in lines]
    say(f"workload: {len(lines):,} of {count:,} events of {spec.path().name}")
    return Workload(spec, count, lines, keys, total_generate if generated_any else None)


# -- Kafka: publish, raw consumer -----------------------------------------------------------


def partition_of(key: bytes, partitions: int) -> int:
    """The Kafka default partitioner (murmur2), as the project's publisher uses."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


async def publish(bootstrap: str, topic: str, partitions: int, workload: Workload) -> float:
    """Send every event once, keyed by dossier id, in big batches; seconds until all acked."""
    by_partition: list[list[int]] = [[] for _ in range(partitions)]
    for i, key in enumerate(workload.keys):
        by_partition[partition_of(key, partitions)].append(i)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        max_batch_size=1024 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures: list[asyncio.Future[Any]] = []
        for p, indexes in enumerate(by_partition):
            batch = producer.create_batch()
            for i in indexes:
                key, value = workload.keys[i], workload.lines[i]
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=p))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"an event of {len(value)} bytes fits no batch")
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


@dataclass
class RawResult:
    events: int
    elapsed_s: float  # first message to last one validated
    join_s: float  # consumer start to the first message
    events_per_s: float
    cpu: CpuShare | None = None  # `measured` is this process


async def raw_consume(
    bootstrap: str, topic: str, group: str, expected: int, timeout_s: float
) -> RawResult:
    """aiokafka `getmany` + pydantic validation of every message, until `expected` seen."""
    validate = DossierEvent.model_validate_json
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    started = time.perf_counter()
    await consumer.start()
    try:
        deadline = started + timeout_s
        seen = 0
        first: float | None = None
        meter: CpuMeter | None = None
        while seen < expected:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw consumer saw {seen:,} of {expected:,} in {timeout_s} s")
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            if not batch:
                continue
            if first is None:
                first = time.perf_counter()
                meter = CpuMeter([os.getpid()])
            for records in batch.values():
                for record in records:
                    validate(record.value)
                seen += len(records)
        end = time.perf_counter()
    finally:
        await consumer.stop()
    assert first is not None and meter is not None
    return RawResult(seen, end - first, first - started, seen / (end - first), meter.stop())


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (None if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process, in MiB."""
    return proc_status_mib(pid, "VmHWM")


def proc_status_mib(pid: int, field: str) -> float | None:
    """A size field of /proc/<pid>/status (VmRSS, VmHWM, ...) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def service_pid(name: str) -> int | None:
    """PID of a local service (`kafka`, `redis`) from `dossier-stream services`' PID file."""
    path = LocalStackSettings().stack_dir / "pids" / f"{name}.pid"
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


@dataclass
class CpuShare:
    """CPU seconds per wall second while something was measured (1.0 = one core busy).

    `others` is what the machine spent beyond the measured process(es), the broker,
    Redis and this benchmark's own process: other users of a shared machine (noise).
    """

    measured: list[float | None]
    broker: float | None
    redis: float | None
    driver: float | None
    others: float
    machine: float
    steal: float


class CpuMeter:
    """Samples the CPU time of the machine and of the processes that matter."""

    def __init__(self, measured: Sequence[int]) -> None:
        own = os.getpid()
        self.measured = list(measured)
        self.support = {
            "broker": service_pid("kafka"),
            "redis": service_pid("redis"),
            "driver": None if own in self.measured else own,
        }
        self.started = time.perf_counter()
        self.machine0 = machine_cpu_seconds()
        self.measured0 = [cpu_seconds(pid) for pid in self.measured]
        self.support0 = {k: cpu_seconds(v) if v else None for k, v in self.support.items()}

    def stop(self) -> CpuShare:
        wall = max(time.perf_counter() - self.started, 1e-9)
        busy1, steal1 = machine_cpu_seconds()

        def share(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else (b - a) / wall

        measured = [
            share(a, cpu_seconds(pid)) for a, pid in zip(self.measured0, self.measured, strict=True)
        ]
        support = {
            k: share(self.support0[k], cpu_seconds(pid) if pid else None)
            for k, pid in self.support.items()
        }
        machine = (busy1 - self.machine0[0]) / wall
        known = sum(v for v in [*measured, *support.values()] if v is not None)
        return CpuShare(
            measured=measured,
            broker=support["broker"],
            redis=support["redis"],
            driver=support["driver"],
            others=max(0.0, machine - known),
            machine=machine,
            steal=(steal1 - self.machine0[1]) / wall,
        )


class Child:
    """A process this benchmark started; stopped by its own PID (and its own group)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        log: Path,
        cwd: Path = PROJECT_ROOT,
    ) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,  # `python -m` imports the project's code from here first
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL to its process group if it hangs; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                say(f"{self.name} ignored SIGTERM for {timeout_s} s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def get_json(url: str, timeout_s: float = 0.5) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            doc = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


# -- Faust iterate-only baseline ------------------------------------------------------------


@dataclass
class FaustResult:
    events: int
    elapsed_s: float  # first message to the last, inside the Faust process
    start_to_done_s: float  # process start to the result file
    events_per_s: float
    peak_rss_mib: float | None
    cpu: CpuShare  # process start to its result (startup included)


def faust_iterate(
    bootstrap: str,
    topic: str,
    partitions: int,
    app_id: str,
    expected: int,
    workdir: Path,
    children: list[Child],
    timeout_s: float,
) -> FaustResult:
    result = workdir / "faust-result.json"
    argv = [
        sys.executable,
        "-m",
        "bench.faust_iterate",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--app-id",
        app_id,
        "--partitions",
        str(partitions),
        "--expected",
        str(expected),
        "--result",
        str(result),
        "--datadir",
        str(workdir / "faust-data"),
    ]
    started = time.perf_counter()
    child = Child("faust iterate-only", argv, dict(os.environ), workdir / "faust.log")
    children.append(child)
    meter = CpuMeter([child.pid])
    deadline = started + timeout_s
    while not result.exists():
        child.check_alive()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"Faust baseline not done in {timeout_s} s:\n{child.log_tail()}")
        time.sleep(0.1)
    done = time.perf_counter()
    cpu = meter.stop()
    doc = json.loads(result.read_text())
    rss = peak_rss_mib(child.pid)
    child.stop()
    return FaustResult(
        doc["events"],
        doc["elapsed_s"],
        done - started,
        doc["events"] / doc["elapsed_s"],
        rss,
        cpu,
    )


# -- the pipeline -----------------------------------------------------------------------------


@dataclass
class PipelineResult:
    workers: int
    events: int
    events_at_start: int  # events_in the workers reported when the clock started
    elapsed_s: float  # first applied event (health) to Redis meta events_in == N
    # None when over half the events were applied before the clock could start
    events_per_s: float | None
    stage_events_per_s: float | None  # ... to /health events_in == N (dossier stage done)
    redis_lag_s: float  # from the dossier stage done to Redis showing it
    # the most Redis trailed the dossier stage during the run (`redis_max_lag`)
    redis_max_lag_s: float | None
    start_to_first_event_s: float  # process start to the first applied event (health)
    first_figure_after_first_event_s: float | None  # ... to {prefix}:scope:city in Redis
    first_figure_after_start_s: float | None
    peak_rss_mib: list[float | None]  # the workers, then their figures processes
    cpu: CpuShare  # while measured; `measured`: the workers, their figures processes, then
    # their other stage processes
    log_warnings: dict[str, int]  # lines of the workers' logs that tell of congestion
    exit_codes: list[int | None]
    meta: dict[str, str]
    stage_timeline: list[tuple[float, int]]  # (s since t0, events_in the workers report)
    redis_timeline: list[tuple[float, int | None]]  # (s since t0, events_in Redis shows)


def _worker_env(
    bootstrap: str,
    redis_url: str,
    topic: str,
    dead_letter_topic: str,
    app_id: str,
    redis_prefix: str,
    partitions: int,
    port: int,
    data_dir: Path,
) -> dict[str, str]:
    return {
        **os.environ,
        "DOSSIER_KAFKA_BOOTSTRAP": bootstrap,
        "DOSSIER_REDIS_URL": redis_url,
        "DOSSIER_EVENTS_TOPIC": topic,
        "DOSSIER_DEAD_LETTER_TOPIC": dead_letter_topic,
        "DOSSIER_APP_ID": app_id,
        "DOSSIER_REDIS_PREFIX": redis_prefix,
        "DOSSIER_PARTITIONS": str(partitions),
        "DOSSIER_WEB_PORT": str(port),
        "DOSSIER_DATA_DIR": str(data_dir),
        "DOSSIER_CLOCK": "event",
    }


# Worker log lines that tell the figures stage was congested.
LOG_SIGNS = {
    "producer_buffer_full": "producer buffer full",
    "timer_overlapping": "is overlapping",
    "timer_woke_late": "woke up too late",
    "errors": "[ERROR]",
}


def log_warnings(logs: Sequence[Path]) -> dict[str, int]:
    counts = dict.fromkeys(LOG_SIGNS, 0)
    for log in logs:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                for name, sign in LOG_SIGNS.items():
                    if sign in line:
                        counts[name] += 1
    return counts


class HealthSampler(threading.Thread):
    """Reads the workers' /health every SAMPLE_S until they report `expected` events."""

    def __init__(self, ports: Sequence[int], expected: int, t0: float) -> None:
        super().__init__(name="health-sampler", daemon=True)
        self.urls = [f"http://127.0.0.1:{port}/health" for port in ports]
        self.expected = expected
        self.t0 = t0
        self.samples: list[tuple[float, int]] = []
        self.done_at: float | None = None  # when /health first answered `expected`
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set() and self.done_at is None:
            sent = time.perf_counter()
            healths = [get_json(url, timeout_s=5.0) for url in self.urls]
            if all(h is not None for h in healths):
                n = sum(int(h["counts"].get("events_in", 0)) for h in healths if h)
                self.samples.append((round(sent - self.t0, 2), n))
                if n == self.expected:
                    self.done_at = time.perf_counter()
            self._halt.wait(max(0.0, SAMPLE_S - (time.perf_counter() - sent)))

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def redis_lags(
    stage_timeline: Sequence[tuple[float, int]],
    redis_timeline: Sequence[tuple[float, int | None]],
) -> list[tuple[float, float]]:
    """How far Redis trailed the dossier stage at each Redis sample: [(t, lag s)].

    For a Redis sample (t, r) the lag is t minus the earliest time the stage (the
    workers' /health `events_in`) had reached r events, interpolated linearly between
    the two stage samples around it; 0 when r is 0. Samples with r None (no meta yet)
    are left out, and so are those beyond the last stage sample's count (the stage's
    time is unknown). A lag below 0 (the stage sampled too coarsely) counts as 0.
    Both timelines are (seconds since one origin, events), in time order.
    """
    out: list[tuple[float, float]] = []
    for t, r in redis_timeline:
        if r is None:
            continue
        if r <= 0:
            out.append((t, 0.0))
            continue
        reached: float | None = None
        prev: tuple[float, int] | None = None
        for ts, n in stage_timeline:
            if n >= r:
                if prev is None or n == prev[1]:
                    reached = ts
                else:
                    t0, n0 = prev
                    reached = t0 + (r - n0) / (n - n0) * (ts - t0)
                break
            prev = (ts, n)
        if reached is not None:
            out.append((t, max(0.0, t - reached)))
    return out


def redis_max_lag(
    stage_timeline: Sequence[tuple[float, int]],
    redis_timeline: Sequence[tuple[float, int | None]],
) -> float | None:
    """The most Redis trailed the dossier stage over the run (`redis_lags`); None if unknown."""
    lags = [lag for _, lag in redis_lags(stage_timeline, redis_timeline)]
    return max(lags) if lags else None


def _hget_int(client: redis.Redis, key: str, name: str) -> int | None:
    raw = client.hget(key, name)
    if raw is None:
        return None
    return int(raw.decode() if isinstance(raw, bytes) else str(raw))


def run_pipeline(
    *,
    workers: int,
    bootstrap: str,
    redis_url: str,
    topic: str,
    dead_letter_topic: str,
    app_id: str,
    redis_prefix: str,
    partitions: int,
    expected: int,
    workdir: Path,
    children: list[Child],
    timeout_s: float,
    command: Sequence[str] = WORKER_COMMAND,
    extra_env: Mapping[str, str] | None = None,
    code_dir: Path = PROJECT_ROOT,
) -> PipelineResult:
    """Start `workers` worker processes; measure until Redis shows every event counted.

    `command` runs one worker (a profiler may wrap it); the environment configures it.
    """
    client = redis.Redis.from_url(redis_url)
    meta_key, city_key = f"{redis_prefix}:meta", f"{redis_prefix}:scope:city"
    ports = [free_port() for _ in range(workers)]
    mine: list[Child] = []
    started = time.perf_counter()
    for i, port in enumerate(ports):
        env = _worker_env(
            bootstrap,
            redis_url,
            topic,
            dead_letter_topic,
            app_id,
            redis_prefix,
            partitions,
            port,
            workdir / f"worker{i}-data",
        ) | dict(extra_env or {})
        child = Child(f"worker {i}", command, env, workdir / f"worker{i}.log", cwd=code_dir)
        children.append(child)
        mine.append(child)
    deadline = started + timeout_s
    first_figure: float | None = None

    def watch_figure(now: float) -> None:
        nonlocal first_figure
        if first_figure is None and client.exists(city_key):
            first_figure = now

    # Phase 1: poll /health until every worker owns partitions and events are applied.
    t0 = 0.0
    n0 = 0
    while True:
        for child in mine:
            child.check_alive()
        now = time.perf_counter()
        if now > deadline:
            raise TimeoutError(f"no event applied in {timeout_s} s:\n{mine[0].log_tail()}")
        healths = [get_json(f"http://127.0.0.1:{port}/health") for port in ports]
        watch_figure(now)
        if all(h is not None and h.get("partitions") for h in healths):
            applied = sum(int(h["counts"].get("events_in", 0)) for h in healths if h)
            if applied > 0:
                t0, n0 = now, applied
                break
        time.sleep(POLL_S)
    # Each worker's first process, then the figures processes they started (what they
    # report as `figures_process` in /health; None before the split into two processes),
    # then their other dossier stage processes (`stage_processes` after the first).
    figures_pids = [((h or {}).get("figures_process") or {}).get("pid") for h in healths]
    stage_pids = [p.get("pid") for h in healths for p in (h or {}).get("stage_processes", [])[1:]]
    helpers = [pid for pid in figures_pids if pid] + [pid for pid in stage_pids if pid]
    meter = CpuMeter([c.pid for c in mine] + helpers)
    measurable = n0 <= expected // 2
    if not measurable:
        say(
            f"  {n0:,} of {expected:,} events were applied before the clock started: raise --events"
        )
    say(f"  first events applied {t0 - started:.1f} s after start ({n0:,} already)")
    # Phase 2: poll Redis until meta shows N. A thread reads /health twice a second (a
    # worker answers between batches: a slow answer must not delay the Redis polls), to
    # tell when the dossier stage itself was done and how far Redis lagged behind it.
    sampler = HealthSampler(ports, expected, t0)
    sampler.start()
    last_report = next_sample = t0
    redis_timeline: list[tuple[float, int | None]] = []
    try:
        while True:
            for child in mine:
                child.check_alive()
            now = time.perf_counter()
            watch_figure(now)
            done = _hget_int(client, meta_key, "events_in")
            if now >= next_sample:
                next_sample += SAMPLE_S
                redis_timeline.append((round(now - t0, 2), done))
            if done == expected:
                t_end = now
                break
            if done is not None and done > expected:
                raise RuntimeError(f"Redis shows {done:,} events_in, more than {expected:,}")
            if now > deadline:
                raise TimeoutError(f"Redis shows {done} of {expected:,} after {timeout_s} s")
            if now - last_report > 10:
                say(f"  Redis events_in {done or 0:,} of {expected:,}")
                last_report = now
            time.sleep(POLL_S)
    finally:
        sampler.stop()
    redis_timeline.append((round(t_end - t0, 2), done))
    stage_done = min(sampler.done_at or t_end, t_end)
    elapsed = t_end - t0
    cpu = meter.stop()
    rss = [peak_rss_mib(pid) for pid in [c.pid for c in mine] + helpers]
    raw_meta = client.hgetall(meta_key)
    meta = {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in raw_meta.items()
    }
    client.close()
    codes = [c.stop() for c in mine]
    warnings_seen = log_warnings([c.log for c in mine])
    return PipelineResult(
        workers=workers,
        events=expected,
        events_at_start=n0,
        elapsed_s=elapsed,
        events_per_s=(expected - n0) / elapsed if measurable else None,
        stage_events_per_s=(expected - n0) / (stage_done - t0) if measurable else None,
        redis_lag_s=t_end - stage_done,
        redis_max_lag_s=redis_max_lag(sampler.samples, redis_timeline),
        stage_timeline=sampler.samples,
        redis_timeline=redis_timeline,
        start_to_first_event_s=t0 - started,
        first_figure_after_first_event_s=None if first_figure is None else first_figure - t0,
        first_figure_after_start_s=None if first_figure is None else first_figure - started,
        peak_rss_mib=rss,
        cpu=cpu,
        log_warnings=warnings_seen,
        exit_codes=codes,
        meta=meta,
    )


def largest_record(bootstrap: str, topic: str, timeout_s: float = 60.0) -> int:
    """The size of the largest record value in a topic (read to its end offsets)."""
    records = kafka_admin.read_topic(bootstrap, topic, timeout_s)
    return max((len(r.value or b"") for r in records), default=0)


# -- cleanup -----------------------------------------------------------------------------------


def cleanup(
    bootstrap: str,
    redis_url: str,
    *,
    topics: Sequence[str],
    topic_prefixes: Sequence[str],
    groups: Sequence[str],
    redis_prefixes: Sequence[str],
    workdir: Path | None,
) -> None:
    """Remove what one run created; best effort, each failure said on stderr."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
        try:
            existing = set(admin.list_topics())
            wanted = {t for t in existing if t in topics or t.startswith(tuple(topic_prefixes))}
            known_groups = {g["group_id"] for g in admin.list_groups()}
            drop_groups = [g for g in groups if g in known_groups]
            if drop_groups:
                for group, error in dict(admin.delete_groups(drop_groups)).items():
                    if error not in (None, "NoError", "OK"):
                        say(f"cleanup: group {group}: {error}")
        finally:
            admin.close()
        deleted = kafka_admin.delete_topics(bootstrap, sorted(wanted))
        say(f"cleanup: deleted {len(deleted)} topic(s), {len(drop_groups)} group(s)")
    except Exception as exc:  # cleanup must not hide the results
        say(f"cleanup: Kafka: {exc!r}")
    try:
        client = redis.Redis.from_url(redis_url)
        removed = 0
        for prefix in redis_prefixes:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                removed += int(client.delete(*keys[i : i + 500]))
        client.close()
        say(f"cleanup: deleted {removed} Redis key(s)")
    except Exception as exc:
        say(f"cleanup: Redis: {exc!r}")
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


# -- one run -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    run: int
    topic: str
    events: int
    publish_s: float
    publish_events_per_s: float
    raw: RawResult
    faust: FaustResult | None
    pipeline: PipelineResult
    scale_out: PipelineResult | None
    loadavg_before: tuple[float, float, float]
    loadavg_after: tuple[float, float, float]
    ratios: dict[str, float | None] = field(default_factory=dict)
    largest_partials_bytes: int | None = None  # the largest message the one worker sent


def cleanup_worker_run(
    bootstrap: str,
    redis_url: str,
    *,
    topic: str,
    dead_letter_topic: str,
    app_id: str,
    redis_prefix: str,
    workdir: Path | None,
) -> None:
    """`cleanup` of what one worker run made: its topics, its groups and Redis keys."""
    cleanup(
        bootstrap,
        redis_url,
        topics=[topic, dead_letter_topic],
        topic_prefixes=[f"{app_id}-"],
        groups=[app_id, f"{app_id}-dossiers"],
        redis_prefixes=[redis_prefix],
        workdir=workdir,
    )


def worker_env_option(items: Sequence[str]) -> dict[str, str]:
    """The `--worker-env NAME=VALUE` options as a mapping."""
    pairs = [item.partition("=") for item in items]
    if any(not name or not eq for name, eq, _ in pairs):
        raise SystemExit("--worker-env takes NAME=VALUE")
    return {name: value for name, _, value in pairs}


def services_reachable(stack: StackSettings) -> bool:
    """True when the local Kafka and Redis answer; says what to do when they do not."""
    try:
        kafka_admin.describe_cluster(stack.kafka_bootstrap, timeout_s=5)
        redis.Redis.from_url(stack.redis_url).ping()
    except Exception as exc:
        say(f"Kafka or Redis is not reachable ({exc!r}): `dossier-stream services up`")
        return False
    return True


def code_under_test(ref: str | None) -> tuple[Path, dict[str, Any]]:
    """Where the workers' code is (`--ref` exported, or this tree) and what it is."""
    if ref:
        code_dir, sha = export_tree(ref)
        say(f"workers run {ref} = {sha} from {code_dir.relative_to(PROJECT_ROOT)}")
        code = {"ref": ref, "commit": sha, "uncommitted": [], "diff_sha1": None}
    else:
        code_dir, code = PROJECT_ROOT, code_state()  # again at the end: others may edit
        if code["uncommitted"]:
            say(f"measuring uncommitted worker code: {', '.join(code['uncommitted'])}")
    code["native"] = build_native(code_dir)
    say(f"compiled core: {code['native']}")
    return code_dir, code


def code_changed(code: dict[str, Any]) -> bool:
    """True when the working tree's worker code is no longer what `code_under_test` saw."""
    return code_state() != {k: v for k, v in code.items() if k != "native"}


def build_native(code_dir: Path) -> str:
    """Compile the workers' hot core (`dossier-stream native build` of that tree), as `make
    native` does, unless DOSSIER_NATIVE=off; commits before it have none."""
    if os.environ.get("DOSSIER_NATIVE", "auto").lower() == "off":
        return "off (DOSSIER_NATIVE=off)"
    if not (code_dir / "common" / "native.py").exists():
        return "none at this commit"
    built = subprocess.run(
        [sys.executable, "-m", "dossier_stream.cli", "native", "build"],
        cwd=code_dir,
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise SystemExit(f"native build failed:\n{built.stdout}{built.stderr}")
    return "on: " + built.stdout.strip()


def one_run(
    index: int, args: argparse.Namespace, stack: StackSettings, workload: Workload
) -> RunResult:
    tag = f"bench.{uuid.uuid4().hex[:8]}"
    topic, dlq = f"{tag}.events", f"{tag}.dlq"
    raw_group, faust_app = f"{tag}.raw", f"{tag}.faust"
    app_id, app_id2 = f"{tag}.worker", f"{tag}.workers2"
    prefix, prefix2 = f"{tag}:ds:v1", f"{tag}:x2:ds:v1"
    workdir = BENCH_DIR / "runs" / tag
    workdir.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    n = len(workload.lines)
    bootstrap, redis_url, parts = stack.kafka_bootstrap, stack.redis_url, args.partitions
    say(f"run {index}: topic {topic}, {parts} partitions")
    load_before = os.getloadavg()
    try:
        kafka_admin.ensure_topics(bootstrap, {topic: parts, dlq: 1})
        publish_s = asyncio.run(publish(bootstrap, topic, parts, workload))
        say(f"  published {n:,} events in {publish_s:.2f} s ({n / publish_s:,.0f}/s)")

        raw = asyncio.run(raw_consume(bootstrap, topic, raw_group, n, args.timeout))
        say(f"  raw consumer: {raw.events_per_s:,.0f} events/s (join {raw.join_s:.1f} s)")

        faust_result = None
        if not args.skip_faust:
            faust_result = faust_iterate(
                bootstrap, topic, parts, faust_app, n, workdir, children, args.timeout
            )
            say(
                f"  Faust iterate-only: {faust_result.events_per_s:,.0f} events/s "
                f"({faust_result.start_to_done_s:.1f} s from process start)"
            )

        say("  pipeline: 1 worker")
        pipeline = run_pipeline(
            workers=1,
            bootstrap=bootstrap,
            redis_url=redis_url,
            topic=topic,
            dead_letter_topic=dlq,
            app_id=app_id,
            redis_prefix=prefix,
            partitions=parts,
            expected=n,
            workdir=workdir / "one",
            children=children,
            timeout_s=args.timeout,
            extra_env=args.worker_env,
            code_dir=args.code_dir,
        )
        say(
            f"  pipeline: {_rate(pipeline.events_per_s)} events/s end to end, "
            f"peak RSS {pipeline.peak_rss_mib[0] or 0:.0f} MiB"
        )
        largest = largest_record(bootstrap, f"{app_id}-partials")
        say(f"  largest partials message: {largest:,} bytes")
        scale_out = None
        if args.scale_out:
            say("  scale-out: 2 workers")
            scale_out = run_pipeline(
                workers=2,
                bootstrap=bootstrap,
                redis_url=redis_url,
                topic=topic,
                dead_letter_topic=dlq,
                app_id=app_id2,
                redis_prefix=prefix2,
                partitions=parts,
                expected=n,
                workdir=workdir / "two",
                children=children,
                timeout_s=args.timeout,
                extra_env=args.worker_env,
                code_dir=args.code_dir,
            )
            say(f"  scale-out: {_rate(scale_out.events_per_s)} events/s aggregate")
    finally:
        for child in children:
            if child.alive():
                child.stop()
        cleanup(
            bootstrap,
            redis_url,
            topics=[topic, dlq],
            topic_prefixes=[f"{faust_app}-", f"{app_id}-", f"{app_id2}-"],
            groups=[
                raw_group,
                faust_app,
                app_id,
                f"{app_id}-dossiers",
                app_id2,
                f"{app_id2}-dossiers",
            ],
            redis_prefixes=[prefix, prefix2],
            workdir=None if args.keep_logs else workdir,
        )
    result = RunResult(
        run=index,
        topic=topic,
        events=n,
        publish_s=publish_s,
        publish_events_per_s=n / publish_s,
        raw=raw,
        faust=faust_result,
        pipeline=pipeline,
        scale_out=scale_out,
        loadavg_before=load_before,
        loadavg_after=os.getloadavg(),
        largest_partials_bytes=largest,
    )
    p = pipeline.events_per_s
    two = scale_out.events_per_s if scale_out else None
    result.ratios = {
        "pipeline_over_raw": p / raw.events_per_s if p else None,
        "pipeline_over_faust": p / faust_result.events_per_s if p and faust_result else None,
        "scale_out_over_pipeline": two / p if two and p else None,
    }
    return result


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


# -- reporting ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            info.setdefault(name.strip(), value.strip())
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
    versions = {}
    for dist in ("faust-streaming", "aiokafka", "kafka-python", "pydantic", "orjson", "redis"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": info.get("model name", "unknown"),
        "cpu_family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}",
        "cpu_mhz": info.get("cpu MHz"),
        "virtual_machine": "hypervisor" in info.get("flags", "").split(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kafka": LocalStackSettings().kafka_version,
        "packages": versions,
    }


def _git(*argv: str) -> str:
    done = subprocess.run(
        ["git", *argv], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout if done.returncode == 0 else ""


CODE_PATHS = (
    "stream_apps",
    "domain",
    "schemas",
    "common",
    "dossier_stream",
    "producers",
    "pyproject.toml",
)


def code_state() -> dict[str, Any]:
    """The commit of the working tree and the uncommitted changes of the worker's code."""
    changed = _git("status", "--porcelain", "--", *CODE_PATHS).splitlines()
    diff = _git("diff", "HEAD", "--", *CODE_PATHS)
    return {
        "ref": None,
        "commit": _git("rev-parse", "--short=12", "HEAD").strip() or None,
        "uncommitted": [line.strip() for line in changed],
        "diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else None,
    }


def export_tree(ref: str) -> tuple[Path, str]:
    """The project's files at `ref` (git archive), in .local/bench/trees/<commit>/.

    The workers run there, so commits or edits in the working tree during a run cannot
    change the code being measured.
    """
    sha = _git("rev-parse", "--short=12", f"{ref}^{{commit}}").strip()
    if not sha:
        raise SystemExit(f"--ref {ref!r} is not a commit of {PROJECT_ROOT}")
    dest = BENCH_DIR / "trees" / sha
    if not dest.exists():
        tmp = dest.with_name(f"{sha}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha], cwd=PROJECT_ROOT, capture_output=True
        )
        if archive.returncode != 0:
            raise SystemExit(f"git archive {sha} failed: {archive.stderr.decode()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        tmp.replace(dest)
    probe = subprocess.run(
        [sys.executable, "-c", "import stream_apps.store as m; print(m.__file__)"],
        cwd=dest,
        capture_output=True,
        text=True,
        check=True,
    )
    if not probe.stdout.strip().startswith(str(dest)):
        raise SystemExit(f"the worker would not import {dest}: {probe.stdout.strip()}")
    return dest, sha


def redis_version(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(url)
        try:
            return str(client.info("server").get("redis_version"))
        finally:
            client.close()
    except redis.RedisError:
        return None


def row(run: RunResult) -> dict[str, Any]:
    """The figures of one run that the table and the median use."""
    p = run.pipeline
    return {
        "events": run.events,
        "publish_events_per_s": run.publish_events_per_s,
        "raw_events_per_s": run.raw.events_per_s,
        "faust_events_per_s": run.faust.events_per_s if run.faust else None,
        "pipeline_events_per_s": p.events_per_s,
        "pipeline_over_raw": run.ratios["pipeline_over_raw"],
        "pipeline_over_faust": run.ratios["pipeline_over_faust"],
        "stage_events_per_s": p.stage_events_per_s,
        "redis_lag_s": p.redis_lag_s,
        "redis_max_lag_s": p.redis_max_lag_s,
        "first_figure_s": p.first_figure_after_first_event_s,
        "start_to_first_event_s": p.start_to_first_event_s,
        "peak_rss_mib": p.peak_rss_mib[0],
        "worker_cpu_share": p.cpu.measured[0],
        "figures_cpu_share": p.cpu.measured[p.workers] if len(p.cpu.measured) > p.workers else None,
        "figures_rss_mib": p.peak_rss_mib[p.workers] if len(p.peak_rss_mib) > p.workers else None,
        "more_stages_cpu_share": _sum_or_none(p.cpu.measured[2 * p.workers :]),
        "more_stages_rss_mib": _sum_or_none(p.peak_rss_mib[2 * p.workers :]),
        "others_cpu_share": p.cpu.others,
        "scale_out_events_per_s": run.scale_out.events_per_s if run.scale_out else None,
        "largest_partials_bytes": run.largest_partials_bytes,
    }


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def median_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in rows[0]:
        values = [r[name] for r in rows if r[name] is not None]
        out[name] = statistics.median(values) if values else None
    return out


COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("events", "events", lambda v: f"{v:,.0f}"),
    ("publish_events_per_s", "publish/s", lambda v: f"{v:,.0f}"),
    ("raw_events_per_s", "raw/s", lambda v: f"{v:,.0f}"),
    ("faust_events_per_s", "faust/s", lambda v: f"{v:,.0f}"),
    ("pipeline_events_per_s", "pipeline/s", lambda v: f"{v:,.0f}"),
    ("pipeline_over_raw", "p/raw", lambda v: f"{v:.3f}"),
    ("pipeline_over_faust", "p/faust", lambda v: f"{v:.2f}"),
    ("stage_events_per_s", "stage/s", lambda v: f"{v:,.0f}"),
    ("redis_lag_s", "lag s", lambda v: f"{v:.2f}"),
    ("redis_max_lag_s", "max lag s", lambda v: f"{v:.2f}"),
    ("first_figure_s", "1st fig s", lambda v: f"{v:.2f}"),
    ("peak_rss_mib", "RSS MiB", lambda v: f"{v:,.0f}"),
    ("worker_cpu_share", "cpu", lambda v: f"{v:.2f}"),
    ("figures_cpu_share", "fig cpu", lambda v: f"{v:.2f}"),
    ("figures_rss_mib", "fig MiB", lambda v: f"{v:,.0f}"),
    ("more_stages_cpu_share", "stages+ cpu", lambda v: f"{v:.2f}"),
    ("more_stages_rss_mib", "stages+ MiB", lambda v: f"{v:,.0f}"),
    ("others_cpu_share", "others", lambda v: f"{v:.2f}"),
    ("scale_out_events_per_s", "2 workers/s", lambda v: f"{v:,.0f}"),
    ("largest_partials_bytes", "max partial B", lambda v: f"{v:,.0f}"),
]


def render_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    shown = [c for c in COLUMNS if any(r[c[0]] is not None for _, r in rows)]
    header = ["run", *(title for _, title, _ in shown)]
    body = [
        [label, *("–" if r[name] is None else fmt(r[name]) for name, _, fmt in shown)]
        for label, r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, floats rounded, for the JSON file."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


# -- main ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--events",
        type=int,
        default=200_000,
        help="events (default 200000; 0 with --days: every event of those days)",
    )
    parser.add_argument("--runs", type=int, default=3, help="whole runs, each on a fresh topic")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2025, 9, 22),
        help="first simulated day (default 2025-09-22, so the workload is reproducible)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="simulator --scale (default 1)")
    parser.add_argument(
        "--days", type=int, default=None, help="simulator --days (default: enough for --events)"
    )
    parser.add_argument("--partitions", type=int, default=4, help="partitions (default 4)")
    parser.add_argument("--skip-faust", action="store_true", help="no Faust baseline")
    parser.add_argument(
        "--scale-out", action="store_true", help="also two worker processes sharing the topic"
    )
    parser.add_argument(
        "--ref",
        default=None,
        metavar="GIT_REF",
        help="run the workers from this commit (exported to .local/bench/trees/), "
        "not from the working tree, which others may change during the run",
    )
    parser.add_argument(
        "--stage-processes",
        type=int,
        default=None,
        metavar="N",
        help="dossier stage processes of each worker (DOSSIER_STAGE_PROCESSES; default: "
        "the worker's, 1)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the workers, e.g. DOSSIER_BATCH_MAX=1000 (repeatable)",
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds each measurement may take"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help=f"keep worker logs under {BENCH_DIR}/runs"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.runs < 1 or args.events < 0 or (args.events == 0 and args.days is None):
        raise SystemExit("--runs must be at least 1, --events at least 1 (or 0 with --days)")
    args.worker_env = worker_env_option(args.worker_env)
    if args.stage_processes is not None:
        args.worker_env["DOSSIER_STAGE_PROCESSES"] = str(args.stage_processes)
    stack = StackSettings()
    if not services_reachable(stack):
        return 1
    args.code_dir, code = code_under_test(args.ref)
    workload = load_workload(args.events, args.seed, args.start, args.scale, args.days)
    runs: list[RunResult] = []
    for i in range(1, args.runs + 1):
        runs.append(one_run(i, args, stack, workload))
    if not args.ref and code_changed(code):
        code["changed_during_run"] = True
        say("warning: the worker's code changed during the benchmark (use --ref)")
    rows = [(f"run {r.run}", row(r)) for r in runs]
    median = median_row([r for _, r in rows])
    print(render_table([*rows, ("median", median)]))
    meets = (median["pipeline_events_per_s"] or 0) >= TARGET_EVENTS_PER_S
    print(
        f"\npipeline median {_rate(median['pipeline_events_per_s'])} events/s end to end: "
        f"{'meets' if meets else 'below'} the {TARGET_EVENTS_PER_S:,} events/s target"
    )
    doc = {
        "benchmark": "bench.pipeline",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python -m bench.pipeline", *(argv or sys.argv[1:])]),
        "machine": {**machine(), "redis_server": redis_version(stack.redis_url)},
        "code": code,
        "workload": {
            "simulate": " ".join(workload.spec.command(Path("FILE"))[3:]),
            "generated_events": workload.generated_lines,
            "events": len(workload.lines),
            "mean_bytes": round(workload.mean_bytes, 1),
            "generate_s": workload.generate_s and round(workload.generate_s, 1),
            "cache": str(workload.spec.path().relative_to(PROJECT_ROOT)),
            "partitions": args.partitions,
        },
        "worker_env": args.worker_env,
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "meets_target": meets,
        "median": _plain(median),
        "runs": [_plain(r) for r in runs],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    say(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
