"""How long a worker takes to restore its dossiers after a restart, and whether it stays live.

For each size N (`--dossiers`), the benchmark writes N dossier records into a fresh
changelog topic, as a worker that had applied them would have left it, then starts a real
worker (`python -m dossier_stream.cli worker`, its own process, `DOSSIER_CLOCK=event`)
of that app id and measures:

- restore: from the worker's start until every partition is assigned and restored (its
  `/health` lists them all); the worker's own log lines give the read and rebuild parts;
- liveness while restoring: `/health` is read every 0.25 s, and the slowest answer is
  the longest the event loop was blocked (heartbeats run on the same loop);
- rebalances: how many times each partition was assigned (1 means no eviction);
- memory: the worker's resident set once restored, per dossier.

The records are made from a simulated month (`dossier-stream simulate`), run once through
the store; each of its dossiers is cloned under new ids until there are N, each written to
the partition its id hashes to. Everything created is removed at the end. Results go to
stdout and to bench/results/restore.json. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from bench.pipeline import (
    PROJECT_ROOT,
    Child,
    _worker_env,
    cleanup_worker_run,
    code_under_test,
    free_port,
    get_json,
    load_workload,
    machine,
    partition_of,
    proc_status_mib,
    say,
    services_reachable,
)
from common import kafka_admin
from common.settings import StackSettings
from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from stream_apps.book import new_partition_book
from stream_apps.store import META_KEY, PartitionMeta, PartitionStore

RESULTS = PROJECT_ROOT / "bench" / "results" / "restore.json"
SAMPLE_S = 0.25


def template_records(days: int, scale: float, seed: int) -> tuple[list[tuple[str, bytes]], float]:
    """Changelog values of every dossier of a simulated period, and its latest event time."""
    workload = load_workload(0, seed, date(2025, 7, 1), scale, days)
    calendar = WorkingCalendar()
    store = PartitionStore(
        0, Lifecycle(calendar_resume(calendar)), AgencyRegistry.default(), clock_mode="event"
    )
    book = new_partition_book(calendar, second_supplement_late=True)
    for offset, (key, line) in enumerate(zip(workload.keys, workload.lines, strict=True)):
        store.process(offset, key, line, book, now=2e9)
    records = [
        (key.decode(), value)
        for key, value in store.take_changes()
        if value is not None and key != META_KEY and not key.startswith(b"\x00")
    ]
    return records, store.meta.max_event_time


def write_changelog(
    bootstrap: str,
    topic: str,
    partitions: int,
    dossiers: int,
    template: list[tuple[str, bytes]],
    latest: float,
) -> int:
    """N records cloned from `template` under new ids, plus each partition's meta record."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
        compression_type="gzip",
        max_request_size=4 * 1024 * 1024,
    )
    written = 0
    copy = 0
    while written < dossiers:
        for dossier_id, value in template:
            new_id = f"{dossier_id}-{copy}"
            key = new_id.encode()
            body = value.replace(f'"{dossier_id}"'.encode(), f'"{new_id}"'.encode())
            producer.send(topic, key=key, value=body, partition=partition_of(key, partitions))
            written += 1
            if written >= dossiers:
                break
        copy += 1
        say(f"  {written:,} records sent")
    meta = PartitionMeta(max_event_time=latest)
    for partition in range(partitions):
        producer.send(topic, key=META_KEY, value=meta.encode(), partition=partition)
    producer.flush(300)
    producer.close()
    return written


def shared_out(health: dict[str, Any]) -> bool:
    """With several stage processes (`stage_processes` in /health), each owns a share
    of the partitions (while there are enough): the first may own them all for a while."""
    stages = health.get("stage_processes") or []
    shares = [p for p in stages if p.get("partitions")]
    return len(shares) >= min(len(stages), len(health.get("partitions", [])))


