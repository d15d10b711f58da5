"""Instructions per event of the worker's own code, counted by callgrind, for commits side by side.

On this kind of virtual machine the same code runs up to 40% faster or slower from
one invocation to the next, so two timings of a change of a few percent say nothing.
Instructions do not swing: `valgrind --tool=callgrind` counts the instructions a run
executes, the same for the same code and input (Python's string hashing is pinned with
PYTHONHASHSEED=0). So each `--ref` runs `bench.profile_stage` (the stage's code
in-process, compiled core on, no Kafka or Redis) under callgrind, and this prints, per
event, the instructions of the compiled functions that make up each phase (inclusive:
what they call counts too), and of the whole run.

Instructions are not time (a cache miss costs many), so a change it favours must still
show in the end-to-end benchmark; but a change it does not favour will rarely pay.
The refs run two at a time (one per core); a run of 20,000 events takes about 2 minutes
under callgrind. valgrind must be installed (Debian's `valgrind`; not a project
dependency).

examples:
  .venv/bin/python -m bench.instructions --ref 513c601 --ref HEAD
  .venv/bin/python -m bench.instructions --ref HEAD --events 60000 \
      --out bench/results/instructions.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.pipeline import BENCH_DIR, build_native, export_tree

# Phase -> the compiled functions whose inclusive counts make it (names as mypyc writes
# them; "rust:" marks a method of the Rust figure book, as pyo3 names its wrapper; with
# the Rust book, "rounds: series" leaves out the tables its Python wrapper builds).
PHASES: dict[str, tuple[str, ...]] = {
    "per message (PartitionStore.process)": ("store___PartitionStore___process",),
    "  lifecycle (Lifecycle.apply)": ("lifecycle___Lifecycle___apply",),
    "    resend fingerprint": ("lifecycle___fingerprint",),
    "  figure facts (dossier_facts)": ("figures___dossier_facts",),
    "  figures (FigureBook.move)": ("figures___FigureBook___move", "rust:__pymethod_move__"),
    "  contract rules (plain_rules_hold)": ("rules___plain_rules_hold",),
    "changelog (take_changes)": ("store___PartitionStore___take_changes",),
    "rounds: counts": ("figures___FigureBook___counts", "rust:__pymethod_counts__"),
    "rounds: series": ("figures___FigureBook___series", "rust:__pymethod_series_rows__"),
    "rounds: messages": ("partials___round_messages",),
    "merge": ("partials___PartialMerger___accept_round", "partials___merged_snapshot"),
}
_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+\*?\s*(\S+)")


@dataclass
class Count:
    ref: str
    sha: str
    events: int
    total: int
    functions: dict[str, int]

    def per_event(self, names: tuple[str, ...]) -> float | None:
        keys = [n.removeprefix("rust:") if n.startswith("rust:") else f"CPyDef_{n}" for n in names]
        found = [self.functions[k] for k in keys if k in self.functions]
        return sum(found) / self.events if found else None


def inclusive(callgrind_out: Path) -> tuple[int, dict[str, int]]:
    """(program total, inclusive instructions by function name) of a callgrind file."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(callgrind_out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_annotate(text)


def parse_annotate(text: str) -> tuple[int, dict[str, int]]:
    """(program total, inclusive instructions by function) of `callgrind_annotate` text:
    a function's name without its file, its largest count if listed more than once."""
    total, functions = 0, dict[str, int]()
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in line:
            total = n
            continue
        name = m.group(2).rsplit(":", 1)[-1]
        functions[name] = max(n, functions.get(name, 0))
    return total, functions


def count(ref: str, events: int, out_dir: Path) -> Count:
    code_dir, sha = export_tree(ref)
    build_native(code_dir)
    out = out_dir / f"callgrind.{sha}.{events}.out"
    env = {**os.environ, "PYTHONPATH": str(code_dir), "PYTHONHASHSEED": "0"}
    env["DOSSIER_NATIVE"] = "require"
    # The stage republishes every partial each 30 s of wall time: a run 50 times slower
    # would do that more often. Off, for commits whose profile_stage does not say so.
    env["DOSSIER_FULL_PUBLISH_INTERVAL_S"] = "1000000000"
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "common.native",
            "run",
            "bench.profile_stage",
            "--events",
            str(events),
        ],
        cwd=code_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise SystemExit(f"{ref}: profile_stage under callgrind failed:\n{run.stderr[-3000:]}")
    total, functions = inclusive(out)
    return Count(ref, sha, events, total, functions)


def table(counts: list[Count]) -> str:
    head = ["instructions per event", *(f"{c.ref} ({c.sha[:8]})" for c in counts)]
    if len(counts) == 2:
        head.append("change")
    rows = [head, ["---"] + ["---:"] * (len(head) - 1)]
    for phase, names in PHASES.items():
        values = [c.per_event(names) for c in counts]
        row = [phase, *("–" if v is None else f"{v:,.0f}" for v in values)]
        if len(counts) == 2:
            a, b = values
            row.append("–" if a is None or b is None or not a else f"{(b - a) / a:+.1%}")
        rows.append(row)
    whole = [c.total / c.events for c in counts]
    last = ["whole run, start-up included", *(f"{v:,.0f}" for v in whole)]
    if len(counts) == 2:
        last.append(f"{(whole[1] - whole[0]) / whole[0]:+.1%}")
    rows.append(last)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ref", action="append", dest="refs", metavar="GIT_REF")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--out", type=Path, help="JSON of the counts (default: none)")
    args = parser.parse_args(argv)
    refs = args.refs or ["HEAD"]
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install valgrind)")
    out_dir = BENCH_DIR / "callgrind"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"callgrind: bench.profile_stage --events {args.events:,} of {', '.join(refs)}")
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(lambda ref: count(ref, args.events, out_dir), refs))
    print(table(counts))
    if args.out:
        args.out.write_text(
            json.dumps(
                [
                    {
                        "ref": c.ref,
                        "commit": c.sha,
                        "events": c.events,
                        "total": c.total,
                        "per_event": {p: c.per_event(n) for p, n in PHASES.items()},
                    }
                    for c in counts
                ],
                indent=1,
            )
            + "\n"
        )
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
