"""How much memory the worker's dossier store holds as the dossiers add up: the memory curve.

A long simulated history (`dossier-stream simulate --speed max --out -`, its own
process, all 130 agencies at the default scale, about 3,600 dossiers a day) streams
through one partition's store and figures in this process, checkpointed every 5,000
messages as the dossier stage does it (`retire` below the committed offset, then the
changelog records taken, then the figures read at the partition's clock as a round reads
them, which drops the instants that fell behind). At each size N of `--dossiers`
(dossiers seen: held plus retired) it notes the resident set of this process, the
records held, the retired dossiers and the open ones.

Each mode runs in a fresh process of its own, so their resident sets do not mix:
- `retire`: `DOSSIER_RETIRE_AFTER_DAYS`' default, 40 days;
- `keep`: no retirement (every record held), up to `--keep-max` dossiers.

`--record-size` also measures, with tracemalloc, the heap bytes of one open and one
closed dossier's record, applied live and restored from the changelog (a simulated
month at scale 0.1). Results go to stdout and bench/results/memory.json. Nothing here
asserts anything.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from bench.pipeline import PROJECT_ROOT, load_workload, machine, proc_status_mib, say
from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from stream_apps.book import PartitionBook, new_partition_book
from stream_apps.retirement import Retirement
from stream_apps.store import PartitionStore

RESULTS = PROJECT_ROOT / "bench" / "results" / "memory.json"
DOSSIERS_PER_DAY = 3500  # the simulator's default volume, all agencies (measured: ~3,570)
CHECKPOINT_EVERY = 5000
NOW = 4e9  # the wall clock for the future check: after every simulated event
DAY = 86400


def new_store(retire_days: float) -> tuple[PartitionStore, PartitionBook]:
    calendar = WorkingCalendar()
    store = PartitionStore(
        0,
        Lifecycle(calendar_resume(calendar)),
        AgencyRegistry.default(),
        clock_mode="event",
        retirement=Retirement(retire_days * DAY) if retire_days else None,
    )
    return store, new_partition_book(calendar, second_supplement_late=True)


def curve(mode: str, sizes: Sequence[int], start: date, seed: int) -> dict[str, Any]:
    """One mode's points, in this process."""
    store, book = new_store(40.0 if mode == "retire" else 0.0)
    days = math.ceil(max(sizes) * 1.05 / DOSSIERS_PER_DAY) + 30
    command = [
        sys.executable,
        *("-m", "dossier_stream.cli", "simulate", "--speed", "max", "--quiet"),
        *("--seed", str(seed), "--start", start.isoformat(), "--days", str(days)),
        *("--out", "-"),
    ]
    say(f"{mode}: simulating {days} days from {start} into the store")
    sim = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=PROJECT_ROOT, bufsize=1 << 20)
    assert sim.stdout is not None
    rss0 = proc_status_mib_self()
    points: list[dict[str, Any]] = []
    todo = sorted(sizes)
    offset = committed = 0
    began = last_say = time.perf_counter()
    try:
        for line in sim.stdout:
            key = line[line.index(b'"dossier_id":"') + 14 :].split(b'"', 1)[0]
            store.process(offset, key, line.rstrip(b"\n"), book, now=NOW)
            offset += 1
            if offset % CHECKPOINT_EVERY:
                continue
            store.retire(committed, book)
            store.take_changes()
            committed = offset
            # The worker reads its figures every round, which moves their clock and
            # drops the fine-grained instants and hour buckets behind it: so here.
            book.snapshot("city", int(store.meta.max_event_time))
            held, retired = store.dossiers()
            if (tick := time.perf_counter()) - last_say >= 30:
                last_say = tick
                say(f"{mode}: {held + retired:,} dossiers, {held:,} held, {offset:,} events")
            if held + retired >= todo[0]:
                points.append(point(store, book, offset, rss0, began))
                say(f"{mode}: {points[-1]}")
                todo.pop(0)
                if not todo:
                    break
    finally:
        sim.kill()
        sim.wait()
    return {"mode": mode, "rss_start_mib": rss0, "points": points}


def point(
    store: PartitionStore, book: PartitionBook, events: int, rss0: float, began: float
) -> dict[str, Any]:
    gc.collect()
    held, retired = store.dossiers()
    t = int(store.meta.max_event_time)
    rss = proc_status_mib_self()
    return {
        "dossiers": held + retired,
        "events": events,
        "held": held,
        "retired": retired,
        "open": book.snapshot("city", t).open_now,
        "clock": time.strftime("%Y-%m-%d", time.gmtime(t)),
        "rss_mib": round(rss, 1),
        "rss_over_start_mib": round(rss - rss0, 1),
        "kib_per_held_dossier": round((rss - rss0) * 1024 / max(held, 1), 3),
        "seconds": round(time.perf_counter() - began, 1),
    }