class Sampler(threading.Thread):
    """Reads /health every SAMPLE_S; notes the slowest answer and when all are restored."""

    def __init__(self, url: str, partitions: int, t0: float) -> None:
        super().__init__(name="health", daemon=True)
        self.url, self.partitions, self.t0 = url, partitions, t0
        self.slowest_s = 0.0
        self.answers = 0
        self.restored_at: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set() and self.restored_at is None:
            sent = time.perf_counter()
            doc = get_json(self.url, timeout_s=30.0)
            took = time.perf_counter() - sent
            if doc is not None:
                self.answers += 1
                self.slowest_s = max(self.slowest_s, took)
                if len(doc.get("partitions", [])) == self.partitions and shared_out(doc):
                    self.restored_at = time.perf_counter()
            self._halt.wait(max(0.0, SAMPLE_S - took))

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def one_size(
    stack: StackSettings,
    dossiers: int,
    partitions: int,
    template: list[tuple[str, bytes]],
    latest: float,
    timeout_s: float,
    code_dir: Path,
) -> dict[str, Any]:
    app_id = f"bench-restore-{uuid.uuid4().hex[:8]}"
    topic, dlq = f"{app_id}.events", f"{app_id}.dlq"
    changelog = f"{app_id}-dossier-state"
    prefix = f"bench:{app_id}:ds:v1"
    workdir = Path(tempfile.mkdtemp(prefix="dossier-restore-"))
    worker: Child | None = None
    try:
        kafka_admin.ensure_topics(
            stack.kafka_bootstrap,
            {topic: partitions, dlq: 1, changelog: partitions},
            compacted={changelog},
        )
        say(f"{dossiers:,} dossiers: writing the changelog {changelog}")
        began = time.perf_counter()
        write_changelog(stack.kafka_bootstrap, changelog, partitions, dossiers, template, latest)
        say(f"  written in {time.perf_counter() - began:.1f} s; starting the worker")
        port = free_port()
        env = _worker_env(
            stack.kafka_bootstrap,
            stack.redis_url,
            topic,
            dlq,
            app_id,
            prefix,
            partitions,
            port,
            workdir / "data",
        )
        t0 = time.perf_counter()
        worker = Child(
            "worker",
            [sys.executable, "-m", "dossier_stream.cli", "worker"],
            env,
            workdir / "worker.log",
            cwd=code_dir,
        )
        sampler = Sampler(f"http://127.0.0.1:{port}/health", partitions, t0)
        sampler.start()
        deadline = t0 + timeout_s
        while sampler.restored_at is None and time.perf_counter() < deadline:
            worker.check_alive()
            time.sleep(0.2)
        sampler.stop()
        if sampler.restored_at is None:
            raise RuntimeError(f"not restored within {timeout_s} s:\n{worker.log_tail()}")
        time.sleep(1.0)
        memory = proc_status_mib(worker.pid, "VmRSS")
        log = (workdir / "worker.log").read_text(errors="replace")
        assigned = [line for line in log.splitlines() if " assigned: " in line]
        per_partition: dict[int, int] = {}
        for line in assigned:
            number = int(line.split("partition ")[1].split()[0])
            per_partition[number] = per_partition.get(number, 0) + 1
        result = {
            "dossiers": dossiers,
            "partitions": partitions,
            "restore_s": round(sampler.restored_at - t0, 2),
            "health_answers": sampler.answers,
            "slowest_health_s": round(sampler.slowest_s, 3),
            "assignments_per_partition": per_partition,
            "second_rebalance": any(n > 1 for n in per_partition.values()),
            "rss_mib": round(memory, 1) if memory else None,
            "rss_kib_per_dossier": round(memory * 1024 / dossiers, 2) if memory else None,
            "worker_lines": [line.split(": ", 1)[-1] for line in assigned],
        }
        say(f"  restored in {result['restore_s']} s, slowest /health {sampler.slowest_s:.2f} s")
        return result
    finally:
        if worker is not None:
            worker.stop()
        cleanup_worker_run(
            stack.kafka_bootstrap,
            stack.redis_url,
            topic=topic,
            dead_letter_topic=dlq,
            app_id=app_id,
            redis_prefix=prefix,
            workdir=workdir,
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.restore",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python -m bench.restore                          # 100,000 and 1,000,000 dossiers\n"
        "  python -m bench.restore --dossiers 20000 --out /tmp/restore.json\n",
    )
    parser.add_argument("--dossiers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--template-days", type=int, default=30)
    parser.add_argument("--template-scale", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per size")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--ref", help="run the worker of this git ref (exported) instead of the working tree"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stack = StackSettings()
    if not services_reachable(stack):
        return 1
    say("simulating the template month and running it through the store")
    template, latest = template_records(args.template_days, args.template_scale, seed=7)
    say(f"  {len(template):,} distinct dossier records")
    code_dir, code = code_under_test(args.ref)
    results = [
        one_size(stack, n, args.partitions, template, latest, args.timeout, code_dir)
        for n in args.dossiers
    ]
    doc = {"machine": machine(), "code": code, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"{'dossiers':>10} {'restore s':>10} {'slowest /health s':>18} {'RSS MiB':>8} "
        f"{'KiB/dossier':>12} {'2nd rebalance':>14}"
    )
    for r in results:
        print(
            f"{r['dossiers']:>10,} {r['restore_s']:>10} {r['slowest_health_s']:>18} "
            f"{r['rss_mib']!s:>8} {r['rss_kib_per_dossier']!s:>12} {r['second_rebalance']!s:>14}"
        )
    say(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
