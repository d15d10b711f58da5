"""`dossier-stream demo`: its failures before anything starts, and what it prints at the end.

The demo itself (services, worker, simulator) is not run here: it takes minutes on the
shared broker. Its printing functions are tested directly, with the figures in memory.
"""

from __future__ import annotations

import argparse
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from common.errors import EXIT_FAILURE, EXIT_USAGE
from domain.calendar import VN_TZ, WorkingCalendar
from dossier_stream import demo
from dossier_stream.localstack import StartResult
from producers.simulator import Incident
from schemas.alerts import AlertEvent
from schemas.registry import AgencyRegistry
from schemas.serving import alerts_log_key, alerts_open_key, scope_key
from tests.cli import error_line, free_port, listening_port, run_cli
from tests.unit.dossier_stream.fakes import FakeRedis, text_of

TRUTH: dict[str, Any] = {
    "start": "2025-10-01T00:00:00+07:00",
    "city": {"received": 1000, "online_share": 0.672, "resolved_late": 7},
    "communes": {"received": 3000, "online_share": 0.5, "resolved_late": 20},
    "total": {"received": 4000, "online_share": 0.543, "resolved_late": 27},
}
CLOCK = "2025-10-08T01:00:00+00:00"


def redis_like_truth(window: str = "mtd", **override: str) -> dict[str, dict[str, str]]:
    """The Redis scope hashes that agree with TRUTH, some fields replaced."""
    figures = {}
    for _, key, scope in demo.COMPARED_SCOPES:
        unit = TRUTH[key]
        figures[scope] = {
            f"{window}.received_total": str(unit["received"]),
            f"{window}.online_ratio": str(unit["online_share"]),
            f"{window}.resolved_late": str(unit["resolved_late"]),
        }
    figures["city"].update(override)
    return figures


# -- failures before anything starts ------------------------------------------------------


def test_help_shows_examples_and_exit_codes() -> None:
    result = run_cli("demo", "--help")
    assert result.returncode == 0, result.stderr
    assert "dossier-stream demo --no-incident" in result.stdout and "exit codes:" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--speed", "fast"], "argument --speed: expected a positive number, realtime or max"),
        (["--days", "0"], "argument --days: must be at least 1"),
        (["--scale", "-1"], "argument --scale: must be positive"),
        (["--start", "1/11/2026"], "argument --start: not an ISO date (YYYY-MM-DD)"),
        (
            ["--incident", "SO-XD:2026-11-27"],
            "argument --incident: expected AGENCY:START:HOURS, got 'SO-XD:2026-11-27'",
        ),
        (
            ["--incident", "SO-NOPE:2026-11-27T08:00:00+07:00:48"],
            "argument --incident: unknown agency code 'SO-NOPE'",
        ),
        (
            ["--no-incident", "--incident", "SO-XD:2026-11-27:48"],
            "argument --incident: not allowed with argument --no-incident",
        ),
    ],
)
def test_bad_options_fail_before_any_service_starts(args: list[str], words: str) -> None:
    result = run_cli("demo", *args)
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert words in result.stderr.splitlines()[-1]
    assert "1/4" not in result.stdout


def test_a_kafka_port_taken_by_another_program_is_one_line(tmp_path: Path) -> None:
    with listening_port() as taken:
        result = run_cli(
            "demo",
            env={
                "DOSSIER_STACK_DIR": str(tmp_path),
                "DOSSIER_KAFKA_PORT": str(taken),
                "DOSSIER_KAFKA_CONTROLLER_PORT": str(free_port()),
                "DOSSIER_REDIS_PORT": str(free_port()),
                "DOSSIER_INSTALL_REDIS": "false",
            },
        )
    assert result.returncode == EXIT_FAILURE
    line = error_line(result)
    assert line.startswith(f"dossier-stream demo: error: port 127.0.0.1:{taken} is already in use")
    assert "DOSSIER_KAFKA_PORT" in line