def proc_status_mib_self() -> float:
    value = proc_status_mib(os.getpid(), "VmRSS")
    assert value is not None
    return value


def record_size() -> dict[str, Any]:
    """Heap bytes of an open and of a closed dossier's record, live and restored."""
    workload = load_workload(0, 1, date(2025, 7, 1), 0.1, 30)
    out: dict[str, Any] = {}
    tracemalloc.start()
    for how in ("live", "restored"):
        store, book = new_store(0.0)
        for offset, (key, line) in enumerate(zip(workload.keys, workload.lines, strict=True)):
            store.process(offset, key, line, book, now=NOW)
        changes = store.take_changes()
        if how == "restored":
            store, book = new_store(0.0)
            store.restore(changes)
            clock = int(store.meta.max_event_time)
            for _ in store.seeding(book, now=clock, keep_hours_from=None, step=10**9):
                pass
        del changes
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        n_closed = sum(1 for r in store.records.values() if not r.state.is_open)
        store.records = {k: r for k, r in store.records.items() if r.state.is_open}
        gc.collect()
        with_open = tracemalloc.get_traced_memory()[0]
        n_open = len(store.records)
        store.records = {}
        gc.collect()
        empty = tracemalloc.get_traced_memory()[0]
        # Each count includes the record's share of the dict of records.
        out[how] = {
            "open_dossiers": n_open,
            "bytes_per_open": round((with_open - empty) / n_open),
            "closed_dossiers": n_closed,
            "bytes_per_closed": round((before - with_open) / n_closed),
        }
    tracemalloc.stop()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="example: python -m bench.memory --dossiers 100000 1000000 5000000",
    )
    parser.add_argument(
        "--dossiers",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000, 5_000_000],
        help="sizes measured (dossiers seen); default 100000 1000000 5000000",
    )
    parser.add_argument(
        "--keep-max",
        type=int,
        default=1_000_000,
        help="largest size measured without retirement (default 1000000)",
    )
    parser.add_argument("--start", type=date.fromisoformat, default=date(2022, 1, 1))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--record-size", action="store_true", help="also the bytes per record")
    parser.add_argument(
        "--curves",
        type=Path,
        nargs="+",
        help="the curves' JSON, printed by `--mode retire|keep` runs made apart: combined "
        "into results/memory.json instead of running them again",
    )
    parser.add_argument(
        "--mode",
        choices=("retire", "keep"),
        help="run one curve in this process and print it as JSON (what the full run does "
        "in a child per mode)",
    )
    args = parser.parse_args(argv)
    if args.mode:  # a child: one curve, as JSON on stdout
        print(json.dumps(curve(args.mode, args.dossiers, args.start, args.seed)))
        return 0
    result: dict[str, Any] = {"machine": machine(), "curves": []}
    if args.curves:
        result["curves"] = [json.loads(path.read_text()) for path in args.curves]
    for mode in () if args.curves else ("retire", "keep"):
        sizes = [n for n in args.dossiers if mode == "retire" or n <= args.keep_max]
        if not sizes:
            continue
        child = subprocess.run(
            [
                sys.executable,
                *("-m", "bench.memory", "--mode", mode, "--dossiers", *map(str, sizes)),
                *("--start", args.start.isoformat(), "--seed", str(args.seed)),
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            check=True,
        )
        result["curves"].append(json.loads(child.stdout))
    if args.record_size:
        result["record_size"] = record_size()
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0


def table(result: dict[str, Any]) -> str:
    lines = [
        "| mode | dossiers | clock | held | open | retired | RSS MiB | over start | KiB / held |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in result["curves"]:
        for p in c["points"]:
            lines.append(
                f"| {c['mode']} | {p['dossiers']:,} | {p['clock']} | {p['held']:,} | "
                f"{p['open']:,} | {p['retired']:,} | {p['rss_mib']:,.0f} | "
                f"{p['rss_over_start_mib']:,.0f} | {p['kib_per_held_dossier']:.2f} |"
            )
    sizes = result.get("record_size")
    if sizes:
        lines += ["", "| record | open: bytes | closed: bytes |", "| --- | ---: | ---: |"]
        for how, m in sizes.items():
            lines.append(f"| {how} | {m['bytes_per_open']:,} | {m['bytes_per_closed']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
