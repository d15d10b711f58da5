"""Run the whole pipeline on a simulated Hải Phòng workload and watch the figures live.

Starts the local Kafka and Redis (installing what is missing), creates the topics,
starts the web dashboard, a stream worker and the simulator as separate processes, and
shows the live figures and alerts from Redis until the simulated period ends. Then it
prints the simulator's true figures beside what Redis shows, the alerts of the run, and
stops the worker. On a terminal the dashboard keeps serving until Ctrl-C; the services
stay up (`dossier-stream services down` stops them).

By default the simulator injects one incident (`simulate --incident`): most of Sở Xây
dựng's dossiers falling due over 48 hours near the end of the period are late, and the
overdue-spike alert opens while the demo runs. The spike rule compares a working day with
the scope's previous ones and judges only once it has 10 working days of history
(docs/alerts.md), so the default period is four weeks with the incident in the last days.
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
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from common import kafka_admin
from common.argtypes import positive_float, positive_int
from common.errors import EXIT_INTERRUPTED, CommandError
from common.settings import StackSettings
from dashboard.settings import DashboardSettings
from domain.calendar import VN_TZ, WorkingCalendar
from domain.figures import window_start
from dossier_stream import alerts_cmd, localstack
from dossier_stream.settings import LocalStackSettings
from dossier_stream.watch import connect, end_live, render
from producers.simulator import Incident
from schemas.alerts import ACTION_LABELS, KIND_LABELS, AlertEvent
from schemas.registry import AgencyRegistry
from schemas.serving import alerts_log_key, meta_key, scope_key

# The live view owns the screen: the steps' logs only with --log-level INFO.
LOG_LEVEL = "WARNING"

EXAMPLES = """\
examples:
  dossier-stream demo                         # four weeks, a simulated day every 4 s, one incident
  dossier-stream demo --no-incident           # the same four weeks, no incident injected
  dossier-stream demo --start 2026-03-02 --incident SO-YTE:2026-03-25T08:00:00+07:00:48
  dossier-stream demo --days 56 --speed 43200 # eight weeks, a simulated day every 2 s
  dossier-stream demo --speed max --days 91   # a quarter as fast as possible
  dossier-stream demo --dashboard-port 8080   # the web dashboard on another port
