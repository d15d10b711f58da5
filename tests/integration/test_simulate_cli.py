"""`dossier-stream simulate` as a user runs it: to the real broker, and to files."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from schemas.events import parse_event
from schemas.registry import AgencyRegistry
from tests.integration.test_publisher import consume_all

REGISTRY = AgencyRegistry.default()
SMALL = ["--start", "2025-10-01", "--days", "3", "--scale", "0.02", "--seed", "5", "-q"]


def simulate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dossier_stream.cli", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    return doc


def test_simulate_to_kafka_delivers_the_same_events_as_the_file(
    stack: Any, names: Any, make_topics: Any, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    truth_path = tmp_path / "truth.json"
    sent = simulate(
        *SMALL,
        "--bootstrap",
        stack.kafka_bootstrap,
        "--topic",
        names.events_topic,
        "--summary-json",
        str(truth_path),
    )
    assert sent.returncode == 0, sent.stderr
    run = summary(truth_path)["run"]
    assert run["events"] > 500 and run["duplicates"] == 0

    written = simulate(*SMALL, "--out", str(tmp_path / "same.jsonl"))
    assert written.returncode == 0, written.stderr
    expected = {
        e.event_id: e
        for e in (
            parse_event(line, REGISTRY)
            for line in (tmp_path / "same.jsonl").read_bytes().splitlines()
        )
    }
    assert len(expected) == run["events"]

    messages = consume_all(stack.kafka_bootstrap, names.events_topic, run["events"])
    assert len(messages) == run["events"]
    got = {}
    for m in messages:
        event = parse_event(m.value, REGISTRY)
        assert m.key == event.dossier_id.encode()
        got[event.event_id] = event
    assert got == expected


def test_duplicates_reach_kafka_as_extra_messages(
    stack: Any, names: Any, make_topics: Any, tmp_path: Path
) -> None:
    make_topics(names, partitions=2)
    truth_path = tmp_path / "truth.json"
    result = simulate(
        *SMALL,
        "--duplicates",
        "0.05",
        "--reorder",
        "0.05",
        "--bootstrap",
        stack.kafka_bootstrap,
        "--topic",
        names.events_topic,
        "--summary-json",
        str(truth_path),
    )
    assert result.returncode == 0, result.stderr
    run = summary(truth_path)["run"]
    assert run["duplicates"] > 0 and run["swaps"] > 0
    messages = consume_all(stack.kafka_bootstrap, names.events_topic, run["emitted"])
    assert len(messages) == run["emitted"]
    ids = Counter(orjson.loads(m.value)["event_id"] for m in messages)
    assert len(ids) == run["events"]
    assert sum(ids.values()) - len(ids) == run["duplicates"]


def test_simulate_to_an_unreachable_broker_fails_clearly() -> None:
    result = simulate(*SMALL, "--bootstrap", "127.0.0.1:1", "--topic", "x")
    assert result.returncode == 1
    text = " ".join(result.stderr.split())
    assert "127.0.0.1:1" in text and "dossier-stream services up" in text


def test_file_output_is_reproducible_with_its_truth(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (a, b):
        result = simulate(*SMALL, "--out", str(path), "--summary-json", f"{path}.json")
        assert result.returncode == 0, result.stderr
    assert a.read_bytes() == b.read_bytes()
    truth = summary(Path(f"{a}.json"))
    assert truth["run"]["events"] == len(a.read_bytes().splitlines())
    assert truth["total"]["events"] == truth["run"]["events"]
    assert len(truth["units"]) == 130


def test_the_figures_table_goes_to_stderr_when_events_go_to_stdout() -> None:
    result = simulate(*SMALL[:-1], "--out", "-")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith('{"schema_version":1,') for line in lines)
    assert "Received" in result.stderr and "SO-YTE" in result.stderr


def test_accelerated_speed_paces_the_simulated_clock(tmp_path: Path) -> None:
    # One simulated day at 43,200x lasts about two seconds.
    started = time.monotonic()
    result = simulate(
        "--start",
        "2025-10-01",
        "--days",
        "1",
        "--scale",
        "0.01",
        "--speed",
        "43200",
        "--out",
        str(tmp_path / "day.jsonl"),
        "-q",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert 1.5 <= elapsed <= 15
