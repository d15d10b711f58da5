"""Throughput of `dossier-stream publish` on a large export, beside two ceilings, in one run.

Each run, on the first `--events` lines of a simulated quarter (`dossier-stream simulate
--speed max --start 2025-07-01 --days 91`, cached in `.local/bench/`):

1. publish: `python -m dossier_stream.cli publish FILE --topic T --quiet` as a
   subprocess, to a fresh topic (4 partitions). Validated events/s = valid events / wall
   time from the process start to its exit; also from the command's own summary line
   ("read N record(s) in S s"), which leaves out the interpreter's start-up and imports;
2. ceiling: a bare kafka-python `KafkaProducer` built with the publisher's own producer
   settings sends the same lines (pre-read bytes, keyed by dossier id, the same headers)
   to another fresh topic, no validation; events/s from the first send to the end of
   `flush()`;
3. validation: `parse_event(line, registry)` over the same lines, no Kafka.

Delivery is checked: the end offsets of each topic must sum to the number of valid
events. The table goes to stdout, progress to stderr, everything to
`bench/results/publisher.json`. The benchmark's topics are deleted at the end (also on
Ctrl-C or an error). Not part of the test suite: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.pipeline import (
    WorkloadSpec,
    code_state,
    cpu_seconds,
    generate_workload,
    machine,
    machine_cpu_seconds,
    say,
    service_pid,
)
from common import kafka_admin
from common.settings import StackSettings
from schemas.errors import EventValidationError
from schemas.events import parse_event
from schemas.registry import AgencyRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import TopicPartition

EXAMPLES = """\
examples:
  .venv/bin/python -m bench.publisher --events 1000000             # 3 runs, the default
  .venv/bin/python -m bench.publisher --events 100000 --runs 1     # a quick look
  .venv/bin/python -m bench.publisher --events 1000000 --skip-ceiling --skip-validation
