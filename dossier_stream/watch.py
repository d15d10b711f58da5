"""Watch the live figures the worker keeps in Redis: city-wide, per level and per agency.

Refreshes on every update notice from the worker (and at least every second).
Online share below the 80% target is shown in red (the city's target per department).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

import redis
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from dossier_stream.settings import StackSettings
from schemas.registry import AgencyRegistry
from schemas.serving import ScopeFigures, meta_key, scope_key

ONLINE_TARGET = 0.80

EXAMPLES = """\
examples:
  dossier-stream watch                       # until Ctrl-C
  dossier-stream watch --top 25 --level city
  dossier-stream watch --once                # print one snapshot and exit
"""


def configure(parser: argparse.ArgumentParser) -> None:
    stack = StackSettings()
    parser.add_argument("--redis-url", default=stack.redis_url, help="Redis URL")
    parser.add_argument("--redis-prefix", default=stack.redis_prefix, help="Redis key prefix")
    parser.add_argument("--top", type=int, default=16, help="agencies to list (by received)")
    parser.add_argument(
        "--level", choices=["city", "commune", "all"], default="city", help="agencies to list"
    )
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")


def _figures(client: redis.Redis, prefix: str, scope: str) -> ScopeFigures | None:
    raw = client.hgetall(scope_key(prefix, scope))
    if not raw:
        return None
    return ScopeFigures.model_validate({k.decode(): int(v) for k, v in raw.items()})  # type: ignore[union-attr]


def _pct(value: float | None) -> Text:
    if value is None:
        return Text("–")
    style = "green" if value >= ONLINE_TARGET else "red"
    return Text(f"{value * 100:5.1f}%", style=style)


def render(client: redis.Redis, prefix: str, registry: AgencyRegistry, top: int, level: str) -> Group:
    meta = {k.decode(): v.decode() for k, v in client.hgetall(meta_key(prefix)).items()}  # type: ignore[union-attr]
    header = Text("Hồ sơ thủ tục hành chính — Hải Phòng (live dossier figures)", style="bold")
    updated = meta.get("updated_at")
    status = Text(
        f"updated {datetime.fromisoformat(updated).astimezone():%Y-%m-%d %H:%M:%S}" if updated
        else "waiting for the worker's first flush…",
        style="dim",
    )
    counts = Text(
        "events in {events_in} · applied {applied} · duplicates {duplicates} · "
        "pending {pending} · dead letters {dead_lettered}".format(
            **{k: meta.get(k, "0") for k in ("events_in", "applied", "duplicates", "pending", "dead_lettered")}
        ),
        style="dim",
    )
    table = Table(expand=True)
    for col, justify in [
        ("Đơn vị (unit)", "left"),
        ("Tiếp nhận (received)", "right"),
        ("Trực tuyến (online)", "right"),
        ("Toàn trình (full)", "right"),
        ("Đúng hạn (on time)", "right"),
        ("Trễ hạn (late)", "right"),
        ("Đang xử lý (open)", "right"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]

    def row(name: str, f: ScopeFigures | None, style: str = "") -> None:
        if f is None:
            return
        full = f.received_online_full / f.received_total if f.received_total else None
        table.add_row(
            Text(name, style=style),
            str(f.received_total),
            _pct(f.online_ratio),
            Text("–" if full is None else f"{full * 100:5.1f}%"),
            str(f.resolved_on_time),
            Text(str(f.resolved_late), style="red" if f.resolved_late else ""),
            str(f.open),
        )

    row("Toàn thành phố (city-wide)", _figures(client, prefix, "city"), "bold")
    row("Sở, ban, ngành (city bodies)", _figures(client, prefix, "level:city"), "bold")
    row("Xã, phường, đặc khu (communes)", _figures(client, prefix, "level:commune"), "bold")
    agencies = [
        a for a in registry if level == "all" or a.level.value == level
    ]
    shown = [(a, _figures(client, prefix, f"agency:{a.code}")) for a in agencies]
    ranked = sorted(
        ((a, f) for a, f in shown if f is not None), key=lambda af: -af[1].received_total
    )
    table.add_section()
    for agency, figures in ranked[:top]:
        row(agency.name, figures)
    return Group(header, status, counts, table)


def run(args: argparse.Namespace) -> int:
    client = redis.Redis.from_url(args.redis_url)
    registry = AgencyRegistry.default()
    if args.once:
        from rich.console import Console

        Console().print(render(client, args.redis_prefix, registry, args.top, args.level))
        return 0
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{args.redis_prefix}:updates")
    with Live(render(client, args.redis_prefix, registry, args.top, args.level), auto_refresh=False) as live:
        while deadline is None or time.monotonic() < deadline:
            pubsub.get_message(timeout=1.0)
            while pubsub.get_message(timeout=0.0):
                pass  # coalesce a burst of notices into one redraw
            live.update(render(client, args.redis_prefix, registry, args.top, args.level), refresh=True)
    return 0
