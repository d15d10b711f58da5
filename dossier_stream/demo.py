"""Run the whole pipeline on a simulated Hải Phòng workload and watch the figures live.

Starts the local Kafka and Redis (installing what is missing), creates the topics,
starts the web dashboard, a stream worker and the simulator as separate processes, and
shows the live figures from Redis until the simulated period ends. Then it prints the
simulator's true figures beside what Redis shows and stops the worker. On a terminal the
dashboard keeps serving until Ctrl-C; the services stay up (`dossier-stream services down`
stops them).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from common import kafka_admin
from common.argtypes import positive_float, positive_int
from common.errors import EXIT_INTERRUPTED, CommandError
from common.settings import StackSettings
from dashboard.settings import DashboardSettings
from domain.calendar import VN_TZ
from domain.figures import window_start
from dossier_stream import localstack
from dossier_stream.settings import LocalStackSettings
from dossier_stream.watch import connect, end_live, render
from schemas.registry import AgencyRegistry
from schemas.serving import meta_key, scope_key

# The live view owns the screen: the steps' logs only with --log-level INFO.
LOG_LEVEL = "WARNING"

EXAMPLES = """\
examples:
  dossier-stream demo                         # a simulated week, 3,600x faster than real time
  dossier-stream demo --days 30 --speed 14400 # a month in about three minutes
  dossier-stream demo --speed max --days 91   # a quarter as fast as possible
  dossier-stream demo --dashboard-port 8080   # the web dashboard on another port
