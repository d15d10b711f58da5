"""Watch the live figures the worker keeps in Redis: city-wide, per level and per agency.

Refreshes on every update notice from the worker (and at least every second).
Online share below the 80% target is shown in red (the city's target per department).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

import redis
from redis.connection import parse_url
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from common.connections import redis_client
from common.settings import StackSettings
from domain.calendar import VN_TZ
from schemas.registry import AgencyRegistry
from schemas.serving import below_target_key, meta_key, scope_key

ONLINE_TARGET = 0.80
CONNECT_TIMEOUT_S = 5.0

EXAMPLES = """\
examples:
  dossier-stream watch                       # until Ctrl-C
  dossier-stream watch --top 25 --level city
  dossier-stream watch --once                # print one snapshot and exit
"""


def configure(parser: argparse.ArgumentParser) -> None:
    stack = StackSettings()
    parser.add_argument(
        "--redis-url", type=redis_url_arg, default=stack.redis_url, help="Redis URL"
    )
    parser.add_argument("--redis-prefix", default=stack.redis_prefix, help="Redis key prefix")
    parser.add_argument("--top", type=int, default=16, help="agencies to list (by received)")
    parser.add_argument(
        "--level", choices=["city", "commune", "all"], default="city", help="agencies to list"
    )
    parser.add_argument(
        "--window",
        choices=["1h", "24h", "7d", "30d", "mtd", "qtd", "ytd"],
        default="qtd",
        help="window of the received, online and on-time columns (default qtd)",
    )
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")


def redis_url_arg(text: str) -> str:
    """An argparse type: a URL redis-py can use (redis://, rediss:// or unix://)."""
    try:
        parse_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def connect(url: str) -> redis.Redis:
    """A Redis client that gives up connecting after a few seconds, not never."""
    return redis_client(url=url, socket_connect_timeout=CONNECT_TIMEOUT_S)


def _figures(client: redis.Redis, prefix: str, scope: str) -> dict[str, str] | None:
    raw = client.hgetall(scope_key(prefix, scope))
    if not raw:
        return None
    return {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]


def _pct(text: str | None, *, target: bool = False) -> Text:
    if not text:
        return Text("–")
    value = float(text)
    style = ("green" if value >= ONLINE_TARGET else "red") if target else ""
    return Text(f"{value * 100:.1f}%", style=style)


def render(
    client: redis.Redis,
    prefix: str,
    registry: AgencyRegistry,
    top: int,
    level: str,
    window: str = "qtd",
) -> Group:
    meta = {k.decode(): v.decode() for k, v in client.hgetall(meta_key(prefix)).items()}  # type: ignore[union-attr]
    header = Text("Hồ sơ thủ tục hành chính — Hải Phòng (live dossier figures)", style="bold")
    clock = meta.get("clock")
    status = Text(
        f"figures as of {datetime.fromisoformat(clock).astimezone(VN_TZ):%Y-%m-%d %H:%M} "
        "(Vietnam), "
        f"window {window}, clock {meta.get('clock_mode', '?')}"
        if clock
        else "waiting for the worker's first flush…",
        style="dim",
    )
    counts = Text(
        "events in {events_in} · applied {applied} · duplicates {duplicates} · "
        "pending {pending} · dead letters {dead_lettered}".format(
            **{
                k: meta.get(k, "0")
                for k in ("events_in", "applied", "duplicates", "pending", "dead_lettered")
            }
        ),
        style="dim",
    )
    table = Table(expand=True)
    table.add_column("Đơn vị\nunit", ratio=4, no_wrap=True, overflow="ellipsis")
    for col in (
        "Tiếp nhận\nreceived",
        "Trực tuyến\nonline",
        "Toàn trình\nfull online",
        "Đúng hạn\non-time rate",
        "Quá hạn\noverdue now",
        "Sắp trễ\nnear due",
        "Đang xử lý\nopen",
    ):
        table.add_column(col, justify="right", ratio=1)

    def row(name: str, f: dict[str, str] | None, style: str = "") -> None:
        if f is None:
            return
        overdue = int(f.get("overdue_now", "0"))
        table.add_row(
            Text(name, style=style),
            f.get(f"{window}.received_total", "0"),
            _pct(f.get(f"{window}.online_ratio"), target=True),
            _pct(f.get(f"{window}.full_online_ratio")),
            _pct(f.get(f"{window}.on_time_rate")),
            Text(str(overdue), style="red" if overdue else ""),
            f.get("near_due_now", "0"),
            f.get("open_now", "0"),
        )

    row("Toàn thành phố (city-wide)", _figures(client, prefix, "city"), "bold")
    row("Sở, ban, ngành (city bodies)", _figures(client, prefix, "level:city"), "bold")
    row("Xã, phường, đặc khu (communes)", _figures(client, prefix, "level:commune"), "bold")
    agencies = [a for a in registry if level == "all" or a.level.value == level]
    shown = [(a, _figures(client, prefix, f"agency:{a.code}")) for a in agencies]
    ranked = sorted(
        ((a, f) for a, f in shown if f is not None),
        key=lambda af: -int(af[1].get(f"{window}.received_total", "0")),
    )
    table.add_section()
    for agency, figures in ranked[:top]:
        row(agency.name, figures)
    below = sorted(m.decode() for m in client.smembers(below_target_key(prefix)))  # type: ignore[union-attr]
    names = [registry.get(code).name if registry.get(code) else code for code in below]  # type: ignore[union-attr]
    target = Text(
        f"dưới 80% trực tuyến (below the 80% online target): {', '.join(names) or '—'}",
        style="yellow",
    )
    return Group(header, status, counts, table, target)


def run(args: argparse.Namespace) -> int:
    client = connect(args.redis_url)
    registry = AgencyRegistry.default()
    if args.once:
        Console().print(
            render(client, args.redis_prefix, registry, args.top, args.level, args.window)
        )
        return 0
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{args.redis_prefix}:updates")
    with Live(
        render(client, args.redis_prefix, registry, args.top, args.level, args.window),
        auto_refresh=False,
    ) as live:
        while deadline is None or time.monotonic() < deadline:
            pubsub.get_message(timeout=1.0)
            while pubsub.get_message(timeout=0.0):
                pass  # coalesce a burst of notices into one redraw
            live.update(
                render(client, args.redis_prefix, registry, args.top, args.level, args.window),
                refresh=True,
            )
    end_live(live.console)
    return 0


def end_live(console: Console) -> None:
    """End the line a Live display leaves open when the output is not a terminal."""
    if not console.is_terminal:
        console.line()
