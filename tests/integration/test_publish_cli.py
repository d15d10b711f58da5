"""`dossier-stream publish` as a user runs it, against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson

from tests.factories import event_doc, lifecycle
from tests.integration.test_publisher import consume_all


def publish(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dossier_stream.cli", "publish", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_publish_delivers_valid_records_and_rejects_the_rest(
    stack, names, make_topics, tmp_path: Path
) -> None:
    make_topics(names, partitions=2)
    good = [e.model_dump_json() for e in lifecycle("CLI-1") + lifecycle("CLI-2")]
    lines = [*good[:3], json.dumps(event_doc(dossier_id="CLI-3", phone="0900000000")), *good[3:]]
    source = tmp_path / "export.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = publish(
        str(source), "--bootstrap", stack.kafka_bootstrap, "--topic", names.events_topic
    )
    assert result.returncode == 1, result.stderr
    assert "8 valid, 1 rejected, 8 delivered, 0 not delivered" in " ".join(result.stderr.split())
    rejects = [json.loads(x) for x in Path(f"{source}.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["errors"][0]["field"]) for r in rejects] == [(4, "phone")]
    assert "0900000000" not in rejects[0]["errors"][0]["message"]
    delivered = consume_all(stack.kafka_bootstrap, names.events_topic, 8)
    assert sorted(orjson.loads(m.value)["event_id"] for m in delivered) == sorted(
        orjson.loads(g)["event_id"] for g in good
    )


def test_publish_of_a_clean_export_from_stdin_exits_zero(
    stack, names, make_topics, tmp_path: Path
) -> None:
    make_topics(names, partitions=1)
    text = "\n".join(e.model_dump_json() for e in lifecycle("CLI-STDIN")) + "\n"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dossier_stream.cli",
            "publish",
            "-",
            "--rejects",
            str(tmp_path / "r.jsonl"),
            "--bootstrap",
            stack.kafka_bootstrap,
            "--topic",
            names.events_topic,
        ],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(consume_all(stack.kafka_bootstrap, names.events_topic, 4)) == 4


def test_publish_to_an_unreachable_broker_exits_non_zero_with_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text(orjson.dumps(event_doc()).decode() + "\n", encoding="utf-8")
    result = publish(str(source), "--bootstrap", "127.0.0.1:1", "--topic", "x")
    assert result.returncode == 1
    assert "no Kafka broker answered at 127.0.0.1:1" in " ".join(result.stderr.split())
