"""`dossier-stream schema`: check passes on the committed file and fails on one line otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import EXIT_FAILURE, EXIT_USAGE
from dossier_stream.cli import main
from schemas import schema_cmd
from tests.cli import error_line, run_cli


def test_help_shows_examples_and_exit_codes() -> None:
    result = run_cli("schema", "--help")
    assert result.returncode == 0, result.stderr
    assert "dossier-stream schema check" in result.stdout and "exit codes:" in result.stdout


def test_check_passes_on_the_committed_schema() -> None:
    result = run_cli("schema", "check")
    assert result.returncode == 0, result.stderr
    assert "matches the models" in result.stdout


@pytest.mark.parametrize("current", ["{}\n", None], ids=["stale", "missing"])
def test_check_of_a_stale_or_missing_file_fails_on_one_line(
    current: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    committed = tmp_path / "dossier-event.v1.schema.json"
    if current is not None:
        committed.write_text(current, encoding="utf-8")
    monkeypatch.setattr(schema_cmd, "SCHEMA_FILE", committed)
    assert main(["schema", "check"]) == EXIT_FAILURE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{committed} is out of date: run `dossier-stream schema export`"]


def test_export_to_a_directory_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "no" / "schema.json"
    result = run_cli("schema", "export", "--out", str(target))
    assert result.returncode == EXIT_USAGE
    assert error_line(result) == (
        f"dossier-stream schema: error: cannot open {target}: No such file or directory"
    )


def test_an_unknown_action_is_a_usage_error() -> None:
    result = run_cli("schema", "validate")
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert "invalid choice: 'validate'" in result.stderr.splitlines()[-1]