"""

DEFAULT_DAYS = 28  # four weeks: the spike rule's baseline is the previous 20 working days
DEFAULT_SPEED = "21600"  # six simulated hours a second: a simulated day every 4 s
# The default incident: a department with enough volume for a clear spike, 48 hours from
# 08:00 of a working day, so that the day's appointments fall due late at the midnight.
INCIDENT_AGENCY = "SO-XD"
INCIDENT_HOURS = 48.0
INCIDENT_HOUR = 8
# The spike rule judges once 10 working days of history are covered (docs/alerts.md); the
# first days of a simulation have almost nothing overdue yet, so ask for more.
MIN_HISTORY_WORKING_DAYS = 15
RECENT_ALERTS = 5  # alert events in the live view
OPEN_ALERTS_SHOWN = 5  # open alerts in the live view
RUN_SPIKES_SHOWN = 30  # overdue-spike events in the summary at the end
NO_ALERT_YET = "Chưa có cảnh báo / no alert yet"
CATCH_UP_S = 60.0  # at most this long for the worker to read what the simulator sent
SETTLE_S = 3.0  # then this long for its last flush and alert judgement

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
    parser.add_argument(
        "--days",
        type=positive_int,
        default=DEFAULT_DAYS,
        help=f"simulated days (default {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--start",
        type=_date,
        default=None,
        metavar="DATE",
        help="first simulated day, ISO date (default: DAYS days before today in Vietnam, "
        "so the period ends at today's 00:00; with --speed realtime, today)",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=DEFAULT_SPEED,
        help="simulated seconds per real second, realtime, or max "
        f"(default {DEFAULT_SPEED}: a simulated day every {86400 / float(DEFAULT_SPEED):g} s)",
    )
    incidents = parser.add_mutually_exclusive_group()
    incidents.add_argument(
        "--incident",
        type=_incident,
        action="append",
        default=None,
        metavar="AGENCY:START:HOURS",
        help="inject an overdue spike: most of the agency's dossiers falling due in the "
        "window are late, e.g. SO-XD:2026-03-10T08:00:00+07:00:48 (repeatable; default: "
        f"{INCIDENT_AGENCY}, {INCIDENT_HOURS:g} h from {INCIDENT_HOUR:02d}:00 of the last "
        "working day whose window ends inside the period)",
    )
    incidents.add_argument(
        "--no-incident", action="store_true", help="inject no incident (no spike expected)"
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


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def _incident(text: str) -> Incident:
    """AGENCY:START:HOURS as `simulate --incident` takes it, with a known agency code."""
    try:
        incident = Incident.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if AgencyRegistry.default().get(incident.agency_code) is None:
        raise argparse.ArgumentTypeError(
            f"unknown agency code {incident.agency_code!r} "
            "(the codes are in schemas/data/haiphong_agencies.json, e.g. SO-XD)"
        )
    return incident


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
    if not console.is_terminal:  # a log file: the tables at a readable width
        console.width = max(console.width, 160)
    registry = AgencyRegistry.default()
    start = args.start or period_start(args.speed, args.days, datetime.now(VN_TZ))
    incidents = chosen_incidents(args, start, WorkingCalendar())
    for line in plan_lines(start, args.days, args.speed, incidents, registry, args.no_incident):
        console.print(line)
    local = LocalStackSettings()
    stack = StackSettings()
    console.print("[bold]1/5[/bold] starting the local Kafka broker and Redis…")
    for result in localstack.up(local):
        console.print(f"    {started_line(result)}")
    out = local.stack_dir / "demo"
    out.mkdir(parents=True, exist_ok=True)
    # The demo has topics, a consumer group and Redis keys of its own, cleared at every
    # run, so that its figures can be compared with the simulator's truth (and its alerts
    # reach no receiver of the real ones).
    stack = stack.model_copy(
        update={
            "events_topic": "demo.dossier.events.v1",
            "dead_letter_topic": "demo.dossier.dlq.v1",
            "redis_prefix": "demo:v1",
        }
    )
    alerts_topic, undelivered_topic = "demo.dossier.alerts.v1", "demo.dossier.alerts.undelivered.v1"
    app_id = "dossier-stream-demo"
    client = connect(stack.redis_url)
    kafka_admin.delete_topics(
        stack.kafka_bootstrap,
        [
            stack.events_topic,
            stack.dead_letter_topic,
            alerts_topic,
            undelivered_topic,
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
    started = time.monotonic()
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
        console.print(f"    dashboard: [bold]{url}[/bold] (open it now: it follows the run live)")
    else:
        console.print(
            f"    [yellow]the dashboard did not start[/yellow]: {last_line(dashboard_log)}"
        )
    console.print(f"[bold]3/5[/bold] starting the stream worker (log: {worker_log})…")
    # The simulator runs its clock faster than the wall clock: the worker's figures
    # follow the events' time. Its alerts go to the demo's own topics and to no webhook.
    env = dict(os.environ) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_APP_ID": app_id,
        "DOSSIER_EVENTS_TOPIC": stack.events_topic,
        "DOSSIER_DEAD_LETTER_TOPIC": stack.dead_letter_topic,
        "DOSSIER_REDIS_PREFIX": stack.redis_prefix,
        "DOSSIER_ALERTS": "true",
        "DOSSIER_ALERTS_TOPIC": alerts_topic,
        "DOSSIER_ALERTS_UNDELIVERED_TOPIC": undelivered_topic,
        "DOSSIER_ALERT_WEBHOOKS": "",
        # The spike rule's hourly inputs travel with the time series: every 5 s by default,
        # more than a simulated day at the default speed. Each second, the alert shows
        # within a few simulated hours of its instant.
        "DOSSIER_SERIES_INTERVAL_S": "1",
    }
    worker = _spawn(["worker"], worker_log, env)
    summary = out / "truth.json"
    summary.unlink(missing_ok=True)  # never compare with the truth of an earlier run
    console.print(
        f"[bold]4/5[/bold] simulating {args.days} days at speed {args.speed} (log: {simulate_log})…"
    )
    simulate = _spawn(
        simulate_command(args, start, incidents, summary),
        simulate_log,
        env,
    )
    console.print("[bold]5/5[/bold] live figures and alerts from Redis (Ctrl-C to stop)")
    seen: dict[str, float] = {}  # alert event id -> seconds since the demo started
    failure: str | None = None
    interrupted = False

    def view() -> RenderableType:
        opened, recent = read_alerts(client, stack.redis_prefix, RECENT_ALERTS)
        now = time.monotonic() - started
        for event in (*opened, *recent):
            seen.setdefault(event.id, now)
        return live_view(
            console,
            lambda top: render(client, stack.redis_prefix, registry, top, "city"),
            alert_panel(opened, recent),
            args.top,
        )

    try:
        with Live(view(), console=console) as live:
            sent: int | None = None
            finished_at = caught_up_at = None
            while True:
                time.sleep(1.0)
                live.update(view())
                if worker.poll() is not None:
                    failure = f"the worker stopped (exit {worker.returncode}); see {worker_log}"
                    break
                if simulate.poll() is not None and finished_at is None:
                    if simulate.returncode != 0:
                        failure = (
                            f"the simulator failed (exit {simulate.returncode}); see {simulate_log}"
                        )
                        break
                    finished_at = time.monotonic()
                    sent = events_sent(summary)
                if finished_at is None:
                    continue
                # Wait for the worker to read everything the simulator sent, then for its
                # last flush and alert judgement (at most CATCH_UP_S).
                now = time.monotonic()
                meta = _hash(client, meta_key(stack.redis_prefix))
                if caught_up_at is None and caught_up(meta, sent):
                    caught_up_at = now
                if caught_up_at is not None and now > caught_up_at + SETTLE_S:
                    break
                if now > finished_at + CATCH_UP_S:
                    break
            live.update(view())
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
    print_run_alerts(console, client, stack.redis_prefix, incidents, registry, seen)
    console.line()
    console.print(Text(f"Worker counts ({meta_key(stack.redis_prefix)})", style="bold"))
    console.print(meta_table(meta))
    console.line()
    console.print(
        f"Demo wall time: {_duration(time.monotonic() - started)}. "
        f"See the figures again with `dossier-stream watch --redis-prefix {stack.redis_prefix}`, "
        f"the alerts with `dossier-stream alerts list --redis-prefix {stack.redis_prefix}`. "
        "The services are still running: `dossier-stream services down` stops them."
    )
    if not failure and not interrupted and dashboard.poll() is None and sys.stdout.isatty():
        console.print(
            f"The dashboard is still serving the run's figures on [bold]{url}[/bold]; "
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


# -- the period, the incident and the simulator's command line ----------------------------


def period_start(speed: str, days: int, now: datetime) -> date:
    """The first simulated day, as `simulate` picks it without --start.

    The `days` days end at today's 00:00 in Vietnam, so no event is dated in the future (the
    worker dead-letters those); a realtime run starts today.
    """
    today = now.astimezone(VN_TZ).date()
    return today if speed == "realtime" else today - timedelta(days=days)


def default_incident(start: date, days: int, calendar: WorkingCalendar) -> Incident | None:
    """INCIDENT_AGENCY, INCIDENT_HOURS from INCIDENT_HOUR:00 of the last working day D whose
    window ends inside the period; None when fewer than MIN_HISTORY_WORKING_DAYS working
    days of the period come before D (the spike rule would not judge it yet).

    The window spans the midnight after D, when D's day-limit dossiers fall due (most of
    them late): the spike opens at that 00:00, a day or more before the period ends.
    """
    end = _at(start + timedelta(days=days))  # the period ends at this instant
    day = start + timedelta(days=days - 1)
    while day >= start and not (
        calendar.is_working_day(day)
        and _at(day, INCIDENT_HOUR) + timedelta(hours=INCIDENT_HOURS) <= end
    ):
        day -= timedelta(days=1)
    history = sum(
        calendar.is_working_day(start + timedelta(days=i)) for i in range((day - start).days)
    )
    if day < start or history < MIN_HISTORY_WORKING_DAYS:
        return None
    return Incident(INCIDENT_AGENCY, _at(day, INCIDENT_HOUR), INCIDENT_HOURS)


def _at(day: date, hour: int = 0) -> datetime:
    """`day` at `hour`:00 in Vietnam time."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=VN_TZ)


