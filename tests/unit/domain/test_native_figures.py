"""The Rust figure book against the Python one: the same moves, the same answers, the same errors.

`domain/figures.py` states the figures (and `test_figures.py`, run on both books, checks
them against `tests.reference`); these tests drive both books in lock-step, through
random histories and the simulator's quarter, and compare every reader after every few
moves: counts, snapshots, series, dirty and known scopes, the alerts' readers, the
scopes time alone changes, and a clock too far back, which both must refuse alike.
Collected only when the compiled core with its Rust book is active (see conftest.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from domain.calendar import WorkingCalendar
from domain.figures import (
    CITY,
    WINDOWS,
    ClockTooOldError,
    DossierFacts,
    FigureBook,
    RetiredRows,
    dossier_facts,
    epoch_floor,
)
from domain.lifecycle import ChannelKind, DossierState, Lifecycle, calendar_resume
from domain.native_figures import NativeFigureBook, NativePartitionBook
from producers.simulator import SimulationConfig, WorkloadSimulator
from schemas.registry import AgencyRegistry
from tests.unit.domain.test_figures import random_facts, vn

BASE = vn(2025, 10, 1, 0, 20)


def outcome(read: Callable[[], Any]) -> tuple[str, Any]:
    """What a reader gives, or the type and message of what it raises."""
    try:
        return ("value", read())
    except Exception as exc:  # the point: both books must fail alike
        return ("error", (type(exc).__name__, str(exc)))


def same(py: Any, rs: Any, read: Callable[[Any], Any]) -> Any:
    a, b = outcome(lambda: read(py)), outcome(lambda: read(rs))
    assert a == b
    return a


def compare(py: FigureBook, rs: NativeFigureBook, t: int, rng: random.Random) -> None:
    """Every reader of the two books at clock t (the Python book read first each time)."""
    same(py, rs, lambda b: b.scopes())
    same(py, rs, lambda b: b.dirty_scopes())
    scopes = [*py.scopes(), "agency:NONE"]
    for scope in scopes:
        same(py, rs, lambda b, s=scope: b.counts(s, t))
        same(py, rs, lambda b, s=scope: b.snapshot(s, t).to_redis_hash())
        if rng.random() < 0.3:
            same(py, rs, lambda b, s=scope: b.series(s, t).to_redis_hash())
        for window in WINDOWS:
            same(py, rs, lambda b, s=scope, w=window: b.received_in(s, w, t))
    same(py, rs, lambda b: b.near_due_at(scopes, t))
    h1 = t // 3600 * 3600
    for back in (3600, 6 * 3600, 3 * 86400, 60 * 86400):
        same(py, rs, lambda b, h0=h1 - back: b.overdue_between(h0, h1))
    for step in (1, 59, 3600, rng.randint(1, 3 * 86400)):
        same(py, rs, lambda b, s=step: b.scopes_changed_between(t, t + s))
        same(py, rs, lambda b, s=step: b.scopes_changed_between(t + s, t))
    same(py, rs, lambda b: sorted(b.fine_instants()))
    same(py, rs, lambda b: b.kept_days(CITY))


def both_move(py: FigureBook, rs: NativeFigureBook, before: Any, after: Any) -> None:
    same(py, rs, lambda b: b.move(before, after))


def random_clocks(rng: random.Random, n: int, start: int) -> Iterator[int]:
    """Clocks mostly moving on, some stepping back (a replay's partitions disagree)."""
    t = start
    for _ in range(n):
        t += rng.choice([rng.randint(0, 600), rng.randint(0, 7200), rng.randint(0, 86400)])
        yield t - (rng.randint(0, 5 * 3600) if rng.random() < 0.15 else 0)


@pytest.mark.parametrize("seed", range(12))
def test_random_histories_read_the_same(seed: int) -> None:
    rng = random.Random(seed)
    py, rs = FigureBook(), NativeFigureBook()
    last: dict[int, DossierFacts | None] = {}
    if rng.random() < 0.5:
        pin = BASE - rng.randint(1, 50) * 86400
        same(py, rs, lambda b: b.keep_hours_from(pin))
    clocks = random_clocks(rng, 40, BASE - 20 * 86400)
    for t in clocks:
        for _ in range(rng.randint(1, 60)):
            d = rng.randrange(200)
            after = random_facts(rng, t)
            both_move(py, rs, last.get(d), after)
            last[d] = after
        compare(py, rs, t, rng)
        if rng.random() < 0.5:
            py.clear_dirty()
            rs.clear_dirty()
    # Every contribution moved out: both books read empty (and alike).
    for f in last.values():
        both_move(py, rs, f, None)
    compare(py, rs, BASE + 30 * 86400, rng)


@pytest.mark.parametrize("seed", range(6))
def test_rebuilds_read_the_same(seed: int) -> None:
    rng = random.Random(100 + seed)
    facts = [random_facts(rng, BASE - rng.randint(0, 120) * 86400) for _ in range(1500)]
    closed = [i for i, f in enumerate(facts) if f is not None and not f.open]
    retired_at = set(closed[: len(closed) // 3])  # a third of the closed ones retired
    retired = RetiredRows()
    for i in sorted(retired_at):
        retired.add(facts[i])  # type: ignore[arg-type]
    kept = [f for i, f in enumerate(facts) if i not in retired_at]
    now = BASE if seed % 2 else None
    pin = BASE - 70 * 86400 if seed % 3 == 0 else None
    py, rs = FigureBook(), NativeFigureBook()
    for book in (py, rs):
        book.begin_rebuild(now=now, keep_hours_from=pin)
        for f in kept:
            book.add(f)
        book.add_retired(retired)
        book.end_rebuild()
    for t in (BASE, BASE + 1800, BASE + 3 * 3600 + 7, BASE + 9 * 86400):
        compare(py, rs, t, rng)


def test_a_clock_too_far_back_is_refused_alike() -> None:
    py, rs = FigureBook(), NativeFigureBook()
    f = random_facts(random.Random(1), BASE) or random_facts(random.Random(2), BASE)
    both_move(py, rs, None, f)
    py.snapshot(CITY, BASE)
    rs.snapshot(CITY, BASE)
    for back in (3 * 3600, 5 * 3600, 40 * 86400):
        kind, what = same(py, rs, lambda b, s=back: b.counts(CITY, BASE - s))
        same(py, rs, lambda b, s=back: b.series(CITY, BASE - s).to_redis_hash())
        same(py, rs, lambda b, s=back: b.received_in(CITY, "24h", BASE - s))
    assert kind == "error" and what[0] == ClockTooOldError.__name__
    with pytest.raises(ClockTooOldError):
        rs.counts(CITY, BASE - 40 * 86400)


def test_odd_arguments_are_refused_alike() -> None:
    py, rs = FigureBook(), NativeFigureBook()
    f = random_facts(random.Random(3), BASE)
    both_move(py, rs, None, f)
    same(py, rs, lambda b: b.received_in(CITY, "2h", BASE))
    same(py, rs, lambda b: b.received_in("agency:NONE", "2h", BASE))
    same(py, rs, lambda b: type(b).__name__ and b.move(None, None))
    with pytest.raises(ValueError, match="retention must be at least 3 hours"):
        NativeFigureBook(retention=3600)
    odd = DossierFacts(
        scopes=("agency:A", "level:city", "field:F", CITY),
        channel="not a channel",  # type: ignore[arg-type]
        received_at=BASE,
        resolved_at=None,
        resolved_on_time=None,
        open=True,
        paused=False,
        due_at=None,
        near_at=None,
        became_overdue_at=None,
    )
    with pytest.raises(KeyError):  # not a ChannelKind: no slot, and nothing counted
        rs.move(None, odd)
    assert rs.counts(CITY, BASE) == py.counts(CITY, BASE)


def test_the_simulators_quarter_reads_the_same() -> None:
    """Three weeks of the simulator's events through the lifecycle, as the worker feeds a
    partition's book, with both books read at the event clock every 2,000 events."""
    calendar = WorkingCalendar()
    life = Lifecycle(calendar_resume(calendar))
    py = FigureBook()
    rs = NativePartitionBook(calendar, second_supplement_late=True)
    states: dict[str, DossierState] = {}
    config = SimulationConfig(seed=4, start=date(2025, 9, 1), days=21, scale=0.3)
    simulator = WorkloadSimulator(config, registry=AgencyRegistry.default(), calendar=calendar)
    rng = random.Random(4)
    n = 0
    for sim_event in simulator.events():
        ev = sim_event.to_event()
        state = states.setdefault(ev.dossier_id, DossierState(ev.dossier_id))
        before = rs.facts(state)
        assert before == dossier_facts(state, calendar)
        life.apply(state, ev)
        after = rs.facts(state)
        both_move(py, rs, before, after)
        n += 1
        if n % 2000 == 0:
            t = epoch_floor(ev.occurred_at)
            compare(py, rs, t, rng)
            py.clear_dirty()
            rs.clear_dirty()
    assert n > 10_000
    end = epoch_floor(ev.occurred_at) + 86400
    assert rs.counts(CITY, end)["qtd.received_total"] > 0
    compare(py, rs, end, rng)


def test_every_channel_kind_has_its_slot() -> None:
    rs = NativeFigureBook()
    for i, kind in enumerate(ChannelKind):
        f = random_facts(random.Random(i), BASE)
        assert f is not None
        scopes = (f"agency:{kind}", "level:city", "field:F", CITY)
        rs.move(None, f._replace(channel=kind, scopes=scopes))
    counts = rs.counts(CITY, BASE + 4 * 3600)
    for kind in ChannelKind:
        assert counts[f"ytd.received_{kind}"] == 1, kind