"""

SERVICE_LABELS = {"kafka": "Kafka", "redis": "Redis"}

# (label, key in the simulator's truth, Redis scope)
COMPARED_SCOPES = (
    ("Sở, ban, ngành (city bodies)", "city", "level:city"),
    ("Xã, phường, đặc khu (communes)", "communes", "level:commune"),
    ("Toàn thành phố (city-wide)", "total", "city"),
)

# ds:v1:meta fields, in the order shown, with their labels; other fields follow as they are.
META_FIELDS = (
    ("events_in", "events in"),
    ("applied", "applied"),
    ("duplicates", "duplicates"),
    ("pending", "pending (waiting for an earlier sequence)"),
    ("dead_lettered", "dead letters"),
    ("stuck_dossiers", "stuck dossiers"),
    ("flagged_dossiers", "flagged dossiers"),
    ("clock", "figures as of"),
    ("clock_mode", "clock"),
    ("target_window", "online-target window"),
    ("updated_at", "last flush"),
    ("offsets", "input offsets (partition: next offset)"),
)
_TIMES = {"clock", "updated_at"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=positive_int, default=7, help="simulated days (default 7)")
    parser.add_argument(
        "--speed",
        type=_speed,
        default="3600",
        help="simulated seconds per real second, realtime, or max (default 3600)",
    )
    parser.add_argument("--seed", type=int, default=2025, help="simulator seed (default 2025)")
    parser.add_argument(
        "--scale", type=positive_float, default=1.0, help="fraction of the default volume"
    )
    parser.add_argument("--top", type=positive_int, default=16, help="agencies shown (default 16)")
    parser.add_argument(
        "--dashboard-port",
        type=int,
        default=DashboardSettings().dashboard_port,
        help="port of the web dashboard (default DOSSIER_DASHBOARD_PORT, 8066)",
    )


def _speed(text: str) -> str:
    """As `simulate --speed` takes it; checked here so that a typo fails before any start."""
    if text.lower() in ("max", "realtime"):
        return text.lower()
    try:
        positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number, realtime or max, got {text!r}"
        ) from None
    return text


def run(args: argparse.Namespace) -> int:
    console = Console()
    local = LocalStackSettings()
    stack = StackSettings()
    console.print("[bold]1/5[/bold] starting the local Kafka broker and Redis…")
    for result in localstack.up(local):
        console.print(f"    {started_line(result)}")
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
    client = connect(stack.redis_url)
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
    worker_log, simulate_log = out / "worker.log", out / "simulate.log"
    dashboard_log = out / "dashboard.log"
    url = f"http://127.0.0.1:{args.dashboard_port}/"
    console.print(f"[bold]2/5[/bold] starting the web dashboard (log: {dashboard_log})…")
    dashboard = _spawn(
        [
            "dashboard",
            "--port",
            str(args.dashboard_port),
            "--redis-url",
            stack.redis_url,
            "--redis-prefix",
            stack.redis_prefix,
        ],
        dashboard_log,
        dict(os.environ),
    )
    if wait_http(f"{url}api/v1/health", dashboard, 20.0):
        console.print(f"    dashboard: [bold]{url}[/bold] (open it now: it follows the week live)")
    else:
        console.print(
            f"    [yellow]the dashboard did not start[/yellow]: {last_line(dashboard_log)}"
        )
    console.print(f"[bold]3/5[/bold] starting the stream worker (log: {worker_log})…")
    # The simulator runs its clock faster than the wall clock: the worker's figures
    # follow the events' time.
    env = dict(os.environ) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_APP_ID": app_id,
        "DOSSIER_EVENTS_TOPIC": stack.events_topic,
        "DOSSIER_DEAD_LETTER_TOPIC": stack.dead_letter_topic,
        "DOSSIER_REDIS_PREFIX": stack.redis_prefix,
    }
    worker = _spawn(["worker"], worker_log, env)
    summary = out / "truth.json"
    summary.unlink(missing_ok=True)  # never compare with the truth of an earlier run
    console.print(
        f"[bold]4/5[/bold] simulating {args.days} days at speed {args.speed} (log: {simulate_log})…"
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
        simulate_log,
        env,
    )
    console.print("[bold]5/5[/bold] live figures from Redis (Ctrl-C to stop)")
    registry = AgencyRegistry.default()
    failure: str | None = None
    interrupted = False
    try:
        with Live(
            render(client, stack.redis_prefix, registry, args.top, "city"), console=console
        ) as live:
            settle_until: float | None = None
            while True:
                time.sleep(1.0)
                live.update(render(client, stack.redis_prefix, registry, args.top, "city"))
                if worker.poll() is not None:
                    failure = f"the worker stopped (exit {worker.returncode}); see {worker_log}"
                    break
                if simulate.poll() is not None and settle_until is None:
                    if simulate.returncode != 0:
                        failure = (
                            f"the simulator failed (exit {simulate.returncode}); see {simulate_log}"
                        )
                        break
                    settle_until = time.monotonic() + 5.0
                if settle_until is not None and time.monotonic() > settle_until:
                    break
        end_live(console)
    except KeyboardInterrupt:
        interrupted = True
        console.print("stopping…")
    finally:
        for proc in (simulate, worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
    console.line()
    meta = _hash(client, meta_key(stack.redis_prefix))
    if summary.exists():
        truth = json.loads(summary.read_text(encoding="utf-8"))
        print_comparison(console, client, stack.redis_prefix, truth, meta)
        console.line()
    console.print(Text(f"Worker counts ({meta_key(stack.redis_prefix)})", style="bold"))
    console.print(meta_table(meta))
    console.line()
    console.print(
        f"See the figures again with `dossier-stream watch --redis-prefix {stack.redis_prefix}`. "
        "The services are still running: `dossier-stream services down` stops them."
    )
    if not failure and not interrupted and dashboard.poll() is None and sys.stdout.isatty():
        console.print(
            f"The dashboard is still serving the week's figures on [bold]{url}[/bold]; "
            "press Ctrl-C to stop it and end the demo."
        )
        try:
            dashboard.wait()
        except KeyboardInterrupt:
            console.print("dashboard stopped.")
    elif dashboard.poll() is None:
        console.print(
            "The dashboard stops with the demo; `dossier-stream dashboard --redis-prefix "
            f"{stack.redis_prefix}` serves these figures again."
        )
    _stop(dashboard)
    if failure:
        raise CommandError(failure)
    return EXIT_INTERRUPTED if interrupted else 0


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """True once `url` answers 200; False when `proc` exits or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def last_line(log: Path) -> str:
    """The last line a child process wrote to its log (its error line)."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return f"see {log}"
    return lines[-1] if lines else f"see {log}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def started_line(result: localstack.StartResult) -> str:
    """One line for a service that `localstack.up` started or found running."""
    label = SERVICE_LABELS.get(result.name, result.name)
    if not result.started:
        return f"{label} already running on {result.address} (pid {result.pid})"
    return f"{label} started on {result.address} in {result.seconds:.1f} s (pid {result.pid})"


def _hash(client: redis.Redis, key: str) -> dict[str, str]:
    raw = client.hgetall(key)
    return {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]


def _vn_time(iso: str) -> str:
    try:
        return f"{datetime.fromisoformat(iso).astimezone(VN_TZ):%Y-%m-%d %H:%M:%S} (Vietnam)"
    except ValueError:
        return iso


def comparison_window(truth_start: str, clock: str) -> str | None:
    """The shortest window (mtd, qtd, ytd) at `clock` that holds the whole simulated period."""
    start = int(datetime.fromisoformat(truth_start).timestamp())
    t = int(datetime.fromisoformat(clock).timestamp())
    return next((w for w in ("mtd", "qtd", "ytd") if window_start(w, t) <= start), None)


def print_comparison(
    console: Console,
    client: redis.Redis,
    prefix: str,
    truth: Mapping[str, Any],
    meta: Mapping[str, str],
) -> None:
    """The simulator's true figures beside what Redis shows for the same dossiers."""
    clock = meta.get("clock")
    if clock is None:
        console.print("[red]Redis has no figures yet[/red]")
        return
    window = comparison_window(truth["start"], clock)
    if window is None:
        console.print("the simulated period spans a year end: compare per window with `watch`")
        return
    figures = {scope: _hash(client, scope_key(prefix, scope)) for _, _, scope in COMPARED_SCOPES}
    console.print(
        Text(
            f"Số liệu thật so với Redis (simulator truth vs Redis): window {window}, "
            f"figures as of {_vn_time(clock)}",
            style="bold",
        )
    )
    console.print(truth_table(truth, figures, window))


