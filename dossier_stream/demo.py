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
from pathlib import Path

import redis
from rich.console import Console
from rich.live import Live

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
    parser.add_argument("--days", type=float, default=7, help="simulated days (default 7)")
    parser.add_argument(
        "--speed", default="3600", help="simulated seconds per real second, or max (default 3600)"
    )
    parser.add_argument("--seed", type=int, default=2025, help="simulator seed (default 2025)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default volume")
    parser.add_argument("--top", type=int, default=16, help="agencies shown (default 16)")
    parser.add_argument("--fresh", action="store_true", help="delete the demo's topics and keys first")


def run(args: argparse.Namespace) -> int:
    console = Console()
    local = LocalStackSettings()
    stack = StackSettings()
    console.print("[bold]1/4[/bold] starting the local Kafka broker and Redis…")
    for result in localstack.up(local):
        console.print(f"    {result}")
    out = local.stack_dir / "demo"
    out.mkdir(parents=True, exist_ok=True)
    client = redis.Redis.from_url(stack.redis_url)
    if args.fresh:
        kafka_admin.delete_topics(stack.kafka_bootstrap, [stack.events_topic, stack.dead_letter_topic])
        for key in client.scan_iter(f"{stack.redis_prefix}:*"):
            client.delete(key)
    kafka_admin.ensure_topics(
        stack.kafka_bootstrap, {stack.events_topic: stack.partitions, stack.dead_letter_topic: 1}
    )
    console.print(f"[bold]2/4[/bold] starting the stream worker (log: {out / 'worker.log'})…")
    # The simulator runs its clock faster than the wall clock: the worker's figures
    # follow the events' time.
    env = dict(os.environ) | {"DOSSIER_CLOCK": "event"}
    worker = _spawn(["worker"], out / "worker.log", env)
    summary = out / "truth.json"
    console.print(
        f"[bold]3/4[/bold] simulating {args.days:g} days at speed {args.speed} "
        f"(log: {out / 'simulate.log'})…"
    )
    simulate = _spawn(
        [
            "simulate",
            "--days", str(args.days),
            "--speed", str(args.speed),
            "--seed", str(args.seed),
            "--scale", str(args.scale),
            "--summary-json", str(summary),
            "--quiet",
        ],
        out / "simulate.log",
        env,
    )
    console.print("[bold]4/4[/bold] live figures from Redis (Ctrl-C to stop)")
    registry = AgencyRegistry.default()
    code = 0
    try:
        with Live(render(client, stack.redis_prefix, registry, args.top, "city"), console=console) as live:
            settle_until: float | None = None
            while True:
                time.sleep(1.0)
                live.update(render(client, stack.redis_prefix, registry, args.top, "city"))
                if worker.poll() is not None:
                    console.print(f"[red]the worker stopped (exit {worker.returncode}); see its log[/red]")
                    code = 1
                    break
                if simulate.poll() is not None and settle_until is None:
                    if simulate.returncode != 0:
                        console.print(f"[red]the simulator failed (exit {simulate.returncode})[/red]")
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
        _compare(console, client, stack.redis_prefix, json.loads(summary.read_text(encoding="utf-8")))
    meta = client.hgetall(meta_key(stack.redis_prefix))
    console.print({k.decode(): v.decode() for k, v in meta.items()})  # type: ignore[union-attr]
    console.print("services are still running; stop them with `dossier-stream services down`")
    return code


def _compare(console: Console, client: redis.Redis, prefix: str, truth: dict) -> None:  # type: ignore[type-arg]
    """Print the simulator's true totals beside Redis's city-wide figures."""
    city = {k.decode(): v.decode() for k, v in client.hgetall(scope_key(prefix, "city")).items()}  # type: ignore[union-attr]
    console.print("[bold]simulator truth vs Redis (city-wide, received)[/bold]")
    console.print(f"  truth:  {truth.get('city', truth).get('received_total', '?') if isinstance(truth.get('city', truth), dict) else '?'}")
    console.print(f"  Redis:  {city.get('received_total', '?')}")


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    handle = open(log, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "dossier_stream.cli", *command],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
