"""Generate a realistic, deterministic Hải Phòng workload of dossier events and send it to
Kafka (default) or write it as JSON Lines. Every city body and the 114 commune-level units
receive dossiers with their own procedure and channel mixes; each dossier runs a full
lifecycle (submitted, accepted, processing, supplements, fees, apology slips, resolved on
time or late, returned; refusals, withdrawals, stops), dated by the working-day calendar.
The defaults reproduce the seed article's figures for city departments: about 140,000
dossiers a quarter, about 67% online, CA-TP and five departments above 80%, about 1%
overdue. `--speed max` backfills as fast as it can, `realtime` waits for each event's
time, a number runs the simulated clock that many times faster. When it ends it prints
the true figures of what it generated (the truth the worker must show). Without
`--start`, the simulated `--days` days end at today's 00:00 (Vietnam time), so the history
reaches up to now and no event is dated in the future (the worker dead-letters those);
`realtime` starts at today's 00:00 and sends each event at its time. The same `--seed`
and `--start` give the same events, byte for byte.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
from rich.console import Console, JustifyMethod
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from common.argtypes import non_negative_float, positive_int
from common.errors import EXIT_INTERRUPTED, EXIT_USAGE, CommandError
from common.settings import StackSettings
from domain.calendar import WorkingCalendar
from producers.simulator import (
    UTC7,
    Incident,
    SimEvent,
    SimulationConfig,
    SimulationStats,
    WorkloadSimulator,
)
from producers.truth import TruthBuilder, UnitTruth, WorkloadTruth
from schemas.enums import AgencyLevel
from schemas.errors import DossierStreamError
from schemas.registry import AgencyRegistry

EXAMPLES = """\
examples:
  dossier-stream simulate --days 7 --speed max --seed 1 --out week.jsonl
  dossier-stream simulate --speed 3600                  # to Kafka, a simulated hour a second
  dossier-stream simulate --speed realtime --scale 0.1  # live, at a tenth of the volume
  dossier-stream simulate --start 2025-10-01 --speed max \\
      --incident SO-XD:2025-11-03T08:00:00+07:00:48  # an overdue spike at SO-XD
  dossier-stream simulate --start 2025-10-01 --days 3 --scale 0.01 --out - | head
  dossier-stream simulate --days 7 --duplicates 0.02 --reorder 0.01 --out faults.jsonl \\
      --summary-json truth.json                       # exactness tests of the worker
"""

PROGRESS_EVERY = 2_000  # events between progress refreshes
MAX_SLEEP_S = 0.5  # sleep in slices so progress and Ctrl-C stay responsive


def configure(parser: argparse.ArgumentParser) -> None:
    settings = StackSettings()
    when = parser.add_argument_group("what to simulate")
    when.add_argument(
        "--start",
        type=_date_arg,
        default=None,
        metavar="DATE",
        help="first simulated day, ISO date (default: DAYS days before today in Vietnam; "
        "with --speed realtime, today)",
    )
    when.add_argument(
        "--days", type=positive_int, default=91, help="simulated days (default 91, a quarter)"
    )
    when.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    when.add_argument(
        "--scale",
        type=non_negative_float,
        default=1.0,
        help="fraction of the default volume, e.g. 0.01 for tests (default 1)",
    )
    when.add_argument(
        "--communes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="simulate the 114 commune-level units too (default: yes)",
    )
    when.add_argument(
        "--commune-daily",
        type=non_negative_float,
        default=25.0,
        metavar="N",
        help="dossiers received per working day by an average commune-level unit (default 25)",
    )
    when.add_argument(
        "--incident",
        type=_incident_arg,
        action="append",
        default=[],
        metavar="AGENCY:START:HOURS",
        help="an overdue spike: the agency's dossiers due in the window are mostly late, "
        "e.g. SO-XD:2025-11-03T08:00:00+07:00:48 (repeatable; span a midnight)",
    )
    when.add_argument(
        "--duplicates",
        type=_rate_arg,
        default=0.0,
        metavar="RATE",
        help="share of events sent again with the same event_id (default 0)",
    )
    when.add_argument(
        "--reorder",
        type=_rate_arg,
        default=0.0,
        metavar="RATE",
        help="share of events swapped with the same dossier's next event (default 0)",
    )
    out = parser.add_argument_group("where and how fast")
    out.add_argument(
        "--speed",
        type=_speed_arg,
        default="max",
        metavar="realtime|N|max",
        help="realtime: wait for each event's time; N: N times faster (3600 = a simulated "
        "hour a second); max: as fast as possible (default max)",
    )
    out.add_argument(
        "--out",
        default=None,
        metavar="FILE|-",
        help="write JSON Lines to FILE (- for stdout) instead of sending to Kafka",
    )
    out.add_argument(
        "--bootstrap",
        default=settings.kafka_bootstrap,
        help=f"Kafka bootstrap servers (default {settings.kafka_bootstrap}, "
        "env DOSSIER_KAFKA_BOOTSTRAP)",
    )
    out.add_argument(
        "--topic",
        default=settings.events_topic,
        help=f"events topic (default {settings.events_topic}, env DOSSIER_EVENTS_TOPIC)",
    )
    out.add_argument(
        "--summary-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the true figures (and run statistics) as JSON",
    )
    out.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar and no figures table"
    )


# -- argument types ----------------------------------------------------------------------


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def _rate_arg(text: str) -> float:
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {text}")
    return value


def _speed_arg(text: str) -> float | None:
    """None for max, 1.0 for realtime, else the factor."""
    word = text.strip().lower()
    if word == "max":
        return None
    if word == "realtime":
        return 1.0
    try:
        value = float(word)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected realtime, max or a number, got {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"speed must be positive, got {text}")
    return value


def _incident_arg(text: str) -> Incident:
    try:
        return Incident.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- sinks and pacing --------------------------------------------------------------------


class _Sink(Protocol):
    written: int

    def write(self, event: SimEvent) -> None: ...
    def flush(self) -> None: ...


class _JsonLinesSink:
    """Writes one JSON document a line."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._dumps = orjson.dumps
        self.written = 0

    def write(self, event: SimEvent) -> None:
        self._stream.write(self._dumps(event.as_dict()) + b"\n")
        self.written += 1

    def flush(self) -> None:
        self._stream.flush()


