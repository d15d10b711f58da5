"""The city overview and the agencies that need attention, live in a terminal, from Redis.

Redraws on every update notice of the worker (and at least every two seconds). Agencies
are ranked by their dossiers overdue now (quá hạn); each is marked when its online share
is below the target, when its overdue dossiers are rising (more became overdue in the last
24 hours than in the 24 before), or when it has an open alert.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from common.argtypes import positive_int
from common.connections import redis_client
from dashboard.format import vn_datetime, vn_number, vn_percent
from dashboard.labels import FIELD_LABELS, WINDOW_LABELS, both
from dashboard.pages import TableView, figure_value, table_rows
from dashboard.reader import Reader
from dashboard.settings import DashboardSettings
from dossier_stream.watch import CONNECT_TIMEOUT_S, end_live, redis_url_arg
from schemas.registry import AgencyRegistry
from schemas.serving import WINDOWS, OverviewResponse, updates_channel

EXAMPLES = """\
examples:
  dossier-stream top                          # until Ctrl-C
  dossier-stream top --window 24h --top 20    # the last 24 hours, twenty agencies
  dossier-stream top --level commune          # communes and wards only
  dossier-stream top --once                   # print one snapshot and exit
"""

REFRESH_S = 2.0


def configure(parser: argparse.ArgumentParser) -> None:
    settings = DashboardSettings()
    parser.add_argument(
        "--redis-url", type=redis_url_arg, default=settings.redis_url, help="Redis URL"
    )
    parser.add_argument("--redis-prefix", default=settings.redis_prefix, help="Redis key prefix")
    parser.add_argument(
        "--window",
        choices=WINDOWS,
        default=None,
        help="window of received, online and on-time figures (default: the worker's target window)",
    )
    parser.add_argument(
        "--level", choices=["all", "city", "commune"], default="all", help="agencies to list"
    )
    parser.add_argument(
        "--top", type=positive_int, default=15, help="agencies to list (default 15)"
    )
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")


def render(data: OverviewResponse, top: int, level: str = "all") -> Group:
    """The city's figures over the window, then the `top` agencies with most overdue now."""
    w = data.window
    header = Text(
        "Hồ sơ thủ tục hành chính — Hải Phòng (administrative dossiers, live)", style="bold"
    )
    if data.meta is None:
        return Group(header, Text("chưa có số liệu (waiting for the worker's first flush)…"))
    status = Text(
        f"số liệu lúc (figures as of) {vn_datetime(data.meta.clock)} giờ Việt Nam · "
        f"{both(WINDOW_LABELS[w])} · {vn_number(data.events_in)} sự kiện (events)",
        style="dim",
    )
    city = data.city
    cards = Table.grid(padding=(0, 3))
    fields = (
        ("received_total", f"{w}.received_total"),
        ("online_ratio", f"{w}.online_ratio"),
        ("full_online_ratio", f"{w}.full_online_ratio"),
        ("on_time_rate", f"{w}.on_time_rate"),
        ("overdue_now", "overdue_now"),
        ("near_due_now", "near_due_now"),
    )
    for _ in fields:
        cards.add_column(justify="right")
    cards.add_row(*(Text(both(FIELD_LABELS[label]), style="dim") for label, _ in fields))
    cards.add_row(*(_cell(city, field, data.online_target) for _, field in fields))
    table = Table(expand=True, title="Đơn vị cần chú ý (agencies by overdue now)")
    table.add_column("Đơn vị (agency)", ratio=4, no_wrap=True, overflow="ellipsis")
    for label, _ in fields:
        table.add_column(both(FIELD_LABELS[label]), justify="right", ratio=1)
    table.add_column("Đánh dấu (marks)", ratio=2)
    for row in table_rows(data.agencies, TableView("overdue", True, level), w)[:top]:
        marks = [
            m
            for m, on in (
                ("dưới chỉ tiêu (below target)", row.below_target),
                ("quá hạn tăng (overdue rising)", row.overdue_rising),
                ("cảnh báo (alert)", bool(row.open_alerts)),
            )
            if on
        ]
        table.add_row(
            row.name,
            *(_cell(row.figures, field, data.online_target) for _, field in fields),
            Text(", ".join(marks), style="yellow"),
        )
    below = [r.name for r in data.agencies if r.below_target]
    return Group(
        header,
        status,
        cards,
        table,
        Text(
            f"dưới chỉ tiêu {vn_percent(data.online_target, 0)} trực tuyến (below the online "
            f"target): {', '.join(below) or '—'}",
            style="yellow",
        ),
        Text(f"cảnh báo đang mở (open alerts): {len(data.alerts.open)}", style="dim"),
    )


def _cell(figures: object, field: str, target: float) -> Text:
    value = figure_value(figures, field)  # type: ignore[arg-type]
    if field.endswith(("_ratio", "_rate")):
        style = ""
        if field.endswith(".online_ratio") and value is not None:
            style = "green" if value >= target else "red"
        return Text(vn_percent(value), style=style)
    style = "red" if field == "overdue_now" and value else ""
    return Text(vn_number(value), style=style)


def run(args: argparse.Namespace) -> int:
    settings = DashboardSettings()
    client = redis_client(
        settings,
        url=args.redis_url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
    )
    reader = Reader(client, args.redis_prefix, AgencyRegistry.default(), settings.online_target)

    def view() -> Group:
        return render(reader.overview(args.window), args.top, args.level)

    if args.once:
        Console().print(view())
        return 0
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(updates_channel(args.redis_prefix))
    with Live(view(), auto_refresh=False) as live:
        while deadline is None or time.monotonic() < deadline:
            pubsub.get_message(timeout=REFRESH_S)
            while pubsub.get_message(timeout=0.0):
                pass  # one redraw for a burst of notices
            live.update(view(), refresh=True)
    end_live(live.console)
    return 0
