"""CPU cost per event of the worker's own code, in-process, without Kafka, Faust or Redis.

Builds the objects `stream_apps.worker_cmd.build_worker` builds (registry, working-day
calendar, lifecycle, one `PartitionStore` and `PartitionBook` per partition, the
`DossierStage`; the stage is not started) and drives them the way the running worker
does, from the benchmark's workload split by the Kafka partitioner:

- process: `PartitionStore.process` per message (parse, lifecycle, figures), in
  batches of `--batch` messages taken from every partition in turn;
- changelog: `take_changes()` of every store after each batch (the records the worker
  sends before it commits; encoding only, nothing is sent);
- partials: `DossierStage.partials()` once per batch, with the time series every
  `--series-every` batches (the worker's 0.5 s and 5 s timers at ~0.5 s a batch), and
  without the worker's republishing of every partial every 30 s (so that a slower run,
  under a profiler, does the same work);
- merge: the figures stage's CPU: `PartialMerger.accept` per partial, then the merged
  Redis hashes of the dirty keys (what `flush_to_redis` computes; nothing is written).

It prints CPU microseconds per event of each phase (this process's CPU time, so other
work on the machine does not count) and the events/s their sum allows: the ceiling of
one worker process before any I/O. With `--profile` it also prints the top
functions by own time (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from bench.pipeline import load_workload, partition_of
from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from stream_apps.book import new_partition_book
from stream_apps.dossier_stage import DossierStage
from stream_apps.heap import HeapKeeper
from stream_apps.partials import (
    COUNTS_KEY,
    SERIES_PREFIX,
    PartialMerger,
    merged_series,
    merged_snapshot,
    round_messages,
    sum_counts,
)
from stream_apps.settings import WorkerSettings
from stream_apps.store import PartitionStore

EXAMPLES = """\
examples:
  .venv/bin/python -m bench.profile_stage --events 200000
  .venv/bin/python -m bench.profile_stage --events 200000 --profile --top 40
"""


def build(partitions: int) -> DossierStage:
    # No full publish every 30 s of wall time (the worker's republishing of every partial):
    # what is measured must not depend on how fast the run goes (bench.instructions runs
    # this 50 times slower under callgrind), and a timed run of 200,000 events takes less.
    settings = WorkerSettings(clock="event", partitions=partitions, full_publish_interval_s=1e9)
    registry = AgencyRegistry.default()
    calendar = WorkingCalendar()
    lifecycle = Lifecycle(calendar_resume(calendar))
    stage = DossierStage(
        settings,
        lifecycle,
        lambda _p: new_partition_book(
            calendar, second_supplement_late=settings.second_supplement_late
        ),
        registry=registry,
    )
    for p in range(partitions):
        stage.stores[p] = PartitionStore(p, lifecycle, registry)
        stage.figures[p] = stage.figures_factory(p)
    return stage


def flush(merger: PartialMerger) -> int:
    """What `flush_to_redis` computes before it writes; returns the keys merged."""
    keys = merger.take_dirty()
    for key in keys:
        if key == COUNTS_KEY:
            sum_counts(merger.bodies(key))
        elif key.startswith(SERIES_PREFIX):
            merged_series(merger.bodies(key))
        else:
            merged_snapshot(merger.bodies(key))
    return len(keys)


def drive(
    stage: DossierStage,
    queues: list[list[tuple[int, bytes, bytes]]],
    batch: int,
    series_every: int,
    heap: HeapKeeper | None = None,
) -> dict[str, Any]:
    """Run the workload through the stage; seconds spent in each phase."""
    spent = {"process": 0.0, "changelog": 0.0, "partials": 0.0, "merge": 0.0}
    merger = PartialMerger()
    merger.assign(set(range(len(queues))))
    cursors = [0] * len(queues)
    share = max(1, batch // len(queues))
    batches = changelog_records = partial_messages = merged_keys = 0
    clock = time.process_time  # CPU time of this process: other work on the machine aside
    wall = time.time()  # the future-time check's wall clock (the workload is in the past)
    while any(c < len(q) for c, q in zip(cursors, queues, strict=True)):
        batches += 1
        t = clock()
        for p, queue in enumerate(queues):
            store, figures = stage.stores[p], stage.figures[p]
            start = cursors[p]
            for offset, key, value in queue[start : start + share]:
                store.process(offset, key, value, figures, now=wall)
            cursors[p] = min(len(queue), start + share)
        if heap is not None:
            heap.after_batch()  # as the worker does after each batch
        t, before = clock(), t
        spent["process"] += t - before
        for store in stage.stores.values():
            changelog_records += len(store.take_changes())
        t, before = clock(), t
        spent["changelog"] += t - before
        rnd = stage.partials(stage.clock(), with_series=batches % series_every == 0)
        messages = round_messages(rnd, len(queues)) if rnd is not None else []
        partial_messages += len(messages)
        t, before = clock(), t
        spent["partials"] += t - before
        for home, value in messages:
            merger.accept_round(value, home)
        merged_keys += flush(merger)
        t, before = clock(), t
        spent["merge"] += t - before
    return {
        "seconds": spent,
        "batches": batches,
        "changelog_records": changelog_records,
        "partial_messages": partial_messages,
        "merged_keys": merged_keys,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_stage",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 9, 22))
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5000, help="messages a batch (5000)")
    parser.add_argument("--series-every", type=int, default=10, help="batches between series")
    parser.add_argument(
        "--python-gc",
        action="store_true",
        help="leave the garbage collector as Python sets it (the worker freezes survivors)",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile, top by own time")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", help="cProfile order: tottime, cumulative")
    args = parser.parse_args(argv)

    workload = load_workload(args.events, args.seed, args.start, 1.0, None)
    queues: list[list[tuple[int, bytes, bytes]]] = [[] for _ in range(args.partitions)]
    for key, value in zip(workload.keys, workload.lines, strict=True):
        queue = queues[partition_of(key, args.partitions)]
        queue.append((len(queue), key, value))
    stage = build(args.partitions)
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    heap = None if args.python_gc else HeapKeeper()
    result = drive(stage, queues, args.batch, args.series_every, heap)
    if profiler is not None:
        profiler.disable()
    wall = time.perf_counter() - started
    n = len(workload.lines)
    counts = stage.counts()
    print(f"{n:,} events, {args.partitions} partitions, batches of {args.batch}")
    print(
        f"{result['batches']} batches, {result['changelog_records']:,} changelog records, "
        f"{result['partial_messages']:,} partial messages, {result['merged_keys']:,} merges"
    )
    print(f"counts: {counts}")
    total = sum(result["seconds"].values())
    for name, seconds in result["seconds"].items():
        print(
            f"  {name:<10} {seconds:7.2f} s  {1e6 * seconds / n:7.1f} µs/event  "
            f"{100 * seconds / total:5.1f}%"
        )
    label = " (under cProfile)" if profiler else ""
    print(
        f"  {'total':<10} {total:7.2f} s  {1e6 * total / n:7.1f} µs/event  "
        f"-> {n / total:,.0f} events/s at most, one core, no I/O{label} (wall {wall:.2f} s)"
    )
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