def truth_table(
    truth: Mapping[str, Any], figures: Mapping[str, Mapping[str, str]], window: str
) -> Table:
    """Received, online share and resolved late: the truth and Redis, per level and city-wide.

    `figures` maps each Redis scope of COMPARED_SCOPES to its hash (empty when missing).
    """
    table = Table()
    table.add_column("Đơn vị\nunit")
    table.add_column("Nguồn\nsource")
    for col in ("Tiếp nhận\nreceived", "Trực tuyến\nonline %", "Giải quyết trễ hạn\nresolved late"):
        table.add_column(col, justify="right")
    table.add_column("Khớp\nmatch", justify="center")
    for label, key, scope in COMPARED_SCOPES:
        unit = truth[key]
        share = unit.get("online_share")
        expected = (
            str(unit["received"]),
            "–" if share is None else f"{share * 100:.1f}",
            str(unit["resolved_late"]),
        )
        fig = figures.get(scope, {})
        received = fig.get(f"{window}.received_total", "0")
        ratio = fig.get(f"{window}.online_ratio")
        shown = (
            received,
            "–" if not ratio or received == "0" else f"{float(ratio) * 100:.1f}",
            fig.get(f"{window}.resolved_late", "0"),
        )
        same = expected == shown
        table.add_row(label, "truth", *expected, "")
        table.add_row(
            "",
            "Redis",
            *shown,
            Text("✓", style="green") if same else Text("✗", style="bold red"),
            end_section=True,
        )
    return table


def meta_table(meta: Mapping[str, str]) -> Table:
    """The worker's counts and clock from its meta hash, one labelled line each."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    if not meta:
        table.add_row("(empty)", "the worker has not flushed yet")
        return table
    known = dict(META_FIELDS)
    for name in [n for n, _ in META_FIELDS if n in meta] + sorted(set(meta) - set(known)):
        table.add_row(known.get(name, name), _meta_value(name, meta[name]))
    return table


def _meta_value(name: str, value: str) -> str:
    if name in _TIMES:
        return _vn_time(value)
    if name == "offsets":
        try:
            offsets = json.loads(value)
        except ValueError:
            return value
        if isinstance(offsets, dict):
            parts = sorted(offsets.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)
            return " · ".join(f"{p}: {int(o):,}" for p, o in parts) or "–"
        return value
    return f"{int(value):,}" if value.lstrip("-").isdigit() else value


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "dossier_stream.cli", *command],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