"""

TARGET_EVENTS_PER_S = 20_000
PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_ROOT / ".local" / "bench"
RESULTS = Path(__file__).resolve().parent / "results" / "publisher.json"
# The producer settings the ceiling copies from the project's publisher.
PRODUCER_KEYS = (
    "acks",
    "enable_idempotence",
    "retries",
    "compression_type",
    "linger_ms",
    "batch_size",
    "max_in_flight_requests_per_connection",
    "max_request_size",
    "request_timeout_ms",
    "delivery_timeout_ms",
    "max_block_ms",
    "metrics_enabled",
)
SUMMARY = re.compile(
    r"read (\d+) record\(s\) in ([0-9.]+) s(?: \([^)]*\))?: (\d+) valid, (\d+) rejected, "
    r"(\d+) delivered, (\d+) not delivered"
)


# -- the export ----------------------------------------------------------------------------------


def _atomic(path: Path, make: Callable[[Path], None]) -> None:
    """Make `path` through a temporary file, so that only a complete file is ever cached."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        make(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def export_file(spec: WorkloadSpec, events: int) -> tuple[Path, int]:
    """The first `events` lines of the simulated export (made once, then cached)."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    generate_workload(spec)  # the pipeline benchmark's cached workload, if already made
    full = spec.path()
    path = full.with_name(f"{full.stem}-first{events}.jsonl")
    if not path.exists():

        def cut(tmp: Path) -> None:
            n = 0
            with full.open("rb") as src, tmp.open("wb") as out:
                for line in src:
                    if not line.strip():
                        continue
                    out.write(line if line.endswith(b"\n") else line + b"\n")
                    n += 1
                    if n == events:
                        break
            if n < events:
                raise SystemExit(
                    f"{full.name} has {n:,} events, fewer than --events {events:,}: "
                    "raise --days or --scale"
                )

        _atomic(path, cut)
    with path.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    return path, lines


def read_lines(path: Path) -> tuple[list[bytes], list[bytes]]:
    """Every line's bytes and its dossier id (the key), read before any clock starts."""
    lines: list[bytes] = []
    keys: list[bytes] = []
    with path.open("rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if line.strip():
                lines.append(line)
                keys.append(str(orjson.loads(line)["dossier_id"]).encode())
    return lines, keys


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Cpu:
    """CPU seconds per wall second while a phase ran (1.0 = one core busy)."""

    measured: float  # the publish subprocess, the ceiling's or the validation's process
    broker: float | None
    others: float  # the machine beyond the measured process, the broker and Redis
    machine: float


class CpuMeter:
    def __init__(self, *, children: bool) -> None:
        self.children = children
        self.pids = {"broker": service_pid("kafka"), "redis": service_pid("redis")}
        self.t0 = time.perf_counter()
        self.machine0 = machine_cpu_seconds()[0]
        self.own0 = self._own()
        self.support0 = {k: cpu_seconds(p) if p else None for k, p in self.pids.items()}

    def _own(self) -> float:
        who = resource.RUSAGE_CHILDREN if self.children else resource.RUSAGE_SELF
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    def stop(self) -> Cpu:
        wall = max(time.perf_counter() - self.t0, 1e-9)
        busy = machine_cpu_seconds()[0] - self.machine0
        own = self._own() - self.own0
        support = {}
        for name, pid in self.pids.items():
            now = cpu_seconds(pid) if pid else None
            before = self.support0[name]
            support[name] = None if now is None or before is None else now - before
        # The benchmark's own process counts as measured when it is the one measured.
        known = own + sum(v for v in support.values() if v is not None)
        return Cpu(
            measured=own / wall,
            broker=None if support["broker"] is None else support["broker"] / wall,
            others=max(0.0, busy - known) / wall,
            machine=busy / wall,
        )


def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return int(sum(offsets.values()))
    finally:
        consumer.close()


def wait_for_broker(bootstrap: str, timeout_s: float = 300.0) -> None:
    """Another test may stop and restart the local broker: wait for it, do not start it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            kafka_admin.describe_cluster(bootstrap, timeout_s=5)
            return
        except Exception as exc:  # any failure to answer
            if time.monotonic() > deadline:
                raise RuntimeError(f"the broker at {bootstrap} did not answer: {exc!r}") from exc
            say(f"broker at {bootstrap} not answering ({type(exc).__name__}); waiting")
            time.sleep(10)


def publisher_settings(bootstrap: str, topic: str) -> dict[str, Any]:
    """The kafka-python settings the project's publisher uses (read from a live one)."""
    from producers.publisher import DossierPublisher

    pub = DossierPublisher(bootstrap, topic)
    try:
        config = pub._producer.config
        return {k: config[k] for k in PRODUCER_KEYS if k in config}
    finally:
        pub.close(timeout_s=5)


@dataclass
class PublishResult:
    events: int  # valid events the command reports
    rejected: int
    delivered: int
    exit_code: int
    wall_s: float  # process start to exit
    own_s: float  # the command's own clock (its summary line)
    events_per_s: float  # valid events / wall_s
    own_events_per_s: float  # valid events / own_s
    offsets: int  # end offsets of the topic, summed
    cpu: Cpu


def run_publish(
    bootstrap: str, topic: str, path: Path, workdir: Path, extra: Sequence[str]
) -> PublishResult:
    argv = [
        sys.executable,
        "-m",
        "dossier_stream.cli",
        "publish",
        str(path),
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--rejects",
        str(workdir / "rejects.jsonl"),
        "--quiet",
        *extra,
    ]
    meter = CpuMeter(children=True)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=PROJECT_ROOT, check=False)
    wall = time.perf_counter() - started
    cpu = meter.stop()
    output = " ".join(done.stderr.split())
    found = SUMMARY.search(output)
    if found is None:
        raise RuntimeError(f"publish exited {done.returncode} without a summary:\n{done.stderr}")
    _read, own_s, valid, rejected, delivered, _not_delivered = found.groups()
    events = int(valid)
    return PublishResult(
        events=events,
        rejected=int(rejected),
        delivered=int(delivered),
        exit_code=done.returncode,
        wall_s=wall,
        own_s=float(own_s),
        events_per_s=events / wall,
        own_events_per_s=events / float(own_s),
        offsets=end_offsets(bootstrap, topic),
        cpu=cpu,
    )


@dataclass
class CeilingResult:
    events: int
    elapsed_s: float
    events_per_s: float
    offsets: int
    cpu: Cpu


def run_ceiling(
    bootstrap: str,
    topic: str,
    lines: list[bytes],
    keys: list[bytes],
    settings: dict[str, Any],
    headers: list[tuple[str, bytes]],
) -> CeilingResult:
    """kafka-python alone: the same bytes, keys and settings, one `send` each, no validation."""
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), **settings)
    try:
        producer.partitions_for(topic)  # metadata before the clock starts
        send = producer.send
        meter = CpuMeter(children=False)
        started = time.perf_counter()
        for key, value in zip(keys, lines, strict=True):
            send(topic, key=key, value=value, headers=headers)
        producer.flush()
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
    finally:
        producer.close(timeout=5)
    return CeilingResult(
        len(lines), elapsed, len(lines) / elapsed, end_offsets(bootstrap, topic), cpu
    )


