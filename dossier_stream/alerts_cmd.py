"""List the alerts the worker stored in Redis, or follow them as the worker raises them.

`list` shows the alerts open now (the hash of open alerts) and the most recent alert
events (the alert log); `follow` prints each alert event as the worker stores it, until
Ctrl-C. Times are event time (when the figures crossed the line), shown in Vietnam time.
Reads Redis only; docs/alerts-operations.md describes the output.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import redis
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from common.errors import CommandError
from common.settings import StackSettings
from domain.calendar import VN_TZ
from dossier_stream.watch import connect, redis_url_arg
from schemas.alerts import ACTION_LABELS, ALERT_KINDS, KIND_LABELS, AlertEvent
from schemas.serving import alerts_channel, alerts_log_key, alerts_open_key

log = logging.getLogger(__name__)

SERVICES_HINT = "is it running? `dossier-stream services up` starts the local one"
NO_ALERTS = "Không có cảnh báo / no alerts"
VN_NOTE = "(giờ Việt Nam)"
EXIT_CODES = "exit codes: 0 success, 1 failed (Redis unreachable), 2 usage, 130 interrupted"
LOG_PAGE = 500  # log entries read per round trip while looking for the recent ones

# What a person reads: Vietnamese with English beside it.
SEVERITY_LABELS: dict[str, tuple[str, str]] = {
    "critical": ("nghiêm trọng", "critical"),
    "warning": ("cảnh báo", "warning"),
}
SCOPE_NAMES: dict[str, str] = {
    "city": "Toàn thành phố (city-wide)",
    "level:city": "Sở, ban, ngành (city bodies)",
    "level:commune": "Xã, phường, đặc khu (communes)",
}
# kind -> the figure that crossed the line, and the baseline fields it was compared with
# when the alert opened and when it cleared.
KEY_FIGURES: dict[str, tuple[str, str, str]] = {
    "overdue_spike": ("became_overdue", "open_level", "close_line"),
    "near_due_backlog": ("near_due_now", "open_at", "close_at"),
}

EXAMPLES = """\
examples:
  dossier-stream alerts list                          # open now and the 20 most recent
  dossier-stream alerts list --agency SO-YTE --kind overdue_spike --recent 50
  dossier-stream alerts list --recent 0 --json        # the open ones, JSON Lines for scripts
  dossier-stream alerts follow                        # each alert as it comes, until Ctrl-C
  dossier-stream alerts follow --kind near_due_backlog --json | jq .scope