def chosen_incidents(
    args: argparse.Namespace, start: date, calendar: WorkingCalendar
) -> tuple[Incident, ...]:
    """The incidents to inject: none with --no-incident, those given, else the default."""
    if args.no_incident:
        return ()
    if args.incident:
        return tuple(args.incident)
    incident = default_incident(start, args.days, calendar)
    return () if incident is None else (incident,)


def incident_arg(incident: Incident) -> str:
    """AGENCY:START:HOURS as `simulate --incident` reads it back."""
    return f"{incident.agency_code}:{incident.start.isoformat()}:{incident.hours:g}"


def simulate_command(
    args: argparse.Namespace, start: date, incidents: Sequence[Incident], summary: Path
) -> list[str]:
    """The simulator's arguments: the demo's period, speed, workload and incidents."""
    command = [
        "simulate",
        "--start",
        start.isoformat(),
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
    ]
    for incident in incidents:
        command += ["--incident", incident_arg(incident)]
    return command


def first_due_midnight(incident: Incident) -> datetime:
    """The first 00:00 (Vietnam) inside the incident's window: when day-limit dossiers fall
    due late, and the overdue spike opens (event time)."""
    start = incident.start.astimezone(VN_TZ)
    midnight = _at(start.date())
    return midnight if midnight == start else midnight + timedelta(days=1)


