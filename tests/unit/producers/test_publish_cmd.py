"""`dossier-stream publish --dry-run`: reading exports and writing rejects, without Kafka."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import orjson

from dossier_stream.cli import main
from producers.publish_cmd import csv_row_to_event
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