@dataclass
class ValidationResult:
    events: int
    valid: int
    elapsed_s: float
    events_per_s: float
    cpu: Cpu


def run_validation(lines: list[bytes], registry: AgencyRegistry) -> ValidationResult:
    meter = CpuMeter(children=False)
    started = time.perf_counter()
    valid = 0
    for line in lines:
        try:
            parse_event(line, registry)
        except EventValidationError:
            continue
        valid += 1
    elapsed = time.perf_counter() - started
    return ValidationResult(len(lines), valid, elapsed, len(lines) / elapsed, meter.stop())


@dataclass
class Run:
    index: int
    publish: PublishResult | None = None
    ceiling: CeilingResult | None = None
    validation: ValidationResult | None = None
    ratio: float | None = None  # publish events/s over the ceiling's
    problems: list[str] = field(default_factory=list)


@contextlib.contextmanager
def topics(bootstrap: str, partitions: int) -> Iterator[Callable[[str], str]]:
    """`make(role)` creates a fresh topic; every topic made is deleted on the way out."""
    made: list[str] = []
    run_id = uuid.uuid4().hex[:8]

    def make(role: str) -> str:
        name = f"bench.{run_id}.{len(made)}.{role}"
        made.append(name)
        kafka_admin.ensure_topics(bootstrap, {name: partitions})
        return name

    try:
        yield make
    finally:
        if made:
            try:
                wait_for_broker(bootstrap, 120)
                kafka_admin.delete_topics(bootstrap, made)
                say(f"deleted {len(made)} benchmark topic(s)")
            except Exception as exc:
                say(f"could not delete topics {made}: {exc!r}")


def attempt(what: str, bootstrap: str, fn: Callable[[], Any], tries: int = 3) -> Any:
    """Run one phase; when it fails (the broker restarted by another test, say), retry it."""
    for n in range(1, tries + 1):
        wait_for_broker(bootstrap)
        try:
            return fn()
        except Exception as exc:
            if n == tries:
                raise
            say(f"{what} failed ({exc!r:.300}); retrying in 30 s ({n}/{tries - 1})")
            time.sleep(30)
    raise AssertionError("unreachable")


def one_run(
    index: int,
    args: argparse.Namespace,
    make: Callable[[str], str],
    path: Path,
    lines: list[bytes],
    keys: list[bytes],
    registry: AgencyRegistry,
    settings: dict[str, Any],
    headers: list[tuple[str, bytes]],
) -> Run:
    run = Run(index)
    workdir = BENCH_DIR / "runs" / f"publisher-{os.getpid()}-{index}"
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.skip_publish:

        def publish() -> PublishResult:
            topic = make("publish")
            say(f"run {index}: dossier-stream publish of {len(lines):,} events to {topic}")
            p = run_publish(args.bootstrap, topic, path, workdir, args.publish_arg)
            if p.offsets != p.events or p.delivered != p.events:
                raise RuntimeError(
                    f"publish: {p.events:,} valid, {p.delivered:,} delivered, "
                    f"{p.offsets:,} in the topic"
                )
            return p

        p = run.publish = attempt(f"run {index} publish", args.bootstrap, publish)
        say(
            f"run {index}: publish {p.events_per_s:,.0f} ev/s wall "
            f"({p.own_events_per_s:,.0f} in-command), exit {p.exit_code}, offsets {p.offsets:,}"
        )
    if not args.skip_ceiling:

        def ceiling() -> CeilingResult:
            topic = make("ceiling")
            say(f"run {index}: bare KafkaProducer to {topic}")
            gc.collect()
            c = run_ceiling(args.bootstrap, topic, lines, keys, settings, headers)
            if c.offsets != c.events:
                raise RuntimeError(f"ceiling: {c.events:,} sent, {c.offsets:,} in the topic")
            return c

        c = run.ceiling = attempt(f"run {index} ceiling", args.bootstrap, ceiling)
        say(f"run {index}: ceiling {c.events_per_s:,.0f} ev/s, offsets {c.offsets:,}")
    if not args.skip_validation:
        gc.collect()
        v = run.validation = run_validation(lines, registry)
        say(f"run {index}: validation {v.events_per_s:,.0f} ev/s ({v.valid:,} valid)")
        if run.publish and v.valid != run.publish.events:
            run.problems.append(
                f"validation found {v.valid:,} valid, publish {run.publish.events:,}"
            )
    if run.publish and run.ceiling:
        run.ratio = run.publish.events_per_s / run.ceiling.events_per_s
    for problem in run.problems:
        say(f"run {index}: PROBLEM {problem}")
    return run