def plan_lines(
    start: date,
    days: int,
    speed: str,
    incidents: Sequence[Incident],
    registry: AgencyRegistry,
    no_incident: bool,
) -> list[str]:
    """The demo's first lines: the simulated period, and which agency has an incident when."""
    last = start + timedelta(days=days - 1)
    pace = ""
    if speed not in ("max", "realtime"):
        pace = f", a simulated day every {_duration(86400 / float(speed))}"
    lines = [
        f"Mô phỏng / simulating {days} days: {start:%d/%m/%Y} → {last:%d/%m/%Y} "
        f"{alerts_cmd.VN_NOTE}, speed {speed}{pace}"
    ]
    if not incidents:
        if no_incident:
            lines.append("Không có sự cố giả lập / no incident injected (--no-incident)")
        else:
            lines.append(
                "Không có sự cố giả lập / no incident injected: the overdue-spike rule needs "
                f"{MIN_HISTORY_WORKING_DAYS} working days of history before one "
                f"(try --days {max(DEFAULT_DAYS, days + 14)})"
            )
        return lines
    period_start_at, period_end_at = _at(start), _at(start + timedelta(days=days))
    spike_vi, spike_en = KIND_LABELS["overdue_spike"]
    for incident in incidents:
        agency = registry.get(incident.agency_code)
        name = agency.name if agency else incident.agency_code
        begin = incident.start.astimezone(VN_TZ)
        finish = incident.end.astimezone(VN_TZ)
        lines.append(
            f"Sự cố giả lập / injected incident: {name} ({incident.agency_code}), "
            f"{begin:%d/%m/%Y %H:%M} → {finish:%d/%m/%Y %H:%M} {alerts_cmd.VN_NOTE}, "
            f"{incident.hours:g} h: most of its dossiers falling due then are late"
        )
        if incident.end <= period_start_at or incident.start >= period_end_at:
            lines.append("    [yellow]outside the simulated period: it changes nothing[/yellow]")
            continue
        due = first_due_midnight(incident)
        when = ""
        if speed not in ("max", "realtime") and period_start_at <= due < period_end_at:
            # An opening is emitted once the hour of the burst is over.
            wall = (due + timedelta(hours=1) - period_start_at).total_seconds() / float(speed)
            when = f", about {_duration(wall)} into the simulation"
        lines.append(
            f"    watch for the alert {spike_vi} ({spike_en}) at {name}: stamped "
            f"{due.astimezone(VN_TZ):%d/%m/%Y %H:%M} {alerts_cmd.VN_NOTE}{when}"
        )
    return lines


