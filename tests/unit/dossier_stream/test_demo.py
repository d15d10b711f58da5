"""`dossier-stream demo`: its failures before anything starts, and what it prints at the end.

The demo itself (services, worker, simulator) is not run here: it takes minutes on the
shared broker. Its printing functions are tested directly, with the figures in memory.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from common.errors import EXIT_FAILURE, EXIT_USAGE
from dossier_stream import demo
from dossier_stream.localstack import StartResult
from schemas.serving import scope_key
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
    assert "dossier-stream demo --days 30" in result.stdout and "exit codes:" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--speed", "fast"], "argument --speed: expected a positive number, realtime or max"),
        (["--days", "0"], "argument --days: must be at least 1"),
        (["--scale", "-1"], "argument --scale: must be positive"),
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