class _KafkaSink:
    """Sends through the project's publisher (validated, keyed by dossier id)."""

    def __init__(self, publisher: Any) -> None:
        self._publisher = publisher
        self.written = 0

    def write(self, event: SimEvent) -> None:
        self._publisher.publish(event.as_dict())
        self.written += 1

    def flush(self) -> None:
        self._publisher.flush()


@dataclass
class _Pacer:
    """Waits until an event's time on the scaled clock (None speed: never waits)."""

    speed: float | None
    sim_start: float  # simulated instant (epoch s) that maps to wall_start
    wall_start: float
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def wait_s(self, event_ts: float) -> float:
        if self.speed is None:
            return 0.0
        target = self.wall_start + (event_ts - self.sim_start) / self.speed
        return max(0.0, target - self.clock())


def _make_pacer(speed: float | None, config: SimulationConfig, now: datetime) -> _Pacer:
    if speed == 1.0:  # realtime: each event waits for its own instant
        return _Pacer(1.0, 0.0, 0.0)
    # N times faster: the simulated clock starts at the period's start when the run starts.
    return _Pacer(speed, config.start_at.timestamp(), now.timestamp())


# -- the run -------------------------------------------------------------------------------


def _default_start(speed: float | None, days: int, now: datetime) -> date:
    # Only a realtime run may start today: a faster one would date its events ahead of
    # the wall clock, and the worker dead-letters events from the future.
    today = now.astimezone(UTC7).date()
    return today if speed == 1.0 else today - timedelta(days=days)


def run(args: argparse.Namespace) -> int:
    now = datetime.now(UTC7)
    start = args.start or _default_start(args.speed, args.days, now)
    to_stdout = args.out == "-"
    report = Console(stderr=True) if to_stdout else Console()
    errors = Console(stderr=True)
    try:
        config = SimulationConfig(
            start=start,
            days=args.days,
            seed=args.seed,
            scale=args.scale,
            communes=args.communes,
            commune_daily=args.commune_daily,
            incidents=tuple(args.incident),
            duplicates=args.duplicates,
            reorder=args.reorder,
        )
        registry = AgencyRegistry.default()
        simulator = WorkloadSimulator(config, registry=registry, calendar=WorkingCalendar())
    except (ValueError, DossierStreamError) as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    truth = TruthBuilder(
        registry, config.start_at, config.end_at, agencies=[p.code for p in simulator.profiles]
    )
    for inc in config.incidents:
        if inc.end <= config.start_at or inc.start >= config.end_at:
            errors.print(
                f"[yellow]warning:[/] incident {inc.agency_code} at {inc.start.isoformat()} "
                f"is outside the simulated period {config.start} + {config.days} days"
            )
    pacer = _make_pacer(args.speed, config, now)
    show_progress = not args.quiet and errors.is_terminal
    started = time.perf_counter()
    interrupted = False
    written = 0
    with ExitStack() as stack:
        # An unreachable broker or an --out that cannot be written: `dossier-stream`
        # names it on one line.
        sink = _open_sink(args, stack, registry)
        try:
            _pump(simulator, sink, truth, pacer, config, errors if show_progress else None)
            sink.flush()
        except KeyboardInterrupt:
            interrupted = True
        except DossierStreamError as exc:
            raise CommandError(f"{exc} ({sink.written:,} events sent before it)") from exc
        written = sink.written
    elapsed = time.perf_counter() - started
    stats = simulator.stats
    if interrupted:
        errors.print(
            f"interrupted: {written:,} events written ({stats.dossiers:,} dossiers planned); "
            "the figures of a partial run are not printed",
            soft_wrap=True,
        )
        return EXIT_INTERRUPTED
    result = truth.build()
    if args.summary_json is not None:
        doc = result.to_dict()
        doc["run"] = _run_info(args, config, stats, elapsed)
        args.summary_json.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    if not args.quiet:
        render_truth(report, result, config, stats, elapsed)
    return 0


