"""Run the whole pipeline on a simulated Hải Phòng workload and watch the figures live.

Starts the local Kafka and Redis (installing what is missing), creates the topics,
starts a stream worker and the simulator as separate processes, and shows the live
figures from Redis until the simulated period ends. Then it prints the simulator's
true figures beside what Redis shows, stops the worker, and leaves the services up
(`dossier-stream services down` stops them).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.live import Live
from rich.table import Table

from domain.figures import window_start
from dossier_stream import kafka_admin, localstack
from dossier_stream.settings import LocalStackSettings, StackSettings
from dossier_stream.watch import render
from schemas.registry import AgencyRegistry
from schemas.serving import meta_key, scope_key

EXAMPLES = """\
examples:
  dossier-stream demo                         # a simulated week, 3,600x faster than real time
  dossier-stream demo --days 30 --speed 14400 # a month in about three minutes
  dossier-stream demo --speed max --days 91   # a quarter as fast as possible
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    parser.add_argument(
        "--speed", default="3600", help="simulated seconds per real second, or max (default 3600)"
    )
    parser.add_argument("--seed", type=int, default=2025, help="simulator seed (default 2025)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default volume")
    parser.add_argument("--top", type=int, default=16, help="agencies shown (default 16)")


def run(args: argparse.Namespace) -> int:
    console = Console()
    local = LocalStackSettings()
    stack = StackSettings()
    console.print("[bold]1/4[/bold] starting the local Kafka broker and Redis…")
    for result in localstack.up(local):
        console.print(f"    {result}")
    out = local.stack_dir / "demo"
    out.mkdir(parents=True, exist_ok=True)
    # The demo has topics, a consumer group and Redis keys of its own, cleared at every
    # run, so that its figures can be compared with the simulator's truth.
    stack = stack.model_copy(
        update={
            "events_topic": "demo.dossier.events.v1",
            "dead_letter_topic": "demo.dossier.dlq.v1",
            "redis_prefix": "demo:v1",
        }
    )
    app_id = "dossier-stream-demo"
    client = redis.Redis.from_url(stack.redis_url)
    kafka_admin.delete_topics(
        stack.kafka_bootstrap,
        [
            stack.events_topic,
            stack.dead_letter_topic,
            f"{app_id}-dossier-state",
            f"{app_id}-partials",
            f"{app_id}-scope-partials-changelog",
            f"{app_id}-__assignor-__leader",
        ],
    )
    for key in client.scan_iter(f"{stack.redis_prefix}:*"):
        client.delete(key)
    kafka_admin.ensure_topics(
        stack.kafka_bootstrap, {stack.events_topic: stack.partitions, stack.dead_letter_topic: 1}
    )
    console.print(f"[bold]2/4[/bold] starting the stream worker (log: {out / 'worker.log'})…")
    # The simulator runs its clock faster than the wall clock: the worker's figures
    # follow the events' time.
    env = dict(os.environ) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_APP_ID": app_id,
        "DOSSIER_EVENTS_TOPIC": stack.events_topic,
        "DOSSIER_DEAD_LETTER_TOPIC": stack.dead_letter_topic,
        "DOSSIER_REDIS_PREFIX": stack.redis_prefix,
    }
    worker = _spawn(["worker"], out / "worker.log", env)
    summary = out / "truth.json"
    console.print(
        f"[bold]3/4[/bold] simulating {args.days} days at speed {args.speed} "
        f"(log: {out / 'simulate.log'})…"
    )
    simulate = _spawn(
        [
            "simulate",
            "--days",
            str(args.days),
            "--speed",
            str(args.speed),
            "--seed",
            str(args.seed),
            "--scale",
            str(args.scale),
            "--summary-json",
            str(summary),
            "--quiet",
        ],
        out / "simulate.log",
        env,
    )
    console.print("[bold]4/4[/bold] live figures from Redis (Ctrl-C to stop)")
    registry = AgencyRegistry.default()
    code = 0
    try:
        with Live(
            render(client, stack.redis_prefix, registry, args.top, "city"), console=console
        ) as live:
            settle_until: float | None = None
            while True:
                time.sleep(1.0)
                live.update(render(client, stack.redis_prefix, registry, args.top, "city"))
                if worker.poll() is not None:
                    console.print(
                        f"[red]the worker stopped (exit {worker.returncode}); see its log[/red]"
                    )
                    code = 1
                    break
                if simulate.poll() is not None and settle_until is None:
                    if simulate.returncode != 0:
                        console.print(
                            f"[red]the simulator failed (exit {simulate.returncode})[/red]"
                        )
                        code = 1
                        break
                    settle_until = time.monotonic() + 5.0
                if settle_until is not None and time.monotonic() > settle_until:
                    break
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        for proc in (simulate, worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    if summary.exists():
        _compare(
            console, client, stack.redis_prefix, json.loads(summary.read_text(encoding="utf-8"))
        )
    meta = client.hgetall(meta_key(stack.redis_prefix))
    console.print({k.decode(): v.decode() for k, v in meta.items()})  # type: ignore[union-attr]
    console.print(
        f"see the figures again with `dossier-stream watch --redis-prefix {stack.redis_prefix}`; "
        "the services are still running: `dossier-stream services down` stops them"
    )
    return code


def _compare(console: Console, client: redis.Redis, prefix: str, truth: dict[str, Any]) -> None:
    """The simulator's true figures beside what Redis shows for the same dossiers."""
    start = int(datetime.fromisoformat(truth["start"]).timestamp())
    meta = {k.decode(): v.decode() for k, v in client.hgetall(meta_key(prefix)).items()}  # type: ignore[union-attr]
    if "clock" not in meta:
        console.print("[red]Redis has no figures yet[/red]")
        return
    t = int(datetime.fromisoformat(meta["clock"]).timestamp())
    window = next((w for w in ("mtd", "qtd", "ytd") if window_start(w, t) <= start), None)
    if window is None:
        console.print("the simulated period spans a year end: compare per window with `watch`")
        return
    table = Table(title=f"simulator truth vs Redis (window {window}, clock {meta['clock']})")
    for col in ("", "received", "online %", "resolved late"):
        table.add_column(col, justify="right")
    for label, key, scope in (
        ("city bodies", "city", "level:city"),
        ("communes", "communes", "level:commune"),
        ("whole city", "total", "city"),
    ):
        unit = truth[key]
        raw = client.hgetall(scope_key(prefix, scope))
        fig = {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]
        ratio = fig.get(f"{window}.online_ratio") or "0"
        table.add_row(
            f"{label} (truth)",
            str(unit["received"]),
            "–" if unit["online_share"] is None else f"{unit['online_share'] * 100:.1f}",
            str(unit["resolved_late"]),
        )
        table.add_row(
            f"{label} (Redis)",
            fig.get(f"{window}.received_total", "0"),
            f"{float(ratio) * 100:.1f}",
            fig.get(f"{window}.resolved_late", "0"),
        )
    console.print(table)


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "dossier_stream.cli", *command],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
