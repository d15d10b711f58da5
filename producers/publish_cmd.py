"""Publish an agency's export of dossier events (JSON Lines or CSV) to Kafka.

Every record is validated against the event contract first. Invalid records go to
the reject file with their line number and the fields at fault; valid ones are sent
keyed by dossier id and acknowledged by the broker. The exit code is 0 only when
every record was valid and delivered.

How it is fast: the file is read in chunks of lines; validator processes check the
chunks (pydantic, `model_validate_json`, as the worker does) while this process sends
the chunks already checked, in file order, through kafka-python (whose own thread
talks to the broker). A JSON line is sent as the bytes that were validated. Order per
dossier holds: chunks are sent in the order of the file, every event of a dossier goes
to its dossier's partition, and the idempotent producer keeps each partition in order.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import ValidationError
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from common.console import err_console
from common.errors import CommandError
from common.settings import StackSettings
from producers.errors import PublisherError
from producers.publisher import DossierPublisher, compression_codecs, partition_for
from schemas.errors import EventValidationError, FieldError
from schemas.events import DossierEvent, parse_event
from schemas.registry import AgencyRegistry

EXAMPLES = """\
examples:
  dossier-stream publish export.jsonl                      # to the local broker
  dossier-stream publish export.csv --rejects bad.jsonl    # CSV with a header row
  cat export.jsonl | dossier-stream publish - --dry-run    # validate only
  dossier-stream publish export.jsonl --bootstrap kafka.example:9092 --topic dossier.events.v1

  # a large export (a quarter, ~1.4 million events): a progress bar on the terminal shows
  # events validated and sent, the rate and the time left; the summary ends with the rate
  dossier-stream simulate --days 91 --speed max --start 2025-07-01 --out quarter.jsonl --quiet
  dossier-stream publish quarter.jsonl --rejects quarter.rejects.jsonl
  dossier-stream publish quarter.jsonl --quiet 2> publish.log   # no progress bar

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
# Bytes of input per chunk handed to a validator (a few thousand events).
CHUNK_BYTES = 1 << 20
# Most validator processes by default (the sending process needs a core too).
MAX_AUTO_WORKERS = 4


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


# -- chunks: what a validator gets and gives back ------------------------------------------


@dataclass
class Chunk:
    """Consecutive records of the input.

    JSON Lines: `lines` are the lines' bytes (end of line removed; blank lines are
    None) and the first has number `first_line`. CSV: `records`, already decoded.
    """

    first_line: int
    nbytes: int
    lines: list[bytes | None] = field(default_factory=list)
    records: list[Record] | None = None


@dataclass
class Checked:
    """A validator's verdict on a chunk, in the chunk's order.

    `keys[i]` is the dossier id of the chunk's i-th record when it is valid (None when
    rejected or blank), `partitions[i]` its partition (when the partition count was
    given), `payloads[i]` the bytes to send when they are not the line itself (CSV).
    `rejects` holds (line number, [(field, message)], record as read).
    """

    keys: list[bytes | None]
    partitions: list[int] | None
    payloads: list[bytes] | None
    rejects: list[tuple[int, list[tuple[str, str]], str]]


_REGISTRY: AgencyRegistry | None = None


def _init_validator(registry_path: str | None) -> None:
    global _REGISTRY
    # Ctrl-C reaches the whole process group: the sending process stops the validators.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _REGISTRY = AgencyRegistry.from_file(Path(registry_path)) if registry_path else None
    if _REGISTRY is None:
        _REGISTRY = AgencyRegistry.default()


def check_chunk(
    chunk: Chunk, partitions: int | None, registry: AgencyRegistry | None = None
) -> Checked:
    """Validate every record of a chunk (in a validator process, or in this one)."""
    registry = registry or _REGISTRY
    context = {"registry": registry}
    keys: list[bytes | None] = []
    rejects: list[tuple[int, list[tuple[str, str]], str]] = []
    if chunk.records is not None:
        payloads: list[bytes] | None = []
        assert payloads is not None
        for record in chunk.records:
            event = _validate_record(record, registry, rejects)
            keys.append(None if event is None else event.dossier_id.encode("utf-8"))
            payloads.append(b"" if event is None else event.model_dump_json().encode("utf-8"))
    else:
        payloads = None
        validate = DossierEvent.model_validate_json
        number = chunk.first_line
        for line in chunk.lines:
            if line is None:
                keys.append(None)
            else:
                try:
                    keys.append(validate(line, context=context).dossier_id.encode("utf-8"))
                except ValidationError as exc:
                    keys.append(None)
                    rejects.append(_json_line_reject(number, line, exc))
            number += 1
    parts = None
    if partitions is not None:
        parts = [0 if key is None else partition_for(key, partitions) for key in keys]
    return Checked(keys, parts, payloads, rejects)


def _json_line_reject(
    number: int, line: bytes, exc: ValidationError
) -> tuple[int, list[tuple[str, str]], str]:
    """Why a JSON line was refused: a line that is no JSON object, or the contract's fields."""
    raw = line.decode("utf-8", errors="replace")
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        return number, [("line", f"not valid JSON: {err}")], raw
    if not isinstance(data, dict):
        return number, [("line", "expected a JSON object")], raw
    errors = EventValidationError.from_pydantic(exc).errors
    return number, [(e.field, e.message) for e in errors], raw