def _duration(seconds: float) -> str:
    """`45 s`, `4 s`, `2 min 06 s`."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    return f"{whole // 60} min {whole % 60:02d} s"


def events_sent(summary: Path) -> int | None:
    """The events the simulator sent, from its summary file; None when unreadable."""
    try:
        run = json.loads(summary.read_text(encoding="utf-8"))["run"]
        return int(run["emitted"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def caught_up(meta: Mapping[str, str], sent: int | None) -> bool:
    """True once the worker has read every event sent (`events_in` of its meta hash);
    with an unknown count, once it has read any."""
    try:
        read = int(meta.get("events_in", "0"))
    except ValueError:
        return False
    return read >= sent if sent is not None else read > 0


# -- the alerts: live and at the end --------------------------------------------------------


def read_alerts(
    client: redis.Redis, prefix: str, recent: int
) -> tuple[list[AlertEvent], list[AlertEvent]]:
    """The open alerts (oldest opening first) and the last `recent` alert events (oldest
    first), from `{prefix}:alerts:open` and `{prefix}:alerts:log`."""
    opened = alerts_cmd.open_order(alerts_cmd.read_open(client, prefix))
    return opened, alerts_cmd.read_recent(client, prefix, recent, agency=None, kind=None)


def panel_order(opened: Sequence[AlertEvent]) -> list[AlertEvent]:
    """The open alerts as the panel lists them: critical first, then the latest opening
    first (an overdue spike stays in view among the day's warnings), an agency before the
    city-wide and level scopes that opened with it."""
    return sorted(
        opened,
        key=lambda e: (
            e.severity != "critical",
            -e.at.timestamp(),
            not e.scope.startswith("agency:"),
            e.scope,
        ),
    )


ALERT_HEADERS = (
    f"Lúc {alerts_cmd.VN_NOTE}\nwhen (Vietnam time)",
    "Loại\nkind",
    "Đơn vị\nagency",
    "Trạng thái\naction",
    "Số liệu so với ngưỡng\nfigure vs line",
)


def alert_cells(event: AlertEvent) -> tuple[str, str, str, str, str]:
    """When (Vietnam time), kind (Vietnamese and English), agency name, action, figure."""
    return (
        alerts_cmd.when_text(event, note=False),
        alerts_cmd.kind_text(event),
        alerts_cmd.who_text(event),
        alerts_cmd.action_text(event),
        alerts_cmd.evidence_text(event),
    )


def _alert_table(title: str, events: Sequence[AlertEvent]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for i, header in enumerate(ALERT_HEADERS):
        table.add_column(header, no_wrap=i in (0, 3))
    for event in events:
        cells = alert_cells(event)
        style = "bold red" if event.open and event.severity == "critical" else ""
        table.add_row(*cells[:3], Text(cells[3], style=style), cells[4])
    return table


def alert_panel(opened: Sequence[AlertEvent], recent: Sequence[AlertEvent]) -> RenderableType:
    """The live view's alerts: those open now and the last alert events, or a line saying
    there is none yet."""
    title = Text("Cảnh báo / alerts", style="bold")
    if not opened and not recent:
        return Group(title, Text(NO_ALERT_YET, style="dim"))
    parts: list[RenderableType] = [title]
    if opened:
        shown = panel_order(opened)[:OPEN_ALERTS_SHOWN]
        critical = sum(e.severity == "critical" for e in opened)
        counts = (
            f"{len(opened)} ({critical} {_severity('critical')}, "
            f"{len(opened) - critical} {_severity('warning')})"
        )
        more = f"; {len(shown)} shown, critical first" if len(shown) < len(opened) else ""
        parts.append(_alert_table(f"Đang mở / open now: {counts}{more}", shown))
    else:
        parts.append(Text("Đang mở / open now: không có / none"))
    if recent:
        parts.append(_alert_table(f"Gần đây / recent events (last {len(recent)})", recent))
    return Group(*parts)


def _action(name: str) -> str:
    vi, en = ACTION_LABELS[name]
    return f"{vi.lower()}/{en}"


def _severity(name: str) -> str:
    vi, en = alerts_cmd.SEVERITY_LABELS[name]
    return f"{vi}/{en}"


def live_view(
    console: Console,
    figures: Callable[[int], RenderableType],
    panel: RenderableType,
    top: int,
) -> RenderableType:
    """The figures with `top` agencies (`figures(top)`), the alert panel under them.

    On a terminal, fewer agencies when both would not fit its height, so that the alerts
    stay in view (a live display cuts what does not fit at the bottom).
    """
    shown = figures(top)
    if console.is_terminal:
        spare = console.size.height - _height(console, shown) - _height(console, panel)
        if spare < 0 and top > 0:
            shown = figures(max(top + spare, 0))
    return Group(shown, panel)


def _height(console: Console, renderable: RenderableType) -> int:
    return len(console.render_lines(renderable, console.options, pad=False))


def print_run_alerts(
    console: Console,
    client: redis.Redis,
    prefix: str,
    incidents: Sequence[Incident],
    registry: AgencyRegistry,
    seen: Mapping[str, float],
) -> None:
    """The alerts of the run: counts per kind, each incident's spike, the spikes' table."""
    events = read_log(client, prefix)
    open_now = len(alerts_cmd.read_open(client, prefix))
    for line in run_alert_lines(events, open_now, incidents, registry, seen):
        console.print(line)
    spikes = [e for e in events if e.kind == "overdue_spike"][-RUN_SPIKES_SHOWN:]
    if spikes:
        vi, en = KIND_LABELS["overdue_spike"]
        console.print(alerts_cmd.table(f"{vi} / {en}", spikes))
    if events:
        console.print(
            f"Every alert of the run: `dossier-stream alerts list --redis-prefix {prefix} "
            f"--recent {len(events)}`"
        )


def read_log(client: redis.Redis, prefix: str) -> list[AlertEvent]:
    """Every alert event of the log, oldest first (the demo's log starts empty)."""
    return alerts_cmd.read_recent(
        client, prefix, client.xlen(alerts_log_key(prefix)), agency=None, kind=None
    )


def run_alert_lines(
    events: Sequence[AlertEvent],
    open_now: int,
    incidents: Sequence[Incident],
    registry: AgencyRegistry,
    seen: Mapping[str, float],
) -> list[Text]:
    """The run's alerts in a few lines: how many, per kind, and for each incident its spike
    and when the live view showed it (`seen`: seconds since the demo started, by event id).
    """
    lines = [
        Text(
            f"Cảnh báo của lần chạy / alerts of this run: {len(events)} events, "
            f"{open_now} open now",
            style="bold",
        )
    ]
    if not events:
        lines.append(Text(NO_ALERT_YET))
    for kind, (vi, en) in KIND_LABELS.items():
        of_kind = [e for e in events if e.kind == kind]
        if of_kind:
            opened = sum(e.open for e in of_kind)
            lines.append(
                Text(
                    f"  {vi} ({en}): {opened} {_action('opened')}, "
                    f"{len(of_kind) - opened} {_action('cleared')}"
                )
            )
    for incident in incidents:
        agency = registry.get(incident.agency_code)
        name = agency.name if agency else incident.agency_code
        spike = next(
            (
                e
                for e in events
                if e.kind == "overdue_spike"
                and e.agency == incident.agency_code
                and e.open
                and incident.start <= e.at < incident.end + timedelta(days=1)
            ),
            None,
        )
        if spike is None:
            lines.append(
                Text(
                    f"✗ no overdue spike at {name} for the incident {incident_arg(incident)}", "red"
                )
            )
            continue
        shown = seen.get(spike.id)
        after = f", shown {_duration(shown)} after the demo started" if shown is not None else ""
        lines.append(
            Text(
                f"✓ {alerts_cmd.kind_text(spike)} at {name}: opened "
                f"{alerts_cmd.when_text(spike)}, {alerts_cmd.evidence_text(spike)}{after}",
                "green",
            )
        )
    return lines


# -- processes and what the demo prints --------------------------------------------------


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