def _open_sink(args: argparse.Namespace, stack: ExitStack, registry: Any) -> _Sink:
    if args.out == "-":
        return _JsonLinesSink(sys.stdout.buffer)
    if args.out is not None:
        return _JsonLinesSink(stack.enter_context(open(args.out, "wb", buffering=1 << 20)))
    # Imported here: the Kafka client is not needed (nor loaded) when writing files.
    from producers.publisher import DossierPublisher

    publisher = stack.enter_context(DossierPublisher(args.bootstrap, args.topic, registry=registry))
    return _KafkaSink(publisher)


def _pump(
    simulator: WorkloadSimulator,
    sink: _Sink,
    truth: TruthBuilder,
    pacer: _Pacer,
    config: SimulationConfig,
    progress_console: Console | None,
) -> None:
    # Thousands of dossiers are in flight at once; the default gen-0 threshold (700)
    # makes the cyclic collector rescan them over and over. The plans hold no cycles.
    old_threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    try:
        events = simulator.events(on_plan=truth.add)
        if progress_console is None:
            _send_all(events, sink, pacer, None)
        else:
            with _progress(progress_console, config) as tick:
                _send_all(events, sink, pacer, tick)
    finally:
        gc.set_threshold(*old_threshold)
        gc.unfreeze()


def _send_all(
    events: Iterator[SimEvent],
    sink: _Sink,
    pacer: _Pacer,
    tick: Callable[[SimEvent | None, int], None] | None,
) -> None:
    write = sink.write
    n = 0
    if pacer.speed is None and tick is None:
        for event in events:
            write(event)
        return
    for event in events:
        if pacer.speed is not None:
            wait = pacer.wait_s(event.occurred_at.timestamp())
            if wait > 0:
                sink.flush()
                while wait > 0:
                    pacer.sleep(min(wait, MAX_SLEEP_S))
                    if tick is not None:
                        tick(event, n)
                    wait = pacer.wait_s(event.occurred_at.timestamp())
        write(event)
        n += 1
        if tick is not None and n % PROGRESS_EVERY == 0:
            tick(event, n)
    if tick is not None:
        tick(None, n)


