"""The `simulate` command's pure parts: arguments, pacing, the figures table."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from rich.console import Console

from domain.calendar import WorkingCalendar
from producers import simulate_cmd as cmd
from producers.simulator import UTC7, SimEvent, SimulationConfig, WorkloadSimulator
from producers.truth import compute_truth
from schemas.enums import AgencyLevel
from schemas.registry import AgencyRegistry

CONFIG = SimulationConfig(start=date(2025, 10, 1), days=2, seed=4, scale=0.02)


@pytest.fixture(scope="module")
def simulator() -> WorkloadSimulator:
    return WorkloadSimulator(CONFIG, registry=AgencyRegistry.default(), calendar=WorkingCalendar())


@pytest.fixture(scope="module")
def events(simulator: WorkloadSimulator) -> list[SimEvent]:
    return list(simulator.events())


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd.configure(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    args = parse()
    assert (args.speed, args.days, args.seed, args.scale) == (None, 91, 1, 1.0)
    assert args.communes is True and args.commune_daily == 25.0
    assert (args.out, args.start, args.incident) == (None, None, [])
    assert (args.duplicates, args.reorder, args.quiet) == (0.0, 0.0, False)


def test_options_parse() -> None:
    args = parse(
        "--speed", "3600", "--start", "2025-10-01", "--no-communes", "--out", "-",
        "--incident", "SO-XD:2025-11-03T08:00:00+07:00:48", "--incident", "CA-TP:2025-11-04:24",
        "--duplicates", "0.1", "--reorder", "0.2",
    )  # fmt: skip
    assert args.speed == 3600.0 and args.start == date(2025, 10, 1)
    assert args.communes is False and args.out == "-"
    assert [i.agency_code for i in args.incident] == ["SO-XD", "CA-TP"]
    assert (args.duplicates, args.reorder) == (0.1, 0.2)


@pytest.mark.parametrize(
    ("text", "speed"),
    [("max", None), ("MAX", None), ("realtime", 1.0), ("3600", 3600.0), ("0.5", 0.5)],
)
def test_speed(text: str, speed: float | None) -> None:
    assert cmd._speed_arg(text) == speed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--speed", "fast"], "realtime, max or a number"),
        (["--speed", "0"], "positive"),
        (["--duplicates", "1.5"], "between 0 and 1"),
        (["--reorder", "-0.1"], "negative"),
        (["--days", "0"], "at least 1"),
        (["--start", "2025-13-01"], "ISO date"),
        (["--incident", "SO-XD:2025-11-03"], "AGENCY:START:HOURS"),
    ],
)
def test_bad_options_are_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("speed", "expected"),
    [(None, date(2025, 9, 2)), (1.0, date(2025, 12, 2)), (3600.0, date(2025, 9, 2))],
)
def test_default_start(speed: float | None, expected: date) -> None:
    # 20:00 UTC on 1 December is already 2 December in Vietnam.
    now = datetime(2025, 12, 1, 20, 0, tzinfo=UTC)
    assert cmd._default_start(speed, 91, now) == expected


def test_pacer_maps_simulated_time_to_wall_time() -> None:
    start = datetime(2025, 10, 1, tzinfo=UTC7)
    wall = 1_000_000.0
    pacer = cmd._make_pacer(3600.0, CONFIG, datetime.fromtimestamp(wall, UTC7))
    pacer.clock = lambda: wall
    assert pacer.wait_s(start.timestamp()) == 0.0
    assert pacer.wait_s((start + timedelta(hours=2)).timestamp()) == pytest.approx(2.0)
    realtime = cmd._make_pacer(1.0, CONFIG, start)
    realtime.clock = lambda: start.timestamp()
    assert realtime.wait_s((start + timedelta(seconds=5)).timestamp()) == pytest.approx(5.0)
    assert realtime.wait_s((start - timedelta(days=1)).timestamp()) == 0.0
    assert cmd._make_pacer(None, CONFIG, start).wait_s(2e9) == 0.0


class FakeSink:
    def __init__(self) -> None:
        self.written = 0
        self.flushes: list[int] = []

    def write(self, event: SimEvent) -> None:
        self.written += 1

    def flush(self) -> None:
        self.flushes.append(self.written)


def test_send_all_sleeps_on_the_scaled_clock(events: list[SimEvent]) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    speed = 86_400.0  # a simulated day a second
    pacer = cmd._Pacer(speed, CONFIG.start_at.timestamp(), 0.0, clock=lambda: now[0], sleep=sleep)
    sink = FakeSink()
    ticks: list[int] = []
    cmd._send_all(iter(events), sink, pacer, lambda ev, n: ticks.append(n))
    assert sink.written == len(events)
    span = events[-1].occurred_at.timestamp() - CONFIG.start_at.timestamp()
    assert sum(slept) == pytest.approx(span / speed, abs=1e-6)
    assert max(slept) <= cmd.MAX_SLEEP_S
    assert sink.flushes  # flushed before waiting, so consumers see events on time
    assert ticks[-1] == len(events)


def test_send_all_at_max_speed_never_sleeps(events: list[SimEvent]) -> None:
    def sleep(seconds: float) -> None:
        raise AssertionError("slept")

    sink = FakeSink()
    cmd._send_all(iter(events), sink, cmd._Pacer(None, 0.0, 0.0, sleep=sleep), None)
    assert sink.written == len(events) and sink.flushes == []


def test_figures_table(simulator: WorkloadSimulator) -> None:
    registry = AgencyRegistry.default()
    truth = compute_truth(
        simulator.plans(),
        registry,
        CONFIG.start_at,
        CONFIG.end_at,
        agencies=[p.code for p in simulator.profiles],
    )
    out = io.StringIO()
    console = Console(file=out, width=250)
    cmd.render_truth(console, truth, CONFIG, simulator.stats, 1.0)
    text = out.getvalue()
    for needle in (
        "Sở Y tế",
        "Department of Health",
        "CA-TP",
        "Cấp xã: 114 đơn vị",
        "Toàn thành phố",
    ):
        assert needle in text
    assert "Trực tuyến" in text and "Online %" in text and "Quá hạn" in text
    starred = [line.split("│")[1].strip() for line in text.splitlines() if "★ │" in line]
    city = truth.by_level(AgencyLevel.CITY)  # communes are shown as one total, unmarked
    assert set(starred) == {u.code for u in city if u.meets_online_target}
    assert starred