# -- reporting ---------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def table(runs: list[Run]) -> str:
    head = (
        "| run | **publish ev/s** | publish ev/s in-command | kafka-python ceiling ev/s "
        "| validation ev/s | publish / ceiling | publish CPU | broker CPU | others CPU |"
    )
    rows = [head, "|" + " --- |" * 9]

    def row(name: str, cells: list[float | None]) -> str:
        pub, own, ceil, val, ratio, cpu, broker, others = cells
        return (
            f"| {name} | {_fmt(pub)} | {_fmt(own)} | {_fmt(ceil)} | {_fmt(val)} "
            f"| {_fmt(ratio, '.2f')} | {_fmt(cpu, '.2f')} | {_fmt(broker, '.2f')} "
            f"| {_fmt(others, '.2f')} |"
        )

    cells = []
    for r in runs:
        p, c, v = r.publish, r.ceiling, r.validation
        cells.append(
            [
                p.events_per_s if p else None,
                p.own_events_per_s if p else None,
                c.events_per_s if c else None,
                v.events_per_s if v else None,
                r.ratio,
                p.cpu.measured if p else None,
                p.cpu.broker if p else None,
                p.cpu.others if p else None,
            ]
        )
        rows.append(row(str(r.index), cells[-1]))
    if len(runs) > 1:
        medians = [_median([c[i] for c in cells]) for i in range(8)]
        rows.append(row("**median**", medians))
    return "\n".join(rows)


def summary(runs: list[Run]) -> dict[str, float | None]:
    def med(get: Callable[[Run], float | None]) -> float | None:
        return _median([get(r) for r in runs])

    return {
        "publish_events_per_s": med(lambda r: r.publish.events_per_s if r.publish else None),
        "publish_own_events_per_s": med(
            lambda r: r.publish.own_events_per_s if r.publish else None
        ),
        "ceiling_events_per_s": med(lambda r: r.ceiling.events_per_s if r.ceiling else None),
        "validation_events_per_s": med(
            lambda r: r.validation.events_per_s if r.validation else None
        ),
        "publish_over_ceiling": med(lambda r: r.ratio),
    }


def crc32c_implementation() -> str:
    """Which CRC-32C kafka-python computes batch checksums with (pure Python is slow)."""
    from kafka.record import util

    fn = util.calc_crc32c.__defaults__[0]  # type: ignore[index]
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', '?')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publisher",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stack = StackSettings()
    parser.add_argument("--events", type=int, default=1_000_000, help="events (default 1e6)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions (default 4)")
    parser.add_argument("--bootstrap", default=stack.kafka_bootstrap)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 7, 1))
    parser.add_argument("--days", type=int, default=91)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--skip-publish", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--skip-validation", action="store_true")
    parser.add_argument(
        "--publish-arg",
        action="append",
        default=[],
        help="extra argument for `dossier-stream publish` (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)

    spec = WorkloadSpec(args.seed, args.start, args.days, args.scale)
    path, count = export_file(spec, args.events)
    say(f"export: {path.name}, {count:,} events, {path.stat().st_size / 1e6:,.0f} MB")
    lines, keys = read_lines(path)
    registry = AgencyRegistry.default()
    from producers.publisher import HEADERS

    wait_for_broker(args.bootstrap)
    runs: list[Run] = []
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with topics(args.bootstrap, args.partitions) as make:
        settings = publisher_settings(args.bootstrap, "bench.settings-probe")
        say(f"publisher's producer settings: {settings}")
        for index in range(1, args.runs + 1):
            runs.append(
                one_run(index, args, make, path, lines, keys, registry, settings, list(HEADERS))
            )
    print(table(runs))
    result = {
        "benchmark": "publisher",
        "started_at": started_at,
        "machine": machine(),
        "code": code_state(),
        "crc32c": crc32c_implementation(),
        "workload": {
            **{k: str(v) for k, v in asdict(spec).items()},
            "file": str(path.relative_to(PROJECT_ROOT)),
            "events": count,
            "bytes": path.stat().st_size,
        },
        "producer_settings": settings,
        "publish_args": args.publish_arg,
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "runs": [asdict(r) for r in runs],
        "median": summary(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    say(f"results in {args.out}")
    return 1 if any(r.problems for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