def _validate_record(
    record: Record,
    registry: AgencyRegistry | None,
    rejects: list[tuple[int, list[tuple[str, str]], str]],
) -> DossierEvent | None:
    errors: list[FieldError]
    if record.data is None:
        errors = [record.error or FieldError("line", "not a JSON object")]
    else:
        try:
            return parse_event(record.data, registry)
        except EventValidationError as exc:
            errors = exc.errors
    rejects.append((record.line, [(e.field, e.message) for e in errors], record.raw))
    return None


# -- reading ----------------------------------------------------------------------------------


def read_chunks(stream: IO[bytes], fmt: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """The input in chunks of about `chunk_bytes`, one chunk in memory at a time."""
    if fmt == "csv":
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        records: list[Record] = []
        size = 0
        for record in _read_csv(text):
            records.append(record)
            size += len(record.raw) + 1
            if size >= chunk_bytes:
                yield Chunk(records[0].line, size, records=records)
                records, size = [], 0
        if records:
            yield Chunk(records[0].line, size, records=records)
        return
    number = 1
    while True:
        raw_lines = stream.readlines(chunk_bytes)
        if not raw_lines:
            return
        lines: list[bytes | None] = []
        size = 0
        for raw in raw_lines:
            size += len(raw)
            line = raw.rstrip(b"\r\n")
            lines.append(line if line.strip() else None)
        yield Chunk(number, size, lines)
        number += len(raw_lines)


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


# -- validating, in order, ahead of the sender -----------------------------------------------


class Validators:
    """Checks chunks in `workers` processes (0: in this one), results in input order.

    At most a few chunks per process are in flight, so memory stays bounded whatever
    the size of the input.
    """

    def __init__(self, workers: int, registry: AgencyRegistry, registry_path: Path | None):
        self.workers = workers
        self.registry = registry
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            # Fork is fast and safe while this process has no other thread (the Kafka
            # client's thread starts later); otherwise a fresh interpreter.
            method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_init_validator,
                initargs=(str(registry_path) if registry_path else None,),
            )

    def checked(
        self, chunks: Iterator[Chunk], partitions: int | None
    ) -> Iterator[tuple[Chunk, Checked]]:
        if self._pool is None:
            for chunk in chunks:
                yield chunk, check_chunk(chunk, partitions, self.registry)
            return
        window: deque[tuple[Chunk, Future[Checked]]] = deque()
        ahead = 2 * self.workers + 1
        for chunk in chunks:
            window.append((chunk, self._pool.submit(check_chunk, chunk, partitions)))
            if len(window) > ahead:
                done, future = window.popleft()
                yield done, future.result()
        while window:
            done, future = window.popleft()
            yield done, future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def default_workers() -> int:
    """Validator processes: one fewer than the CPUs this process may use, 1 to 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_AUTO_WORKERS, cpus - 1))


# -- the command ------------------------------------------------------------------------------


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
    parser.add_argument(
        "--delivery-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds the broker has to acknowledge an event before it counts as not "
        "delivered (default 30)",
    )
    parser.add_argument(
        "--compression",
        choices=["none", *compression_codecs()],
        default="none",
        help="compression of the messages (default none, the fastest; gzip sends about 9 "
        "times fewer bytes, for a slow network, and costs CPU)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="validator processes beside the one that sends (default: one fewer than the "
        f"CPUs, 1 to {MAX_AUTO_WORKERS}; 0 validates in the sending process)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (there is none either when standard error is not a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    registry = (
        AgencyRegistry.from_file(args.registry) if args.registry else AgencyRegistry.default()
    )
    fmt = _format_of(args.input, args.format)
    rejects_path = args.rejects or (
        Path("rejects.jsonl") if args.input == "-" else Path(f"{args.input}.rejects.jsonl")
    )
    total = None if args.input == "-" else Path(args.input).stat().st_size
    workers = default_workers() if args.workers is None else max(0, args.workers)
    # Closed by the `with stream` below.
    stream = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
    summary = PublishSummary()
    started = time.monotonic()
    failure_note = ""
    try:
        with stream, open(rejects_path, "w", encoding="utf-8") as rejects:
            # The validators before the Kafka client: its thread must not be forked.
            validators = Validators(workers, registry, args.registry)
            publisher: DossierPublisher | None = None
            try:
                if not args.dry_run:
                    publisher = DossierPublisher(
                        args.bootstrap,
                        args.topic,
                        registry=registry,
                        delivery_timeout_s=args.delivery_timeout,
                        compression=None if args.compression == "none" else args.compression,
                    )
                partitions = None if publisher is None else publisher.partitions()
                with _Progress(
                    "publishing" if publisher else "validating",
                    total,
                    sending=publisher is not None,
                    enabled=False if args.quiet else None,
                ) as bar:
                    for chunk, checked in validators.checked(read_chunks(stream, fmt), partitions):
                        summary.read += len(checked.keys) - (
                            chunk.lines.count(None) if chunk.records is None else 0
                        )
                        for number, errors, raw in checked.rejects:
                            _write_reject(rejects, number, errors, raw)
                        summary.rejected += len(checked.rejects)
                        if publisher is None:
                            summary.valid += sum(1 for k in checked.keys if k is not None)
                        else:
                            summary.valid += _send_chunk(publisher, chunk, checked)
                            report = publisher.report
                            if report.failed:  # the broker refused: stop, report
                                failure_note = (
                                    "stopped reading after the first delivery failure; "
                                    "the rest of the input was not sent"
                                )
                                break
                            bar.update(chunk.nbytes, summary, report.acked)
                            continue
                        bar.update(chunk.nbytes, summary, None)
            finally:
                validators.close()
                if publisher is not None:
                    summary.delivered, summary.not_delivered, failure = _finish(publisher)
                    failure_note = "; ".join(x for x in (failure, failure_note) if x)
    except PublisherError:
        summary.not_delivered = max(summary.not_delivered, summary.valid - summary.delivered)
        if summary.read:
            _print_summary(summary, rejects_path, args.dry_run, time.monotonic() - started)
        raise  # `dossier-stream` ends with the line that names it
    _print_summary(summary, rejects_path, args.dry_run, time.monotonic() - started)
    if summary.rejected == 0 and rejects_path.exists() and rejects_path.stat().st_size == 0:
        rejects_path.unlink()
    if failure_note:
        raise CommandError(failure_note)
    return 0 if summary.ok else 1


def _send_chunk(publisher: DossierPublisher, chunk: Chunk, checked: Checked) -> int:
    """Send the chunk's valid records in order; returns how many."""
    send = publisher.send_validated
    sent = 0
    keys = checked.keys
    parts = checked.partitions
    if checked.payloads is not None:  # CSV: the model's JSON
        for i, key in enumerate(keys):
            if key is not None:
                send(checked.payloads[i], key, None if parts is None else parts[i])
                sent += 1
        return sent
    lines = chunk.lines
    if parts is None:
        for line, key in zip(lines, keys, strict=True):
            if key is not None:
                send(line, key)  # type: ignore[arg-type]
                sent += 1
        return sent
    for line, key, part in zip(lines, keys, parts, strict=True):
        if key is not None:
            send(line, key, part)  # type: ignore[arg-type]
            sent += 1
    return sent