# -- what it prints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            StartResult("kafka", 1234, "127.0.0.1:29092", started=True, seconds=34.93116071100002),
            "Kafka started on 127.0.0.1:29092 in 34.9 s (pid 1234)",
        ),
        (
            StartResult("redis", 99, "redis://127.0.0.1:26379/0", started=False, seconds=0.0),
            "Redis already running on redis://127.0.0.1:26379/0 (pid 99)",
        ),
    ],
)
def test_a_started_service_is_one_human_line(result: StartResult, line: str) -> None:
    assert demo.started_line(result) == line


def test_truth_and_redis_that_agree_are_marked_as_matching() -> None:
    shown = text_of(demo.truth_table(TRUTH, redis_like_truth(), "mtd"))
    assert "Sở, ban, ngành (city bodies)" in shown
    assert "Xã, phường, đặc khu (communes)" in shown
    assert "Toàn thành phố (city-wide)" in shown
    assert "67.2" in shown and "4000" in shown
    assert shown.count("✓") == 3 and "✗" not in shown


def test_a_figure_that_differs_is_marked() -> None:
    figures = redis_like_truth(**{"mtd.resolved_late": "6"})
    shown = text_of(demo.truth_table(TRUTH, figures, "mtd"))
    assert shown.count("✓") == 2 and shown.count("✗") == 1


def test_the_comparison_title_stands_on_its_own_line_above_the_table() -> None:
    prefix = "demo:v1"
    hashes: dict[str, Any] = {
        scope_key(prefix, scope): fields for scope, fields in redis_like_truth().items()
    }
    client = FakeRedis(hashes)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print("dưới 80% trực tuyến (below the 80% online target): Sở Y tế", end="")
    demo.end_live(console)
    demo.print_comparison(console, client, prefix, TRUTH, {"clock": CLOCK})  # type: ignore[arg-type]
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    title = next(i for i, line in enumerate(lines) if "simulator truth vs Redis" in line)
    assert lines[title].startswith("Số liệu thật so với Redis")
    assert "window mtd" in lines[title] and "2025-10-08 08:00:00 (Vietnam)" in lines[title]
    assert "Sở Y tế" not in lines[title]
    assert "Đơn vị" in lines[title + 2]  # the table's header, below its top border


def test_the_meta_hash_is_printed_as_labelled_lines_not_a_dict() -> None:
    meta = {
        "events_in": "123456",
        "applied": "123000",
        "duplicates": "456",
        "pending": "0",
        "dead_lettered": "0",
        "clock": CLOCK,
        "clock_mode": "event",
        "offsets": '{"1": 60000, "0": 63456}',
        "new_field": "x",
    }
    shown = text_of(demo.meta_table(meta))
    assert "{" not in shown and "'" not in shown
    assert "events in" in shown and "123,456" in shown
    assert "0: 63,456 · 1: 60,000" in shown
    assert "2025-10-08 08:00:00 (Vietnam)" in shown
    assert "new_field" in shown  # a field added later is shown as it is
    lines = shown.splitlines()
    assert lines[0].split()[:2] == ["events", "in"]


def test_an_empty_meta_hash_says_so() -> None:
    assert "not flushed yet" in text_of(demo.meta_table({}))


def test_the_comparison_window_is_the_shortest_that_holds_the_period() -> None:
    assert demo.comparison_window("2025-10-01T00:00:00+07:00", CLOCK) == "mtd"
    assert demo.comparison_window("2025-10-20T00:00:00+07:00", "2025-11-15T00:00:00+00:00") == "qtd"
    assert demo.comparison_window("2025-09-24T00:00:00+07:00", CLOCK) == "ytd"
    assert demo.comparison_window("2024-12-30T00:00:00+07:00", CLOCK) is None


def test_redis_without_figures_is_said_in_words() -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    demo.print_comparison(console, FakeRedis({}), "demo:v1", TRUTH, {})  # type: ignore[arg-type]
    assert "Redis has no figures yet" in console.file.getvalue()  # type: ignore[attr-defined]


