"""`dossier-stream publish --dry-run`: reading exports and writing rejects, without Kafka."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
from rich.console import Console

from dossier_stream.cli import main
from producers import publish_cmd
from producers.publish_cmd import csv_row_to_event
from producers.publisher import DeliveryReport, partition_for
from tests.factories import event_doc

CSV_COLUMNS = [
    "event_id",
    "dossier_id",
    "sequence",
    "event_type",
    "status",
    "occurred_at",
    "emitted_at",
    "agency_code",
    "agency_level",
    "procedure_code",
    "procedure_field",
    "channel",
    "online_mode",
    "time_limit_value",
    "time_limit_unit",
    "appointment_at",
]


def flat(doc: dict) -> dict[str, str]:
    row = {k: str(v) for k, v in doc.items() if not isinstance(v, dict) and k in CSV_COLUMNS}
    row.update(
        agency_code=doc["agency"]["code"],
        agency_level=doc["agency"]["level"],
        procedure_code=doc["procedure"]["code"],
        procedure_field=doc["procedure"]["field"],
    )
    if "time_limit" in doc:
        row.update(
            time_limit_value=str(doc["time_limit"]["value"]),
            time_limit_unit=doc["time_limit"]["unit"],
        )
    return row


def test_csv_rows_nest_into_the_contract_and_empty_cells_are_absent() -> None:
    row = flat(event_doc())
    row["online_mode"] = "full"
    doc = csv_row_to_event({**row, "appointment_at": row["appointment_at"], "extra": ""})
    assert doc["agency"] == {"code": "SO-YTE", "level": "city"}
    assert doc["time_limit"] == {"value": 5, "unit": "working_days"}
    assert doc["sequence"] == 1 and doc["status"] == 2
    assert "extra" not in doc


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_dry_run_rejects_bad_lines_with_line_numbers_and_reasons(tmp_path: Path) -> None:
    good = orjson.dumps(event_doc()).decode()
    lines = [good, "{broken", json.dumps(event_doc(channel="fax")), "", "[1, 2]", good]
    source = write_jsonl(tmp_path / "export.jsonl", lines)
    rejects = tmp_path / "rejects.jsonl"
    code = main(["publish", str(source), "--dry-run", "--rejects", str(rejects), "--quiet"])
    assert code == 1
    rows = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rows] == [2, 3, 5]
    assert rows[0]["errors"][0]["field"] == "line" and "JSON" in rows[0]["errors"][0]["message"]
    assert rows[1]["errors"][0]["field"] == "channel"
    assert rows[1]["record"] == lines[2]


def test_dry_run_of_a_clean_export_exits_zero_and_leaves_no_reject_file(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "ok.jsonl", [orjson.dumps(event_doc()).decode()] * 3)
    rejects = tmp_path / "rejects.jsonl"
    assert main(["publish", str(source), "--dry-run", "--rejects", str(rejects), "--quiet"]) == 0
    assert not rejects.exists()


def test_dry_run_reads_csv_with_a_header(tmp_path: Path) -> None:
    source = tmp_path / "export.csv"
    bad = flat(event_doc())
    bad["agency_code"] = "SO-NOPE"
    with source.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerow(flat(event_doc()))
        writer.writerow(bad)
    rejects = tmp_path / "rejects.jsonl"
    assert main(["publish", str(source), "--dry-run", "--rejects", str(rejects), "--quiet"]) == 1
    (row,) = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert row["line"] == 3 and row["errors"][0]["field"] == "agency"
    assert "SO-NOPE" in row["errors"][0]["message"]


# -- the validation pipeline: chunks, validator processes, order ------------------------------


def big_export(path: Path, n: int, bad: dict[int, str]) -> list[str]:
    """`n` lines of valid events, dossiers interleaved; line numbers in `bad` replaced."""
    lines = []
    base = event_doc("processing")
    for i in range(1, n + 1):
        if i in bad:
            lines.append(bad[i])
            continue
        doc = dict(base, event_id=str(uuid.UUID(int=i)), sequence=i // 7 + 1)
        # One hot dossier on every third line, the rest spread over 50 others.
        doc["dossier_id"] = "HOT-1" if i % 3 == 0 else f"D-{i % 50:02d}"
        lines.append(orjson.dumps(doc).decode())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_reject_deep_in_a_large_export_keeps_its_line_number_and_field(
    tmp_path: Path, workers: str
) -> None:
    bad = {
        1: json.dumps(event_doc(channel="fax")),
        12_345: json.dumps(event_doc(dossier_id="X-1", citizen_name="Nguyễn Văn A")),
        12_346: "",
        17_001: "{broken",
        19_999: "[1, 2]",
    }
    source = tmp_path / "big.jsonl"
    big_export(source, 20_000, bad)  # ~8 MB: several chunks
    rejects = tmp_path / "rejects.jsonl"
    code = main(
        ["publish", str(source), "--dry-run", "--rejects", str(rejects), "--quiet",
         "--workers", workers]
    )  # fmt: skip
    assert code == 1
    rows = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["errors"][0]["field"]) for r in rows] == [
        (1, "channel"),
        (12_345, "citizen_name"),
        (17_001, "line"),
        (19_999, "line"),
    ]
    assert "Nguyễn" not in rows[1]["errors"][0]["message"]  # no personal data echoed
    assert rows[1]["record"] == bad[12_345]


class FakePublisher:
    """Stands in for DossierPublisher: records what the command sends, acknowledges it all."""

    instances: ClassVar[list[FakePublisher]] = []

    def __init__(self, bootstrap: str, topic: str, **_: object) -> None:
        self.sent: list[tuple[bytes, bytes, int | None]] = []
        FakePublisher.instances.append(self)

    def partitions(self) -> int:
        return 4

    def send_validated(self, payload: bytes, key: bytes, partition: int | None = None) -> None:
        self.sent.append((payload, key, partition))

    @property
    def report(self) -> DeliveryReport:
        return DeliveryReport(len(self.sent), 0, 0)

    def close(self) -> DeliveryReport:
        return self.report


def test_events_are_sent_in_file_order_as_the_bytes_read_keyed_and_partitioned_by_dossier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish_cmd, "DossierPublisher", FakePublisher)
    FakePublisher.instances.clear()
    source = tmp_path / "big.jsonl"
    padded = orjson.dumps(event_doc(dossier_id="  PAD-1 ", sequence=9)).decode()
    lines = big_export(source, 30_000, {5_000: "{broken", 20_000: padded})
    code = main(["publish", str(source), "--quiet", "--workers", "3", "--topic", "t"])
    assert code == 1  # one reject
    (pub,) = FakePublisher.instances
    expected = [line.encode() for i, line in enumerate(lines, start=1) if i != 5_000]
    assert [payload for payload, _, _ in pub.sent] == expected  # file order, bytes as read
    for payload, key, partition in pub.sent:
        dossier = orjson.loads(payload)["dossier_id"].strip()
        assert key == dossier.encode()  # the validated id: what the worker checks
        assert partition == partition_for(key, 4)
    hot = [orjson.loads(p)["sequence"] for p, k, _ in pub.sent if k == b"HOT-1"]
    assert len(hot) == 10_000 and hot == sorted(hot)


def test_the_progress_bar_shows_on_a_terminal_and_not_with_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, color_system=None, width=200)
    monkeypatch.setattr(publish_cmd, "err_console", console)
    source = write_jsonl(tmp_path / "ok.jsonl", [orjson.dumps(event_doc()).decode()] * 3)
    args = ["publish", str(source), "--dry-run", "--rejects", str(tmp_path / "r.jsonl")]
    assert main([*args, "--workers", "0"]) == 0
    shown = screen.getvalue()
    assert "validating" in shown and "events/s" in shown and "100%" in shown
    screen.seek(0)
    screen.truncate()
    assert main([*args, "--workers", "0", "--quiet"]) == 0
    assert "validating" not in screen.getvalue()
    assert "3 valid, 0 rejected" in screen.getvalue()  # the summary stays