"""


# -- pure: what is shown -------------------------------------------------------------


def parse_event(raw: str | bytes | None) -> AlertEvent | None:
    """The `AlertEvent` of a stored JSON body; None when it is not one."""
    if raw is None:
        return None
    try:
        return AlertEvent.model_validate_json(raw)
    except ValidationError:
        return None


def matches(event: AlertEvent, *, agency: str | None = None, kind: str | None = None) -> bool:
    """True when the event passes the filters: its agency code (any case) and its kind."""
    if kind is not None and event.kind != kind:
        return False
    if agency is not None:
        code = event.agency or event.scope.removeprefix("agency:")
        if not event.scope.startswith("agency:") or code.casefold() != agency.casefold():
            return False
    return True


def select(
    events: Iterable[AlertEvent], *, agency: str | None = None, kind: str | None = None
) -> list[AlertEvent]:
    """The events that pass the filters, in their order."""
    return [e for e in events if matches(e, agency=agency, kind=kind)]


def when_text(event: AlertEvent, *, note: bool = True) -> str:
    """The event-time instant in Vietnam time: `08/04/2026 11:00 (giờ Việt Nam)`."""
    text = f"{event.at.astimezone(VN_TZ):%d/%m/%Y %H:%M}"
    return f"{text} {VN_NOTE}" if note else text


def kind_text(event: AlertEvent) -> str:
    vi, en = KIND_LABELS[event.kind]
    return f"{vi} ({en})"


def action_text(event: AlertEvent) -> str:
    vi, en = ACTION_LABELS[event.action]
    return f"{vi.lower()}/{en}"


def severity_text(event: AlertEvent) -> str:
    vi, en = SEVERITY_LABELS[event.severity]
    return f"{vi}/{en}"


def who_text(event: AlertEvent) -> str:
    """The agency's name with its diacritics, else the scope's name, else the scope."""
    return event.agency_name or SCOPE_NAMES.get(event.scope) or event.scope


def _percent(value: object, *, always_decimal: bool) -> str | None:
    """A ratio (decimal string or number) as a percentage, rounded half up to 0.1."""
    if value is None or isinstance(value, bool):
        return None
    try:
        pct = (Decimal(str(value)) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    text = f"{pct:.1f}"
    if not always_decimal and text.endswith(".0"):
        text = text[:-2]
    return f"{text}%"


def evidence_text(event: AlertEvent) -> str:
    """The key figure against the line it crossed: `became_overdue 14 ≥ 5`,
    `near_due_now 24 ≥ 20`, `online 64.0% < 80%`; an opening compares with the open
    line, a clearing with the clearing line."""
    f, b, opened = event.figures, event.baseline, event.open
    if event.kind == "online_target":
        ratio = _percent(f.get("online_ratio"), always_decimal=True)
        if ratio is None:
            return f"online – (received {f.get('received', '?')})"
        line = _percent(b.get("target" if opened else "clear_at"), always_decimal=False)
        return f"online {ratio} {'<' if opened else '≥'} {line}" if line else f"online {ratio}"
    figure, open_line, close_line = KEY_FIGURES[event.kind]
    value = f.get(figure)
    against = b.get(open_line if opened else close_line)
    if value is None:
        return ", ".join(f"{k} {v}" for k, v in f.items()) or "–"
    if against is None:
        return f"{figure} {value}"
    return f"{figure} {value} {'≥' if opened else '≤'} {against}"


def row(event: AlertEvent) -> tuple[str, str, str, str, str, str]:
    """A table row: when (without the time-zone note), kind, action, who, severity, figure."""
    return (
        when_text(event, note=False),
        kind_text(event),
        action_text(event),
        who_text(event),
        severity_text(event),
        evidence_text(event),
    )


def line(event: AlertEvent) -> str:
    """One alert on one line, as `follow` prints it."""
    return " · ".join((when_text(event), *row(event)[1:]))


def json_line(event: AlertEvent) -> str:
    """The event as stored (one JSON object, no newline)."""
    return event.model_dump_json()


def once(events: Iterable[AlertEvent]) -> list[AlertEvent]:
    """Each event once (by `id`), the first time it comes."""
    seen: set[str] = set()
    out = []
    for e in events:
        if e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


def open_order(events: Iterable[AlertEvent]) -> list[AlertEvent]:
    """The open alerts, oldest opening first."""
    return sorted(events, key=lambda e: (e.at, e.kind, e.scope, e.id))


HEADERS = (
    f"Lúc {VN_NOTE}\nwhen (Vietnam time)",
    "Loại\nkind",
    "Trạng thái\naction",
    "Đơn vị\nagency or scope",
    "Mức độ\nseverity",
    "Số liệu so với ngưỡng\nfigure vs line",
)


def table(title: str, events: Sequence[AlertEvent]) -> Table:
    t = Table(title=title, title_justify="left", expand=False)
    for i, header in enumerate(HEADERS):
        t.add_column(header, no_wrap=i in (0, 2))
    for e in events:
        cells = row(e)
        style = "red" if e.open and e.severity == "critical" else ("yellow" if e.open else "")
        t.add_row(*cells[:2], Text(cells[2], style=style), *cells[3:])
    return t


# -- adapters: Redis -------------------------------------------------------------------


def read_open(client: redis.Redis, prefix: str) -> list[AlertEvent]:
    """The opening events of the alerts open now."""
    raw = client.hgetall(alerts_open_key(prefix))
    return _valid(raw.values(), alerts_open_key(prefix))


def read_recent(
    client: redis.Redis, prefix: str, n: int, *, agency: str | None, kind: str | None
) -> list[AlertEvent]:
    """The last `n` events of the log that pass the filters, oldest first."""
    key = alerts_log_key(prefix)
    found: list[AlertEvent] = []
    high = "+"
    while n > 0 and len(found) < n:
        page = client.xrevrange(key, max=high, min="-", count=LOG_PAGE)
        if not page:
            break
        events = _valid((fields.get(b"alert") for _, fields in page), key)  # type: ignore[union-attr]
        found.extend(select(events, agency=agency, kind=kind)[: n - len(found)])
        if len(page) < LOG_PAGE:
            break
        last_id = page[-1][0]
        high = "(" + (last_id.decode() if isinstance(last_id, bytes) else str(last_id))
    return found[::-1]


def _valid(bodies: Iterable[bytes | str | None], key: str) -> list[AlertEvent]:
    events, bad = [], 0
    for body in bodies:
        event = parse_event(body)
        if event is None:
            bad += 1
        else:
            events.append(event)
    if bad:
        log.warning("%d entries of %s are not alert events: skipped", bad, key)
    return events


# -- the command -----------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    stack = StackSettings()
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--redis-url", type=redis_url_arg, default=stack.redis_url, help="Redis URL"
    )
    common.add_argument("--redis-prefix", default=stack.redis_prefix, help="Redis key prefix")
    common.add_argument(
        "--agency", metavar="CODE", default=None, help="only this agency's alerts (e.g. SO-YTE)"
    )
    common.add_argument("--kind", choices=ALERT_KINDS, default=None, help="only this kind")
    common.add_argument(
        "--json",
        action="store_true",
        help="print JSON Lines of the alert events (AlertEvent, as stored) instead",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser(
        "list",
        parents=[common],
        help="the alerts open now and the most recent ones",
        description="The alerts open now and the most recent alert events.\nWith --json: "
        "the same events as JSON Lines, each once (by id), the open ones first.",
        epilog=f"{EXAMPLES}\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument(
        "--recent",
        type=_count,
        default=20,
        metavar="N",
        help="how many recent alert events to show (default 20; 0: the open ones only)",
    )
    follow = sub.add_parser(
        "follow",
        parents=[common],
        help="print each alert as the worker raises it, until Ctrl-C",
        description="Print each alert event as the worker stores it, until Ctrl-C (exit 130).",
        epilog=f"{EXAMPLES}\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    follow.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    client = connect(args.redis_url)
    try:
        if args.action == "follow":
            return _follow(client, args)
        return _list(client, args)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise CommandError(f"Redis did not answer ({detail}); {SERVICES_HINT}") from None
    finally:
        client.close()


def _list(client: redis.Redis, args: argparse.Namespace) -> int:
    prefix = args.redis_prefix
    opened = open_order(select(read_open(client, prefix), agency=args.agency, kind=args.kind))
    recent = read_recent(client, prefix, args.recent, agency=args.agency, kind=args.kind)
    if args.json:
        for event in once([*opened, *recent]):
            print(json_line(event))
        return 0
    if not opened and not recent:
        print(NO_ALERTS)
        return 0
    console = Console()
    for title, events in (
        ("Đang mở (open now)", opened),
        (f"Gần đây (recent, last {args.recent})", recent),
    ):
        if events:
            console.print(table(title, events))
        elif title.startswith("Đang mở") or args.recent:
            console.print(f"{title}: không có / none")
    return 0


def _follow(client: redis.Redis, args: argparse.Namespace) -> int:
    channel = alerts_channel(args.redis_prefix)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    # Ctrl-C is noted and acted on between reads (at most a second later), never inside
    # the Redis client, which could otherwise be left mid-reply and not let go.
    stop: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: stop.append(signum))
    try:
        pubsub.subscribe(channel)
        print(f"following {channel} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        for event in _events(pubsub, channel, args.seconds, stop):
            if matches(event, agency=args.agency, kind=args.kind):
                print(json_line(event) if args.json else line(event), flush=True)
        if stop:
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, previous)
        pubsub.close()
    return 0


def _events(
    pubsub: redis.client.PubSub, channel: str, seconds: float | None, stop: list[int]
) -> Iterator[AlertEvent]:
    deadline = None if seconds is None else time.monotonic() + seconds
    while (deadline is None or time.monotonic() < deadline) and not stop:
        message = pubsub.get_message(timeout=1.0)
        if message is None or message.get("type") != "message":
            continue
        event = parse_event(message["data"])
        if event is None:
            log.warning("a message on %s is not an alert event: skipped", channel)
            continue
        yield event