class _progress:
    """A rich progress bar over simulated time, with events and events/s."""

    def __init__(self, console: Console, config: SimulationConfig) -> None:
        self._progress = Progress(
            TextColumn("[bold]simulating[/]"),
            BarColumn(),
            TextColumn("{task.fields[simtime]}"),
            TextColumn("{task.fields[events]:>12,} events"),
            TextColumn("{task.fields[rate]:>8,.0f} ev/s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._start = config.start_at.timestamp()
        self._span = config.end_at.timestamp() - self._start
        self._t0 = time.perf_counter()
        self._task = self._progress.add_task(
            "simulate", total=self._span, simtime="", events=0, rate=0.0
        )

    def __enter__(self) -> Callable[[SimEvent | None, int], None]:
        self._progress.__enter__()
        return self._tick

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def _tick(self, event: SimEvent | None, n: int) -> None:
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        if event is None:
            done, simtime = self._span, "done"
        else:
            done = event.occurred_at.timestamp() - self._start
            simtime = event.occurred_at.strftime("%Y-%m-%d %H:%M")
        self._progress.update(
            self._task, completed=done, simtime=simtime, events=n, rate=n / elapsed
        )


def _run_info(
    args: argparse.Namespace, config: SimulationConfig, stats: SimulationStats, elapsed: float
) -> dict[str, Any]:
    return {
        "seed": config.seed,
        "start": config.start.isoformat(),
        "days": config.days,
        "scale": config.scale,
        "communes": config.communes,
        "commune_daily": config.commune_daily,
        "incidents": [
            {"agency": i.agency_code, "start": i.start.isoformat(), "hours": i.hours}
            for i in config.incidents
        ],
        "duplicates_rate": config.duplicates,
        "reorder_rate": config.reorder,
        "speed": "max" if args.speed is None else args.speed,
        "output": args.out or f"kafka:{args.bootstrap}/{args.topic}",
        "dossiers": stats.dossiers,
        "events": stats.events,
        "duplicates": stats.duplicates,
        "swaps": stats.swaps,
        "emitted": stats.emitted,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(stats.emitted / elapsed) if elapsed > 0 else None,
    }


# -- the figures table ---------------------------------------------------------------------


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}"


def _row(
    table: Table, u: UnitTruth, *, bold: bool = False, mark: bool = True, suffix: str = ""
) -> None:
    name = Text(u.name + suffix, style="bold" if bold else "")
    name.append(f"\n{u.name_en}", style="dim")
    online = _pct(u.online_share)
    if mark and u.meets_online_target:
        online_cell = Text(f"{online} ★", style="green")
    else:
        online_cell = Text(online)
    table.add_row(
        u.code,
        name,
        f"{u.received:,}",
        f"{u.in_person:,}",
        f"{u.online_full:,}",
        f"{u.online_partial:,}",
        f"{u.post:,}",
        online_cell,
        _pct(u.full_online_share),
        f"{u.resolved_on_time:,}",
        f"{u.resolved_late:,}",
        _pct(u.on_time_share),
        f"{u.overdue:,}",
        _pct(u.overdue_share),
        style="bold" if bold else None,
    )


def build_table(truth: WorkloadTruth) -> Table:
    """The figures of the city bodies, the city total, the communes total and all units."""
    start = truth.start.astimezone(UTC7).date()
    last = (truth.end.astimezone(UTC7) - timedelta(seconds=1)).date()
    table = Table(
        title=f"Số liệu thật của tải mô phỏng / True figures of the generated workload\n"
        f"{start.isoformat()} → {last.isoformat()} (giờ Việt Nam / Vietnam time)",
        show_lines=False,
        header_style="bold",
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("Mã\nCode", "left"),
        ("Đơn vị\nUnit", "left"),
        ("Tiếp nhận\nReceived", "right"),
        ("Trực tiếp\nIn person", "right"),
        ("Toàn trình\nOnline full", "right"),
        ("Một phần\nOnline part.", "right"),
        ("Bưu chính\nPost", "right"),
        ("Trực tuyến\nOnline %", "right"),
        ("Toàn trình\nFull %", "right"),
        ("Đúng hạn\nOn time", "right"),
        ("Trễ hạn\nLate", "right"),
        ("Đúng hạn\nOn time %", "right"),
        ("Quá hạn\nOverdue", "right"),
        ("Quá hạn\nOverdue %", "right"),
    )
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)
    for u in truth.by_level(AgencyLevel.CITY):
        _row(table, u)
    table.add_section()
    _row(table, truth.city, bold=True)
    if truth.communes.received or truth.by_level(AgencyLevel.COMMUNE):
        n = len(truth.by_level(AgencyLevel.COMMUNE))
        _row(table, truth.communes, bold=True, mark=False, suffix=f": {n} đơn vị")
        _row(table, truth.total, bold=True, mark=False)
    return table


def render_truth(
    console: Console,
    truth: WorkloadTruth,
    config: SimulationConfig,
    stats: SimulationStats,
    elapsed: float,
) -> None:
    """Print the figures table and a few lines about the run."""
    if not console.is_terminal:
        console.width = max(console.width, 210)
    console.print(build_table(truth))
    rate = stats.emitted / elapsed if elapsed > 0 else 0.0
    console.print(
        f"★ online ≥ 80% (mục tiêu / target).  Tiếp nhận = accepted (status 2) in the period; "
        f"online % = online / received; quá hạn = resolved late + open past due at the end"
        f"{' (2 supplement requests count late)' if truth.second_supplement_late else ''}; "
        "overdue % = overdue / received."
    )
    extras = []
    if stats.duplicates:
        extras.append(f"{stats.duplicates:,} duplicates")
    if stats.swaps:
        extras.append(f"{stats.swaps:,} swapped pairs")
    extra = f" (+ {', '.join(extras)})" if extras else ""
    console.print(
        f"seed {config.seed}, scale {config.scale:g}: {stats.dossiers:,} dossiers, "
        f"{stats.events:,} events{extra} in {elapsed:.1f} s ({rate:,.0f} events/s)"
    )
    for inc in config.incidents:
        unit = truth.units.get(inc.agency_code)
        affected = unit.incident_dossiers if unit else 0
        console.print(
            f"incident {inc.agency_code}: {inc.start.isoformat()} + {inc.hours:g} h, "
            f"{affected:,} received dossiers due inside it"
        )
