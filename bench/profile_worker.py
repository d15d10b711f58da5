"""Profile the real worker's stage process on the benchmark's workload: where does its time go?

Publishes the same simulated workload as `bench.pipeline` to a fresh topic, runs
`python -m dossier_stream.cli worker` under a profiler (the worker itself has no
profiling hook; the figures process it starts is not profiled), waits until Redis
`{prefix}:meta` shows every event counted, stops the worker with SIGTERM (it stops
cleanly, so the profiler writes its output), prints
the top functions and cleans up (topics, groups, Redis keys, processes).

cProfile (default, stdlib) gives exact call counts and tottime but slows small Python
functions down; pyinstrument (`--profiler pyinstrument`, if installed: it is not a
project dependency) samples, so its proportions are closer to an unprofiled run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import pstats
import shutil
import sys
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from bench.pipeline import (
    BENCH_DIR,
    PROJECT_ROOT,
    Child,
    _rate,
    cleanup_worker_run,
    export_tree,
    load_workload,
    publish,
    run_pipeline,
    say,
)
from common import kafka_admin
from common.settings import StackSettings

EXAMPLES = """\
examples:
  .venv/bin/python -m bench.profile_worker --events 200000
  .venv/bin/python -m bench.profile_worker --events 200000 --profiler pyinstrument
"""


# Where the worker's stage process spends its time: (label, file name, function). The
# figures stage (merge, Redis writer, alert rules) runs in the figures process, which is
# not profiled here (`py-spy record --pid` on it does, see BENCHMARKS.md).
# The entries do not nest in one another; "other" is the rest (Faust, aiokafka, asyncio).
BREAKDOWN = [
    ("dossier stage: apply batches (parse, lifecycle, figures)", "dossier_stage.py", "_process"),
    ("dossier stage: changelog send + offset commit", "dossier_stage.py", "_checkpoint"),
    ("partials: compute and send (timer)", "dossier_stage.py", "publish_partials"),
    ("Kafka fetch: unpack records", "fetcher.py", "_unpack_records"),
    ("idle: waiting in epoll", "~", "<method 'poll' of 'select.epoll' objects>"),
]


def breakdown(path: Path) -> str:
    """Cumulative seconds of the BREAKDOWN entries, and their share of the profile."""
    stats = pstats.Stats(str(path))
    total = float(stats.total_tt)  # type: ignore[attr-defined]
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    lines = [f"{'where':<58} {'seconds':>8} {'share':>6}"]
    accounted = 0.0
    for label, filename, function in BREAKDOWN:
        seconds = sum(
            row[3]
            for (file, _line, name), row in table.items()
            if name == function and (file == filename or file.endswith("/" + filename))
        )
        accounted += seconds
        lines.append(f"{label:<58} {seconds:8.2f} {100 * seconds / total:5.1f}%")
    rest = total - accounted
    lines.append(
        f"{'other (Faust, aiokafka, asyncio, startup)':<58} {rest:8.2f} {100 * rest / total:5.1f}%"
    )
    lines.append(f"{'total (main thread, under cProfile)':<58} {total:8.2f} 100.0%")
    return "\n".join(lines)


def report(path: Path, top: int) -> str:
    """The `top` functions by own time and by cumulative time."""
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs()
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(top)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_worker",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 9, 22))
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--days", type=int, help="days of the workload (default: as many as --events needs)"
    )
    parser.add_argument("--profiler", choices=["cprofile", "pyinstrument"], default="cprofile")
    parser.add_argument("--top", type=int, default=35, help="functions listed (default 35)")
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH_DIR / "profile",
        help=f"directory of the profile files (default {BENCH_DIR / 'profile'})",
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument(
        "--ref", default=None, metavar="GIT_REF", help="profile the worker of this commit"
    )
    args = parser.parse_args(argv)
    stack = StackSettings()
    code_dir = PROJECT_ROOT
    if args.ref:
        code_dir, sha = export_tree(args.ref)
        say(f"worker from {args.ref} = {sha}")
    workload = load_workload(args.events, args.seed, args.start, 1.0, args.days)
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"bench.{uuid.uuid4().hex[:8]}"
    topic, dlq, app_id, prefix = f"{tag}.events", f"{tag}.dlq", f"{tag}.prof", f"{tag}:ds:v1"
    workdir = BENCH_DIR / "runs" / tag
    if args.profiler == "cprofile":
        output = args.out / "worker.prof"
        wrapper = [sys.executable, "-m", "cProfile", "-o", str(output)]
    else:
        output = args.out / "worker-pyinstrument.txt"
        wrapper = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(output)]
    command = [*wrapper, "-m", "dossier_stream.cli", "worker"]
    children: list[Child] = []
    try:
        kafka_admin.ensure_topics(stack.kafka_bootstrap, {topic: args.partitions, dlq: 1})
        asyncio.run(publish(stack.kafka_bootstrap, topic, args.partitions, workload))
        say(f"published {len(workload.lines):,} events; worker under {args.profiler}")
        result = run_pipeline(
            workers=1,
            bootstrap=stack.kafka_bootstrap,
            redis_url=stack.redis_url,
            topic=topic,
            dead_letter_topic=dlq,
            app_id=app_id,
            redis_prefix=prefix,
            partitions=args.partitions,
            expected=len(workload.lines),
            workdir=workdir,
            children=children,
            timeout_s=args.timeout,
            command=command,
            code_dir=code_dir,
        )
        say(
            f"profiled worker: {_rate(result.events_per_s)} events/s end to end, stage "
            f"{_rate(result.stage_events_per_s)} events/s (profiler overhead included)"
        )
    finally:
        for child in children:
            if child.alive():
                child.stop(120)
        cleanup_worker_run(
            stack.kafka_bootstrap,
            stack.redis_url,
            topic=topic,
            dead_letter_topic=dlq,
            app_id=app_id,
            redis_prefix=prefix,
            workdir=None,
        )
        shutil.rmtree(workdir, ignore_errors=True)
    if args.profiler == "cprofile":
        text = breakdown(output) + "\n\n" + report(output, args.top)
        (args.out / "worker-cprofile.txt").write_text(text)
        print(text)
    else:
        print(output.read_text())
    say(f"profile written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