def _finish(publisher: DossierPublisher) -> tuple[int, int, str]:
    """Wait for the broker's acknowledgements: (delivered, not delivered, why not)."""
    failure = ""
    try:
        publisher.close()
    except PublisherError as exc:
        failure = f"delivery failed: {exc}"
    report = publisher.report
    return report.acked, report.failed + report.pending, failure


def _write_reject(rejects: IO[str], line: int, errors: list[tuple[str, str]], raw: str) -> None:
    rejects.write(
        json.dumps(
            {
                "line": line,
                "errors": [{"field": f, "message": m} for f, m in errors],
                "record": raw,
            },
            ensure_ascii=False,
        )
        + "\n"
    )


def _format_of(name: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return "csv" if name.lower().endswith(".csv") else "jsonl"


class _Progress:
    """Events validated and acknowledged, their rate, and the time left (from the bytes
    read, when the input's size is known), on stderr when it is a terminal."""

    def __init__(
        self, description: str, total: int | None, *, sending: bool, enabled: bool | None
    ) -> None:
        self.show = err_console.is_terminal if enabled is None else enabled
        self.description = description
        self.total = total
        self.sending = sending
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.show:
            sent = " · [cyan]{task.fields[acked]}[/cyan] acknowledged" if self.sending else ""
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("[green]{task.fields[valid]}[/green] valid" + sent),
                TextColumn("{task.fields[rejected]} rejected · {task.fields[rate]} events/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err_console,
                refresh_per_second=4,
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                self.description, total=self.total, valid="0", acked="0", rejected="0", rate="–"
            )
        return self

    def update(self, nbytes: int, summary: PublishSummary, acked: int | None) -> None:
        if self._progress is None:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self._progress.update(
            self._task,
            advance=nbytes,
            valid=f"{summary.valid:,}",
            acked=f"{acked or 0:,}",
            rejected=f"{summary.rejected:,}",
            rate=f"{summary.valid / elapsed:,.0f}",
        )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


def _print_summary(summary: PublishSummary, rejects: Path, dry_run: bool, seconds: float) -> None:
    rate = summary.valid / seconds if seconds > 0 else 0.0
    err_console.print(
        f"read {summary.read} record(s) in {seconds:.2f} s ({rate:,.0f} valid events/s): "
        f"{summary.valid} valid, {summary.rejected} rejected"
        + (
            ""
            if dry_run
            else f", {summary.delivered} delivered, {summary.not_delivered} not delivered"
        ),
        soft_wrap=True,
    )
    if summary.rejected:
        err_console.print(f"rejected records with their reasons: {rejects}", soft_wrap=True)
