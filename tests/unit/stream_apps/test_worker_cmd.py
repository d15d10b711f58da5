"""`dossier-stream worker`: help, bad options and settings, and a broker that does not answer.

No worker runs on the real broker here: the broker address is a port where nothing
listens, and DOSSIER_KAFKA_ADMIN_TIMEOUT_S makes the worker give up in about a second.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from common.errors import EXIT_FAILURE, EXIT_USAGE
from tests.cli import error_line, free_port, run_cli


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DOSSIER_DATA_DIR": str(tmp_path / "worker"),
        "DOSSIER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "DOSSIER_WEB_PORT": str(free_port()),
        "DOSSIER_KAFKA_ADMIN_TIMEOUT_S": "1",
    }


def test_help_shows_examples_and_exit_codes() -> None:
    result = run_cli("worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "dossier-stream worker --web-port" in result.stdout and "exit codes:" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--clock", "wall"], "argument --clock: invalid choice: 'wall'"),
        (["--web-port", "http"], "argument --web-port: invalid int value: 'http'"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], words: str) -> None:
    result = run_cli("worker", *args)
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert words in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("DOSSIER_PARTITIONS", "0"), ("DOSSIER_CLOCK", "wall"), ("DOSSIER_FLUSH_INTERVAL_S", "x")],
)
def test_a_bad_setting_is_a_usage_error_naming_the_variable(
    worker_env: dict[str, str], variable: str, value: str
) -> None:
    result = run_cli("worker", env=worker_env | {variable: value})
    assert result.returncode == EXIT_USAGE
    assert f"dossier-stream worker: error: invalid setting {variable}={value!r}" in error_line(
        result
    )


def test_a_broker_that_does_not_answer_is_one_line_within_seconds(
    worker_env: dict[str, str],
) -> None:
    port = free_port()
    started = time.monotonic()
    result = run_cli(
        "--log-level", "WARNING", "worker", "--bootstrap", f"127.0.0.1:{port}", env=worker_env
    )
    assert time.monotonic() - started < 30
    assert result.returncode == EXIT_FAILURE
    line = error_line(result)
    assert line.startswith(
        f"dossier-stream worker: error: no Kafka broker answered at 127.0.0.1:{port} within 1 s"
    )
    assert "dossier-stream services up" in line
