"""Publish an agency's export of dossier events (JSON Lines or CSV) to Kafka.

Every record is validated against the event contract first. Invalid records go to
the reject file with their line number and the fields at fault; valid ones are sent
keyed by dossier id and acknowledged by the broker. The exit code is 0 only when
every record was valid and delivered.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from dossier_stream.console import err_console, progress_bar
from dossier_stream.settings import StackSettings
from producers.errors import PublisherError
from producers.publisher import DossierPublisher
from schemas.errors import EventValidationError, FieldError
from schemas.events import DossierEvent, parse_event
from schemas.registry import AgencyRegistry

EXAMPLES = """\
examples:
  dossier-stream publish export.jsonl                      # to the local broker
  dossier-stream publish export.csv --rejects bad.jsonl    # CSV with a header row
  cat export.jsonl | dossier-stream publish - --dry-run    # validate only
  dossier-stream publish export.jsonl --bootstrap kafka.example:9092 --topic dossier.events.v1

CSV columns: the contract's field names, with nested fields flattened by '_':
  agency_code, agency_level, procedure_code, procedure_field, time_limit_value,
  time_limit_unit; empty cells mean "absent".
"""

# CSV column -> path in the event document.
CSV_NESTED = {
    "agency_code": ("agency", "code"),
    "agency_level": ("agency", "level"),
    "procedure_code": ("procedure", "code"),
    "procedure_field": ("procedure", "field"),
    "time_limit_value": ("time_limit", "value"),
    "time_limit_unit": ("time_limit", "unit"),
}


@dataclass
class Record:
    """One line (or CSV row) of the input, decoded or not."""

    line: int
    raw: str
    data: dict[str, Any] | None
    error: FieldError | None = None


@dataclass
class PublishSummary:
    read: int = 0
    valid: int = 0
    rejected: int = 0
    delivered: int = 0
    not_delivered: int = 0

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.not_delivered == 0


def configure(parser: argparse.ArgumentParser) -> None:
    stack = StackSettings()
    parser.add_argument("input", help="JSON Lines or CSV file of events, or - for standard input")
    parser.add_argument(
        "--format",
        choices=["auto", "jsonl", "csv"],
        default="auto",
        help="input format (default: from the file name; standard input is JSON Lines)",
    )
    parser.add_argument(
        "--rejects",
        type=Path,
        default=None,
        help="file for invalid records, one JSON object per line (default: INPUT.rejects.jsonl, "
        "or rejects.jsonl for standard input)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate only; send nothing")
    parser.add_argument(
        "--bootstrap", default=stack.kafka_bootstrap, help="Kafka bootstrap servers"
    )
    parser.add_argument("--topic", default=stack.events_topic, help="topic to publish to")
    parser.add_argument("--registry", type=Path, default=None, help="agency registry JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    registry = (
        AgencyRegistry.from_file(args.registry) if args.registry else AgencyRegistry.default()
    )
    fmt = _format_of(args.input, args.format)
    rejects_path = args.rejects or (
        Path("rejects.jsonl") if args.input == "-" else Path(f"{args.input}.rejects.jsonl")
    )
    total = None if args.input == "-" else Path(args.input).stat().st_size
    # Closed by the `with stream` below.
    stream = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8", newline="")  # noqa: SIM115
    summary = PublishSummary()
    started = time.monotonic()
    try:
        with stream, open(rejects_path, "w", encoding="utf-8") as rejects:
            publisher = (
                None
                if args.dry_run
                else DossierPublisher(args.bootstrap, args.topic, registry=registry)
            )
            try:
                with progress_bar(
                    "publishing" if publisher else "validating",
                    total,
                    enabled=False if args.quiet else None,
                    unit="bytes",
                ) as bar:
                    for record in read_records(stream, fmt):
                        bar.advance(len(record.raw.encode("utf-8")) + 1)
                        summary.read += 1
                        event = _validate(record, registry, rejects)
                        if event is None:
                            summary.rejected += 1
                            continue
                        summary.valid += 1
                        if publisher is not None:
                            publisher.publish(event)
            finally:
                if publisher is not None:
                    summary.delivered, summary.not_delivered = _finish(publisher)
    except PublisherError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        summary.not_delivered = max(summary.not_delivered, summary.valid - summary.delivered)
        _print_summary(summary, rejects_path, args.dry_run, time.monotonic() - started)
        return 1
    _print_summary(summary, rejects_path, args.dry_run, time.monotonic() - started)
    if summary.rejected == 0 and rejects_path.exists() and rejects_path.stat().st_size == 0:
        rejects_path.unlink()
    return 0 if summary.ok else 1


def _finish(publisher: DossierPublisher) -> tuple[int, int]:
    try:
        publisher.close()
    except PublisherError as exc:
        err_console.print(f"[red]delivery failed:[/red] {exc}")
    report = publisher.report
    return report.acked, report.failed + report.pending


def _validate(record: Record, registry: AgencyRegistry, rejects: IO[str]) -> DossierEvent | None:
    errors: list[FieldError]
    if record.data is None:
        errors = [record.error or FieldError("line", "not a JSON object")]
    else:
        try:
            return parse_event(record.data, registry)
        except EventValidationError as exc:
            errors = exc.errors
    rejects.write(
        json.dumps(
            {
                "line": record.line,
                "errors": [{"field": e.field, "message": e.message} for e in errors],
                "record": record.raw,
            },
            ensure_ascii=False,
        )
        + "\n"
    )
    return None


def _format_of(name: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def read_records(stream: IO[str], fmt: str) -> Iterator[Record]:
    """Decode records one at a time; a record that cannot be decoded carries its error."""
    if fmt == "csv":
        yield from _read_csv(stream)
        return
    for number, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield Record(number, text, None, FieldError("line", f"not valid JSON: {exc}"))
            continue
        if not isinstance(data, dict):
            yield Record(number, text, None, FieldError("line", "expected a JSON object"))
            continue
        yield Record(number, text, data)


def _read_csv(stream: IO[str]) -> Iterator[Record]:
    reader = csv.DictReader(stream)
    for row in reader:
        line = reader.line_num
        buffer = io.StringIO()
        csv.writer(buffer).writerow([row.get(k) or "" for k in reader.fieldnames or []])
        raw = buffer.getvalue().rstrip("\r\n")
        if None in row:  # more cells than the header has columns
            yield Record(line, raw, None, FieldError("line", "more cells than header columns"))
            continue
        yield Record(line, raw, csv_row_to_event(row))


def csv_row_to_event(row: dict[str, str]) -> dict[str, Any]:
    """Nest a flat CSV row into the contract's document; empty cells are left out."""
    doc: dict[str, Any] = {}
    for column, cell in row.items():
        if cell is None or cell == "":
            continue
        path = CSV_NESTED.get(column)
        if path is None:
            doc[column] = cell
        else:
            doc.setdefault(path[0], {})[path[1]] = cell
    for key in ("sequence", "status"):
        if isinstance(doc.get(key), str) and doc[key].strip().lstrip("-").isdigit():
            doc[key] = int(doc[key])
    limit = doc.get("time_limit")
    if isinstance(limit, dict) and str(limit.get("value", "")).isdigit():
        limit["value"] = int(limit["value"])
    return doc


def _print_summary(summary: PublishSummary, rejects: Path, dry_run: bool, seconds: float) -> None:
    err_console.print(
        f"read {summary.read} record(s) in {seconds:.1f} s: {summary.valid} valid, "
        f"{summary.rejected} rejected"
        + (
            ""
            if dry_run
            else f", {summary.delivered} delivered, {summary.not_delivered} not delivered"
        )
    )
    if summary.rejected:
        err_console.print(f"rejected records with their reasons: {rejects}")