# -- the dashboard it starts --------------------------------------------------------------


def test_help_names_the_dashboard_port() -> None:
    result = run_cli("demo", "--help")
    assert "--dashboard-port" in result.stdout and "web dashboard" in result.stdout


def test_a_dashboard_that_does_not_answer_is_reported_with_its_last_log_line(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    log = tmp_path / "dashboard.log"
    log.write_text("starting\ncannot listen on 127.0.0.1:8066: Address already in use\n")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert demo.wait_http(f"http://127.0.0.1:{free_port()}/", proc, 5.0) is False
    assert demo.last_line(log) == "cannot listen on 127.0.0.1:8066: Address already in use"
    assert demo.last_line(tmp_path / "missing.log") == f"see {tmp_path / 'missing.log'}"


# -- the incident it injects ---------------------------------------------------------------

CALENDAR = WorkingCalendar()
REGISTRY = AgencyRegistry.default()


def vn(text: str) -> datetime:
    """An instant written in Vietnam time (UTC+7)."""
    return datetime.fromisoformat(text).replace(tzinfo=VN_TZ)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo.configure(parser)
    return parser.parse_args(list(argv))


def test_the_period_ends_at_today_midnight_in_vietnam_unless_realtime() -> None:
    # 23:18 UTC on 30 November is 06:18 on 1 December in Hải Phòng.
    now = datetime(2026, 11, 30, 23, 18, tzinfo=UTC)
    assert demo.period_start("21600", 28, now) == date(2026, 11, 3)
    assert demo.period_start("max", 7, now) == date(2026, 11, 24)
    assert demo.period_start("realtime", 28, now) == date(2026, 12, 1)


def test_the_default_incident_is_sxd_48_h_from_8_on_the_last_working_day_that_fits() -> None:
    # 3 Nov 2026 (Tue) + 28 days ends 1 Dec 00:00. 48 h from 08:00 must end by then: at
    # the latest from 28 Nov (Sat), so the last working day is Fri 27 Nov. Before it: 17
    # working days (3-6, 9-13, 16-20, 23 and 25-26 Nov; 24 Nov is Ngày Văn hóa Việt Nam).
    assert demo.default_incident(date(2026, 11, 3), 28, CALENDAR) == Incident(
        "SO-XD", vn("2026-11-27T08:00"), 48.0
    )
    # 6 Oct 2025 (Mon) + 26 days ends Sat 1 Nov 00:00: from Thu 30 Oct it would end at
    # 1 Nov 08:00, too late; Wed 29 Oct ends at 31 Oct 08:00.
    assert demo.default_incident(date(2025, 10, 6), 26, CALENDAR) == Incident(
        "SO-XD", vn("2025-10-29T08:00"), 48.0
    )


def test_the_default_incident_needs_15_working_days_of_history_before_it() -> None:
    # From Mon 6 Oct 2025: 24 days end on 30 Oct, the incident starts Mon 27 Oct with 15
    # working days before it (6-10, 13-17, 20-24 Oct). 23 days end on 29 Oct: Fri 24 Oct,
    # with 14, is too early for the rule.
    assert demo.default_incident(date(2025, 10, 6), 24, CALENDAR) == Incident(
        "SO-XD", vn("2025-10-27T08:00"), 48.0
    )
    assert demo.default_incident(date(2025, 10, 6), 23, CALENDAR) is None
    assert demo.default_incident(date(2026, 11, 24), 7, CALENDAR) is None


def test_incident_options_default_given_or_none() -> None:
    start = date(2026, 11, 3)
    default = parse()
    assert (default.days, default.speed, default.incident, default.no_incident) == (
        28,
        "21600",
        None,
        False,
    )
    assert demo.chosen_incidents(default, start, CALENDAR) == (
        Incident("SO-XD", vn("2026-11-27T08:00"), 48.0),
    )
    given = parse(
        "--incident", "SO-YTE:2026-11-10T08:00:00+07:00:48", "--incident", "CA-TP:2026-11-12:24"
    )
    assert demo.chosen_incidents(given, start, CALENDAR) == (
        Incident("SO-YTE", vn("2026-11-10T08:00"), 48.0),
        Incident("CA-TP", vn("2026-11-12T00:00"), 24.0),  # a date alone: its 00:00 in Vietnam
    )
    assert demo.chosen_incidents(parse("--no-incident"), start, CALENDAR) == ()
    assert demo.chosen_incidents(parse("--days", "7"), start, CALENDAR) == ()


def test_the_simulator_gets_the_demo_period_and_each_incident() -> None:
    args = parse("--seed", "7", "--scale", "0.5")
    incidents = (
        Incident("SO-XD", vn("2026-11-27T08:00"), 48.0),
        Incident("CA-TP", vn("2026-11-12T00:00"), 24.5),
    )
    command = demo.simulate_command(args, date(2026, 11, 3), incidents, Path("/tmp/truth.json"))
    assert command == [
        "simulate",
        "--start",
        "2026-11-03",
        "--days",
        "28",
        "--speed",
        "21600",
        "--seed",
        "7",
        "--scale",
        "0.5",
        "--summary-json",
        "/tmp/truth.json",
        "--quiet",
        "--incident",
        "SO-XD:2026-11-27T08:00:00+07:00:48",
        "--incident",
        "CA-TP:2026-11-12T00:00:00+07:00:24.5",
    ]
    assert Incident.parse(command[-1]) == incidents[1]


def test_the_first_lines_name_the_agency_and_when_in_vietnam_time() -> None:
    lines = demo.plan_lines(
        date(2026, 11, 3),
        28,
        "21600",
        (Incident("SO-XD", vn("2026-11-27T08:00"), 48.0),),
        REGISTRY,
        no_incident=False,
    )
    # The spike is stamped at the first midnight in the window and shown once that hour is
    # over: 28 Nov 01:00 is 25 days and 1 hour (2,163,600 s) after 3 Nov 00:00, 100 s at
    # 21,600 simulated seconds a second.
    assert lines == [
        "Mô phỏng / simulating 28 days: 03/11/2026 → 30/11/2026 (giờ Việt Nam), speed 21600, "
        "a simulated day every 4 s",
        "Sự cố giả lập / injected incident: Sở Xây dựng (SO-XD), 27/11/2026 08:00 → "
        "29/11/2026 08:00 (giờ Việt Nam), 48 h: most of its dossiers falling due then are late",
        "    watch for the alert Tăng đột biến hồ sơ quá hạn (Overdue spike) at Sở Xây dựng: "
        "stamped 28/11/2026 00:00 (giờ Việt Nam), about 1 min 40 s into the simulation",
    ]


def test_the_first_lines_say_when_there_is_no_incident_or_it_is_outside_the_period() -> None:
    none = demo.plan_lines(date(2026, 11, 24), 7, "3600", (), REGISTRY, no_incident=False)
    assert none[1].startswith("Không có sự cố giả lập / no incident injected: the overdue")
    assert "try --days 28" in none[1]
    off = demo.plan_lines(date(2026, 11, 24), 7, "max", (), REGISTRY, no_incident=True)
    assert off[1] == "Không có sự cố giả lập / no incident injected (--no-incident)"
    outside = demo.plan_lines(
        date(2026, 11, 24),
        7,
        "max",
        (Incident("SO-YTE", vn("2026-10-01T08:00"), 48.0),),
        REGISTRY,
        no_incident=False,
    )
    assert "Sở Y tế (SO-YTE), 01/10/2026 08:00 → 03/10/2026 08:00" in outside[1]
    assert "outside the simulated period" in outside[2]


# -- the alerts, live and at the end ----------------------------------------------------------

# 17:00 UTC on 27 November is 00:00 on 28 November in Hải Phòng.
SPIKE_AT = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def alert(**changes: Any) -> AlertEvent:
    doc: dict[str, Any] = {
        "id": "spike-opened",
        "incident_id": "spike",
        "kind": "overdue_spike",
        "scope": "agency:SO-XD",
        "agency": "SO-XD",
        "agency_name": "Sở Xây dựng",
        "severity": "critical",
        "action": "opened",
        "at": SPIKE_AT,
        "opened_at": SPIKE_AT,
        "figures": {"became_overdue": 137, "window_buckets": 11},
        "baseline": {"open_level": 21, "close_line": 11, "blocks": 17},
    }
    return AlertEvent.model_validate(doc | changes)


def backlog(n: int, action: str = "opened") -> AlertEvent:
    """A near-due backlog at Sở Tư pháp, opened n hours after the spike (or cleared)."""
    at = SPIKE_AT + timedelta(hours=n)
    return alert(
        id=f"backlog-{n}-{action}",
        incident_id=f"backlog-{n}",
        kind="near_due_backlog",
        scope="agency:SO-TP",
        agency="SO-TP",
        agency_name="Sở Tư pháp",
        severity="warning",
        action=action,
        at=at,
        opened_at=at,
        figures={"near_due_now": 24 if action == "opened" else 9},
        baseline={"open_at": 20, "close_at": 10},
    )


def lines_of(renderable: Any) -> list[str]:
    return [line.rstrip() for line in text_of(renderable).splitlines()]


def test_no_alert_yet_is_said_in_both_languages() -> None:
    assert lines_of(demo.alert_panel([], [])) == [
        "Cảnh báo / alerts",
        "Chưa có cảnh báo / no alert yet",
    ]


def test_the_panel_shows_the_open_spike_and_the_recent_events_in_vietnam_time() -> None:
    cleared = backlog(15, "cleared")  # 28/11 15:00 in Vietnam
    shown = lines_of(demo.alert_panel([alert()], [alert(), cleared]))
    assert shown[0] == "Cảnh báo / alerts"
    assert shown[1] == "Đang mở / open now: 1 (1 nghiêm trọng/critical, 0 cảnh báo/warning)"
    recent = shown.index("Gần đây / recent events (last 2)")
    spike_rows = [
        line.split()
        for line in shown
        if line.lstrip().startswith("28/11/2026 00:00") and "Tăng đột biến" in line
    ]
    expected = "28/11/2026 00:00 Tăng đột biến hồ sơ quá hạn (Overdue spike) Sở Xây dựng "
    expected += "mở/opened became_overdue 137 ≥ 21"
    assert [" ".join(row) for row in spike_rows] == [expected, expected]  # open, and recent
    last = [line for line in shown[recent:] if "28/11/2026 15:00" in line]
    assert " ".join(last[0].split()) == (
        "28/11/2026 15:00 Tồn đọng hồ sơ sắp trễ (Near-due backlog) Sở Tư pháp "
        "đã hết/cleared near_due_now 9 ≤ 10"
    )
    assert "{" not in "".join(shown) and "AlertEvent" not in "".join(shown)


def test_the_open_spike_stays_in_view_among_newer_warnings() -> None:
    warnings = [backlog(n) for n in range(1, 7)]  # six backlogs, opened after the spike
    shown = text_of(demo.alert_panel([alert(), *warnings], []))
    assert "open now: 7 (1 nghiêm trọng/critical, 6 cảnh báo/warning); 5 shown" in shown
    assert "Tăng đột biến hồ sơ quá hạn" in shown
    # The spike and the four latest backlogs (opened 06:00 down to 03:00); not 01:00, 02:00.
    for hour in ("06", "05", "04", "03"):
        assert f"28/11/2026 {hour}:00" in shown
    assert "28/11/2026 02:00" not in shown and "28/11/2026 01:00" not in shown
    order = demo.panel_order([backlog(1), alert(), backlog(2)])
    assert [e.id for e in order] == ["spike-opened", "backlog-2-opened", "backlog-1-opened"]


def test_the_alerts_are_read_from_the_open_hash_and_the_log() -> None:
    prefix = "demo:v1"
    events = [alert(), backlog(1), backlog(3, "cleared"), backlog(4)]
    client = FakeRedis(
        {alerts_open_key(prefix): {"spike": alert().model_dump_json()}},
        streams={
            alerts_log_key(prefix): [{"id": e.id, "alert": e.model_dump_json()} for e in events]
        },
    )
    opened, recent = demo.read_alerts(client, prefix, 2)  # type: ignore[arg-type]
    assert [e.id for e in opened] == ["spike-opened"]
    assert [e.id for e in recent] == ["backlog-3-cleared", "backlog-4-opened"]  # oldest first
    assert [e.id for e in demo.read_log(client, prefix)] == [e.id for e in events]  # type: ignore[arg-type]


def test_the_figures_give_up_agency_rows_so_the_alerts_stay_on_a_terminal() -> None:
    asked: list[int] = []

    def figures(top: int) -> Text:
        asked.append(top)
        return Text("\n".join(f"line {i}" for i in range(10 + top)))  # 10 + one per agency

    panel = Text("\n".join(f"alert {i}" for i in range(8)))
    terminal = Console(file=io.StringIO(), width=120, height=30, force_terminal=True)
    view = demo.live_view(terminal, figures, panel, 16)  # 26 + 8 lines > 30: 4 agencies fewer
    assert asked == [16, 12]
    assert text_of(view).splitlines()[-1] == "alert 7"
    asked.clear()
    log = Console(file=io.StringIO(), width=120, height=30)  # not a terminal: all of it
    demo.live_view(log, figures, panel, 16)
    assert asked == [16]


def test_the_summary_names_the_incident_spike_and_when_it_was_shown() -> None:
    incident = Incident("SO-XD", vn("2026-11-27T08:00"), 48.0)
    earlier = alert(id="early", at=SPIKE_AT - timedelta(days=10), opened_at=SPIKE_AT)
    events = [earlier, backlog(1), backlog(2, "cleared"), alert()]
    lines = [
        t.plain
        for t in demo.run_alert_lines(events, 2, [incident], REGISTRY, {"spike-opened": 121.4})
    ]
    assert lines == [
        "Cảnh báo của lần chạy / alerts of this run: 4 events, 2 open now",
        "  Tăng đột biến hồ sơ quá hạn (Overdue spike): 2 mở/opened, 0 đã hết/cleared",
        "  Tồn đọng hồ sơ sắp trễ (Near-due backlog): 1 mở/opened, 1 đã hết/cleared",
        "✓ Tăng đột biến hồ sơ quá hạn (Overdue spike) at Sở Xây dựng: opened 28/11/2026 "
        "00:00 (giờ Việt Nam), became_overdue 137 ≥ 21, shown 2 min 01 s after the demo started",
    ]
    missed = demo.run_alert_lines([earlier], 0, [incident], REGISTRY, {})
    assert missed[-1].plain == (
        "✗ no overdue spike at Sở Xây dựng for the incident SO-XD:2026-11-27T08:00:00+07:00:48"
    )
    assert demo.run_alert_lines([], 0, [], REGISTRY, {})[1].plain == NO_ALERT


NO_ALERT = "Chưa có cảnh báo / no alert yet"


def test_the_demo_ends_once_the_worker_has_read_what_was_sent(tmp_path: Path) -> None:
    summary = tmp_path / "truth.json"
    summary.write_text('{"run": {"emitted": 413048}}', encoding="utf-8")
    assert demo.events_sent(summary) == 413048
    assert demo.events_sent(tmp_path / "missing.json") is None
    assert not demo.caught_up({"events_in": "413047"}, 413048)
    assert demo.caught_up({"events_in": "413048"}, 413048)
    assert not demo.caught_up({}, None) and demo.caught_up({"events_in": "1"}, None)
