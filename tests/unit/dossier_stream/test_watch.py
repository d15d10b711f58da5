"""`dossier-stream watch`: its help, its failures, and what it draws."""

from __future__ import annotations

import io

from rich.console import Console
from rich.live import Live

from common.errors import EXIT_FAILURE, EXIT_USAGE
from dossier_stream.watch import end_live, render
from schemas.registry import AgencyRegistry
from schemas.serving import below_target_key, meta_key, scope_key
from tests.cli import error_line, free_port, run_cli
from tests.unit.dossier_stream.fakes import FakeRedis, text_of

REGISTRY = AgencyRegistry.default()


def snapshot(prefix: str = "ds:v1") -> FakeRedis:
    figures = {"qtd.received_total": 120, "qtd.online_ratio": 0.5, "overdue_now": 2}
    return FakeRedis(
        {
            meta_key(prefix): {"clock": "2025-10-08T01:00:00+00:00", "clock_mode": "event"},
            scope_key(prefix, "city"): figures,
            scope_key(prefix, "level:city"): figures,
            scope_key(prefix, "agency:SO-YTE"): figures,
            scope_key(prefix, "agency:SO-XD"): {**figures, "qtd.received_total": 80},
        },
        {below_target_key(prefix): {"SO-YTE", "SO-XD"}},
    )


def test_help_shows_examples_and_exit_codes() -> None:
    result = run_cli("watch", "--help")
    assert result.returncode == 0, result.stderr
    assert "--redis-url" in result.stdout and "exit codes:" in result.stdout


def test_redis_unreachable_is_one_line_naming_the_address() -> None:
    port = free_port()
    result = run_cli("watch", "--once", "--redis-url", f"redis://127.0.0.1:{port}/0")
    assert result.returncode == EXIT_FAILURE
    line = error_line(result)
    assert line.startswith("dossier-stream watch: error: Redis did not answer")
    assert f"127.0.0.1:{port}" in line and "dossier-stream services up" in line


def test_redis_unreachable_from_the_environment_too() -> None:
    env = {"DOSSIER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = run_cli("watch", "--seconds", "1", env=env)
    assert result.returncode == EXIT_FAILURE
    assert "Redis did not answer" in error_line(result)


def test_a_url_that_is_no_redis_url_is_a_usage_error() -> None:
    result = run_cli("watch", "--once", "--redis-url", "http://127.0.0.1:6379")
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert "argument --redis-url: Redis URL must specify" in result.stderr.splitlines()[-1]


def test_an_unknown_window_is_a_usage_error() -> None:
    result = run_cli("watch", "--window", "week")
    assert result.returncode == EXIT_USAGE
    assert "argument --window: invalid choice: 'week'" in result.stderr.splitlines()[-1]


def test_agencies_are_shown_by_their_vietnamese_names() -> None:
    shown = text_of(render(snapshot(), "ds:v1", REGISTRY, 16, "city"))  # type: ignore[arg-type]
    assert "Sở Y tế" in shown and "Sở Xây dựng" in shown
    below = next(line for line in shown.splitlines() if "below the 80% online target" in line)
    assert "Sở Y tế" in below and "Sở Xây dựng" in below
    assert "Toàn thành phố (city-wide)" in shown


def test_what_follows_a_live_view_starts_on_a_line_of_its_own() -> None:
    # Not a terminal (`make demo | tee`, CI logs): Live leaves its last line open.
    console = Console(file=io.StringIO(), width=200, color_system=None)
    with Live(render(snapshot(), "ds:v1", REGISTRY, 16, "city"), console=console):  # type: ignore[arg-type]
        pass
    end_live(console)
    console.print("NEXT TITLE")
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert "NEXT TITLE" in lines
