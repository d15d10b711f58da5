"""`dossier-stream publish` as a user runs it, against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from tests.factories import event_doc, lifecycle
from tests.integration.test_publisher import check_order, consume_all, refusing_topic


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


def test_a_large_export_keeps_each_dossiers_order_through_the_validator_processes(
    stack, names, make_topics, tmp_path: Path
) -> None:
    make_topics(names, partitions=4)
    template = event_doc("processing")
    lines = []
    for i in range(1, 20_001):  # ~8 MB: many chunks over two validator processes
        dossier = "HOT-1" if i % 2 else f"COLD-{i % 40:02d}"
        doc = dict(template, event_id=str(uuid.UUID(int=i)), dossier_id=dossier, sequence=i)
        lines.append(orjson.dumps(doc).decode())
    lines[14_999] = json.dumps(event_doc(dossier_id="HOT-1", sequence=15_000, channel="fax"))
    source = tmp_path / "big.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = publish(
        str(source), "--bootstrap", stack.kafka_bootstrap, "--topic", names.events_topic,
        "--workers", "2",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    out = " ".join(result.stderr.split())
    assert "19999 valid, 1 rejected, 19999 delivered, 0 not delivered" in out
    (reject,) = [json.loads(x) for x in Path(f"{source}.rejects.jsonl").read_text().splitlines()]
    assert (reject["line"], reject["errors"][0]["field"]) == (15_000, "channel")
    messages = consume_all(stack.kafka_bootstrap, names.events_topic, 19_999, timeout_s=60)
    sequences = check_order(messages, 19_999)
    assert sequences["HOT-1"] == list(range(1, 20_001, 2))
    sent = {orjson.loads(m.value)["event_id"]: m.value for m in messages}
    assert sent[str(uuid.UUID(int=1))] == lines[0].encode()  # the bytes read, not re-serialised


def test_publish_to_a_broker_that_refuses_exits_non_zero_and_counts_nothing_delivered(
    stack, names, tmp_path: Path
) -> None:
    source = tmp_path / "export.jsonl"
    good = [e.model_dump_json() for e in lifecycle("CLI-REFUSED")]
    source.write_text("\n".join(good) + "\n", encoding="utf-8")
    with refusing_topic(stack.kafka_bootstrap, names.events_topic) as topic:
        result = publish(
            str(source), "--bootstrap", stack.kafka_bootstrap, "--topic", topic,
            "--delivery-timeout", "3",
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    out = " ".join(result.stderr.split())
    assert "4 valid, 0 rejected, 0 delivered, 4 not delivered" in out, out
    assert "not delivered" in out and "CLI-REFUSED" in out
