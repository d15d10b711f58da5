"""`dossier-stream top` and `dossier-stream dashboard`: help, failures, what top draws."""

from __future__ import annotations

from datetime import UTC, datetime

from common.errors import EXIT_FAILURE, EXIT_USAGE
from dossier_stream.top import render
from schemas.serving import AgencyRow, AlertsResponse, OverviewResponse, SeriesResponse, WorkerMeta
from tests.cli import error_line, free_port, listening_port, run_cli
from tests.unit.dashboard.test_pages import reading
from tests.unit.dossier_stream.fakes import text_of

CLOCK = datetime(2025, 10, 8, 1, 0, tzinfo=UTC)


def test_top_help_shows_examples_and_exit_codes() -> None:
    result = run_cli("top", "--help")
    assert result.returncode == 0, result.stderr
    assert "dossier-stream top --window 24h" in result.stdout and "exit codes:" in result.stdout


def test_top_with_redis_unreachable_is_one_line_and_exit_1() -> None:
    port = free_port()
    result = run_cli("top", "--once", "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert result.returncode == EXIT_FAILURE
    line = error_line(result)
    assert line.startswith("dossier-stream top: error: Redis did not answer")
    assert f"127.0.0.1:{port}" in line


def test_top_live_with_redis_unreachable_too() -> None:
    env = {"DOSSIER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = run_cli("top", "--seconds", "1", env=env)
    assert result.returncode == EXIT_FAILURE
    assert "Redis did not answer" in error_line(result)


def test_top_with_an_unknown_window_is_a_usage_error() -> None:
    result = run_cli("top", "--window", "week")
    assert result.returncode == EXIT_USAGE
    assert "argument --window: invalid choice: 'week'" in result.stderr.splitlines()[-1]


def test_top_lists_the_worst_agencies_first_with_their_marks() -> None:
    rows = [
        AgencyRow(
            code="SO-XD",
            name="Sở Xây dựng",
            level="city",
            figures=reading(overdue_now="2"),
            below_target=True,
            overdue_rising=False,
        ),
        AgencyRow(
            code="11311",
            name="Phường Hồng Bàng",
            level="commune",
            figures=reading(overdue_now="1234"),
            below_target=False,
            overdue_rising=True,
        ),
    ]
    data = OverviewResponse(
        meta=WorkerMeta(updated_at=CLOCK, clock=CLOCK, events_in=4567),
        events_in=4567,
        window="qtd",
        online_target=0.8,
        city=reading(**{"qtd.received_total": "140000", "qtd.online_ratio": "0.8123"}),
        agencies=rows,
        series=SeriesResponse(scope="city"),
        alerts=AlertsResponse(),
    )
    shown = text_of(render(data, 10), width=220)
    assert shown.index("Phường Hồng Bàng") < shown.index("Sở Xây dựng")  # 1.234 overdue first
    assert "1.234" in shown and "140.000" in shown and "81,2%" in shown
    assert "08/10/2025 08:00" in shown and "4.567" in shown
    hb = next(line for line in shown.splitlines() if "Phường Hồng Bàng" in line)
    assert "quá hạn tăng" in hb and "dưới chỉ tiêu" not in hb
    below = shown.splitlines()[-2]
    assert "Sở Xây dựng" in below and "Phường Hồng Bàng" not in below


def test_dashboard_help_shows_examples_and_exit_codes() -> None:
    result = run_cli("dashboard", "--help")
    assert result.returncode == 0, result.stderr
    assert "/api/v1/scopes/city" in result.stdout and "exit codes:" in result.stdout


def test_dashboard_on_a_port_in_use_is_one_line_and_exit_1() -> None:
    with listening_port() as port:
        result = run_cli("dashboard", "--port", str(port))
    assert result.returncode == EXIT_FAILURE
    assert error_line(result).startswith(
        f"dossier-stream dashboard: error: cannot listen on 127.0.0.1:{port}: "
    )


def test_dashboard_with_a_bad_port_setting_is_a_usage_error() -> None:
    result = run_cli("dashboard", "--help", env={"DOSSIER_DASHBOARD_PORT": "eighty"})
    assert result.returncode == EXIT_USAGE
    assert "DOSSIER_DASHBOARD_PORT='eighty'" in error_line(result)
