"""`dossier-stream`'s composition root: every failure ends in one line and a documented code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pydantic
import pytest
import redis.exceptions

from common.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
)
from common.kafka_admin import KafkaUnavailableError
from common.settings import StackSettings
from dossier_stream import cli
from dossier_stream.localstack import LocalStackError
from producers.errors import BrokerUnavailableError
from schemas import schema_cmd
from schemas.registry import RegistryError
from tests.cli import ROOT, error_line, run_cli
from tests.factories import event_doc

DOCUMENTED = {EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NOT_RUNNING, EXIT_INTERRUPTED}


def test_help_lists_every_command_and_the_exit_codes() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for name in cli.COMMANDS:
        assert name in result.stdout
    epilog = result.stdout.split("exit codes", 1)[1]
    assert {int(c) for c in re.findall(r"^  (\d+) ", epilog, re.M)} == DOCUMENTED


def test_the_readme_documents_the_same_exit_codes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    assert {int(c) for c in re.findall(r"^\| (\d+) \|", section, re.M)} == DOCUMENTED


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_has_help_with_examples_and_the_exit_codes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "exit codes:" in out


def test_no_command_prints_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == EXIT_USAGE
    assert "COMMAND" in capsys.readouterr().out


def test_an_unknown_command_is_a_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert "invalid choice: 'frobnicate'" in result.stderr.strip().splitlines()[-1]


# -- publish: the known cases of the issue, as a user meets them ------------------------------


def test_publish_of_a_missing_file_names_it_on_one_line() -> None:
    result = run_cli("publish", "/nonexistent/export.jsonl", "--dry-run")
    assert result.returncode == EXIT_USAGE
    assert error_line(result) == (
        "dossier-stream publish: error: cannot open /nonexistent/export.jsonl: "
        "No such file or directory"
    )


def test_publish_with_a_missing_registry_names_it_on_one_line(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_bytes(orjson.dumps(event_doc()) + b"\n")
    result = run_cli("publish", str(source), "--dry-run", "--registry", "/nonexistent.json")
    assert result.returncode == EXIT_USAGE
    line = error_line(result)
    assert line.startswith("dossier-stream publish: error: cannot open /nonexistent.json")


def test_publish_with_an_invalid_registry_names_the_file(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_bytes(orjson.dumps(event_doc()) + b"\n")
    registry = tmp_path / "registry.json"
    registry.write_text("{not json", encoding="utf-8")
    result = run_cli("publish", str(source), "--dry-run", "--registry", str(registry))
    assert result.returncode == EXIT_USAGE
    assert f"invalid agency registry: {registry}: not valid JSON" in error_line(result)


def test_publish_of_a_directory_is_an_input_problem(tmp_path: Path) -> None:
    result = run_cli("publish", str(tmp_path), "--dry-run")
    assert result.returncode == EXIT_USAGE
    assert f"cannot open {tmp_path}: Is a directory" in error_line(result)


def test_a_bad_setting_in_the_environment_is_a_usage_error_naming_the_variable() -> None:
    result = run_cli("publish", "-", "--dry-run", env={"DOSSIER_PARTITIONS": "many"})
    assert result.returncode == EXIT_USAGE
    assert "invalid setting DOSSIER_PARTITIONS='many'" in error_line(result)


def test_a_reader_that_closes_standard_output_early_gets_no_traceback() -> None:
    # `dossier-stream schema export --out - | head -c 0`: the reader goes away at once.
    proc = subprocess.Popen(
        [sys.executable, "-m", "dossier_stream.cli", "schema", "export", "--out", "-"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == EXIT_FAILURE
    assert err == ""


# -- in the process: how each kind of failure is told --------------------------------------


def _settings_error() -> pydantic.ValidationError:
    try:
        StackSettings(partitions=0)
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("partitions=0 was accepted")


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (CommandError("the worker stopped"), EXIT_FAILURE, "the worker stopped"),
        (CommandError("bad start date", EXIT_USAGE), EXIT_USAGE, "bad start date"),
        (FileNotFoundError(2, "No such file or directory", "/x.jsonl"), EXIT_USAGE, "/x.jsonl"),
        (PermissionError(13, "Permission denied", "/root/r.jsonl"), EXIT_USAGE, "Permission"),
        (RegistryError("/r.json: not valid JSON"), EXIT_USAGE, "invalid agency registry"),
        (_settings_error(), EXIT_USAGE, "DOSSIER_PARTITIONS=0"),
        (KafkaUnavailableError("no Kafka broker answered"), EXIT_FAILURE, "services up"),
        (BrokerUnavailableError("no Kafka broker answered"), EXIT_FAILURE, "services up"),
        (redis.exceptions.ConnectionError("Error 111"), EXIT_FAILURE, "Redis did not answer"),
        (redis.exceptions.TimeoutError("Timeout"), EXIT_FAILURE, "Redis did not answer"),
        (LocalStackError("port in use\nlog line"), EXIT_FAILURE, "port in use"),
        (RuntimeError("boom"), EXIT_FAILURE, "unexpected RuntimeError: boom"),
        (ConnectionRefusedError(111, "refused"), EXIT_FAILURE, "unexpected"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_each_kind_of_failure_has_its_code_and_names_its_cause(
    exc: Exception, code: int, words: str
) -> None:
    got_code, message = cli.describe_failure(exc)
    assert (got_code, words in message) == (code, True), message


def test_a_failing_command_prints_one_line_and_returns_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "schema.json"
    assert cli.main(["schema", "export", "--out", str(target)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dossier-stream schema: error: cannot open {target}: No such file or directory"]


def test_ctrl_c_exits_130_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(schema_cmd, "run", interrupted)
    assert cli.main(["schema", "check"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines() == ["dossier-stream schema: interrupted"]


def test_the_detail_of_a_multi_line_error_comes_first_and_the_cause_last(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(_args: object) -> int:
        raise LocalStackError("Kafka exited while starting.\nlast lines of kafka.out:\n    boom")

    monkeypatch.setattr(schema_cmd, "run", fails)
    assert cli.main(["schema", "check"]) == EXIT_FAILURE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "dossier-stream schema: error: Kafka exited while starting."
    assert "    boom" in err
