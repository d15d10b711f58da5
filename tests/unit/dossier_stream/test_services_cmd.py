"""`dossier-stream services`: help, status codes and failures, on a stack directory of its own.

Nothing is started here: every port is either free or held by a plain listener, so `up`
fails at its first check and `status`/`down` find nothing of theirs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_USAGE
from tests.cli import error_line, free_port, listening_port, run_cli


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    """A stack directory and ports that no service of the project uses."""
    return {
        "DOSSIER_STACK_DIR": str(tmp_path / "stack"),
        "DOSSIER_KAFKA_PORT": str(free_port()),
        "DOSSIER_KAFKA_CONTROLLER_PORT": str(free_port()),
        "DOSSIER_REDIS_PORT": str(free_port()),
        "DOSSIER_INSTALL_REDIS": "false",
    }


def test_help_shows_examples_and_exit_codes() -> None:
    result = run_cli("services", "--help")
    assert result.returncode == 0, result.stderr
    assert "dossier-stream services status" in result.stdout and "exit codes:" in result.stdout


def test_an_unknown_action_is_a_usage_error() -> None:
    result = run_cli("services", "restart")
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert "invalid choice: 'restart'" in result.stderr.splitlines()[-1]


def test_status_of_stopped_services_exits_3_and_says_stopped(stack_env: dict[str, str]) -> None:
    result = run_cli("services", "status", env=stack_env)
    assert result.returncode == EXIT_NOT_RUNNING
    assert result.stderr == ""
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["kafka", "redis"]
    assert all("stopped" in line for line in result.stdout.splitlines())


def test_down_of_services_that_are_not_running_succeeds(stack_env: dict[str, str]) -> None:
    result = run_cli("services", "down", env=stack_env)
    assert result.returncode == 0, result.stderr
    assert "was not running" in result.stdout


def test_logs_of_a_fresh_stack_print_nothing(stack_env: dict[str, str]) -> None:
    result = run_cli("services", "logs", env=stack_env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_up_on_a_port_taken_by_another_program_is_one_line(stack_env: dict[str, str]) -> None:
    with listening_port() as taken:
        env = stack_env | {"DOSSIER_KAFKA_PORT": str(taken)}
        result = run_cli("services", "up", "--only", "kafka", env=env)
    assert result.returncode == EXIT_FAILURE
    line = error_line(result)
    assert line.startswith("dossier-stream services: error: kafka did not start: port ")
    assert f"127.0.0.1:{taken} is already in use" in line and "DOSSIER_KAFKA_PORT" in line


def test_up_reports_every_service_that_failed_last(stack_env: dict[str, str]) -> None:
    with listening_port() as kafka_port, listening_port() as redis_port:
        env = stack_env | {
            "DOSSIER_KAFKA_PORT": str(kafka_port),
            "DOSSIER_REDIS_PORT": str(redis_port),
        }
        result = run_cli("services", "up", env=env)
    assert result.returncode == EXIT_FAILURE
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[2].strip() for line in lines] == [
        "kafka did not start",
        "redis did not start",
    ]
    assert "Traceback" not in result.stderr
