"""Live figures: windows at their edges, gauges moving with the clock, moves, and exactness."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis.strategies import datetimes, sampled_from

from domain.calendar import VN_TZ, WorkingCalendar
from domain.figures import (
    CITY,
    COUNT_METRICS,
    SERIES_FIELDS,
    SNAPSHOT_FIELDS,
    WINDOWS,
    ClockTooOldError,
    DossierFacts,
    FigureBook,
    dossier_facts,
    epoch_ceil,
    epoch_floor,
    quotient_text,
    ratio_text,
    window_start,
)
from domain.lifecycle import ChannelKind, DossierState, Lifecycle, calendar_resume
from schemas.events import DossierEvent
from tests.factories import T0, event
from tests.reference import (
    all_facts,
    reference_series,
    reference_snapshots,
    snapshots_from_facts,
    window_starts,
)

pytestmark = pytest.mark.usefixtures("each_book")  # each test on every figure book

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CAL = WorkingCalendar()
LIFE = Lifecycle(calendar_resume(CAL))
SCOPES = ("agency:SO-YTE", "level:city", "field:health", CITY)


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch seconds of a Vietnam wall-clock time."""
    return epoch_floor(datetime(year, month, day, hour, minute, second, tzinfo=VN_TZ))


def facts(received: int, **kw: Any) -> DossierFacts:
    base: dict[str, Any] = {
        "scopes": SCOPES,
        "channel": ChannelKind.ONLINE_FULL,
        "received_at": received,
        "resolved_at": None,
        "resolved_on_time": None,
        "open": True,
        "paused": False,
        "due_at": None,
        "near_at": None,
        "became_overdue_at": None,
    }
    base.update(kw)
    return DossierFacts(**base)


def feed(book: FigureBook, states: dict[str, DossierState], ev: DossierEvent) -> None:
    state = states.setdefault(ev.dossier_id, DossierState(ev.dossier_id))
    before = dossier_facts(state, CAL)
    LIFE.apply(state, ev)
    book.move(before, dossier_facts(state, CAL))


def book_of(events: list[DossierEvent]) -> tuple[FigureBook, dict[str, DossierState]]:
    book, states = FigureBook(), dict[str, DossierState]()
    for ev in events:
        feed(book, states, ev)
    return book, states


def hashes(book: FigureBook, t: int) -> dict[str, dict[str, str]]:
    return {s: book.snapshot(s, t).to_redis_hash() for s in book.scopes()}


def series_hashes(book: FigureBook, t: int) -> dict[str, dict[str, str]]:
    return {s: book.series(s, t).to_redis_hash() for s in book.scopes()}


# -- facts of one dossier ---------------------------------------------------------------


def test_no_facts_until_the_dossier_is_received() -> None:
    state = DossierState("D")
    LIFE.apply(state, event("submitted", dossier_id="D"))
    assert dossier_facts(state, CAL) is None


def test_facts_of_an_accepted_dossier() -> None:
    # Accepted Wed 1 Oct 2025 08:00, appointment Wed 8 Oct: due 9 Oct 00:00.
    state = DossierState("D")
    LIFE.apply(state, event("accepted", dossier_id="D"))
    f = dossier_facts(state, CAL)
    assert f is not None
    assert f.scopes == SCOPES and f.channel is ChannelKind.ONLINE_FULL
    assert f.received_at == vn(2025, 10, 1, 8) == epoch_floor(T0)
    assert f.due_at == f.became_overdue_at == vn(2025, 10, 9)
    assert f.near_at == vn(2025, 10, 8)  # the appointment day is the last working day
    assert f.open and not f.paused and f.resolved_at is None and f.resolved_on_time is None


def test_a_pause_has_no_due_and_the_resumption_moves_it() -> None:
    state = DossierState("D")
    for i, step in enumerate(["accepted", "supplement_requested"]):
        LIFE.apply(state, event(step, dossier_id="D", sequence=i + 1, at=T0 + timedelta(days=i)))
    paused = dossier_facts(state, CAL)
    assert paused is not None and paused.paused and paused.open
    assert paused.due_at is paused.near_at is paused.became_overdue_at is None
    # Paused Thu 2 Oct, resumed Mon 6 Oct: 2 working days (Fri, Mon) added.
    LIFE.apply(
        state, event("supplement_received", dossier_id="D", sequence=3, at=T0 + timedelta(days=5))
    )
    resumed = dossier_facts(state, CAL)
    assert resumed is not None and not resumed.paused
    assert resumed.due_at == vn(2025, 10, 11) and resumed.near_at == vn(2025, 10, 10)


@pytest.mark.parametrize(
    ("steps", "days_to_end", "on_time", "became"),
    [
        (("accepted", "resolved"), 3, True, None),
        (("accepted", "resolved"), 9, False, vn(2025, 10, 9)),
        (("accepted", "withdrawn"), 3, None, None),
        (("accepted", "withdrawn"), 12, None, vn(2025, 10, 9)),
        (("accepted", "stopped"), 8, None, vn(2025, 10, 9)),
    ],
)
def test_facts_of_finished_dossiers(
    steps: tuple[str, ...], days_to_end: int, on_time: bool | None, became: int | None
) -> None:
    state = DossierState("D")
    LIFE.apply(state, event(steps[0], dossier_id="D"))
    LIFE.apply(
        state, event(steps[1], dossier_id="D", sequence=2, at=T0 + timedelta(days=days_to_end))
    )
    f = dossier_facts(state, CAL)
    assert f is not None and not f.open and f.near_at is None
    assert f.resolved_on_time is on_time and f.became_overdue_at == became
    assert f.due_at == vn(2025, 10, 9)


def test_a_second_supplement_request_makes_a_resolution_late() -> None:
    steps = ["accepted", *["supplement_requested", "supplement_received"] * 2, "resolved"]
    state = DossierState("D")
    for i, step in enumerate(steps):
        LIFE.apply(state, event(step, dossier_id="D", sequence=i + 1, at=T0 + timedelta(hours=i)))
    strict = dossier_facts(state, CAL)
    relaxed = dossier_facts(state, CAL, second_supplement_late=False)
    assert strict is not None and strict.resolved_on_time is False
    assert relaxed is not None and relaxed.resolved_on_time is True
    assert strict.became_overdue_at is None  # it never reached its due instant unresolved


def test_instants_round_events_down_and_deadlines_up() -> None:
    at = datetime(2025, 10, 1, 8, 0, 0, 500_000, tzinfo=VN_TZ)
    assert epoch_floor(at) == vn(2025, 10, 1, 8)
    assert epoch_ceil(at) == vn(2025, 10, 1, 8) + 1
    assert epoch_ceil(datetime(2025, 10, 1, tzinfo=VN_TZ)) == vn(2025, 10, 1)


@given(
    datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=sampled_from([UTC, VN_TZ, timezone(timedelta(hours=-5, minutes=-30))]),
    )
)
def test_instants_are_the_floor_and_ceiling_of_exact_epoch_seconds(at: datetime) -> None:
    exact = Fraction((at - EPOCH) // timedelta(microseconds=1), 1_000_000)
    assert epoch_floor(at) == math.floor(exact)
    assert epoch_ceil(at) == math.ceil(exact)


# -- windows at their edges -------------------------------------------------------------

ALL = frozenset(WINDOWS)
WINDOW_CASES = [
    # (clock T, received at, the windows that count it)
    (vn(2025, 10, 1, 0, 30), vn(2025, 10, 1, 0, 0, 0), ALL),
    (vn(2025, 10, 1, 0, 30), vn(2025, 9, 30, 23, 59, 59), ALL - {"mtd", "qtd"}),
    (vn(2025, 10, 1, 0, 30), vn(2025, 10, 1, 0, 30), ALL),  # the clock's own second
    (vn(2025, 10, 1, 0, 30), vn(2025, 10, 1, 0, 30, 1), frozenset()),  # after the clock
    (vn(2025, 10, 1, 10, 15, 20), vn(2025, 10, 1, 9, 16), ALL),  # minute mT - 59
    (vn(2025, 10, 1, 10, 15, 20), vn(2025, 10, 1, 9, 15, 59), ALL - {"1h"}),
    (vn(2025, 10, 2, 10, 15, 20), vn(2025, 10, 1, 11), ALL - {"1h"}),  # hour hT - 23
    (vn(2025, 10, 2, 10, 15, 20), vn(2025, 10, 1, 10, 59, 59), ALL - {"1h", "24h"}),
    (vn(2025, 10, 8, 10, 15), vn(2025, 10, 1, 11), {"7d", "30d", "mtd", "qtd", "ytd"}),
    (vn(2025, 10, 8, 10, 15), vn(2025, 10, 1, 10, 59, 59), {"30d", "mtd", "qtd", "ytd"}),
    (vn(2025, 10, 31, 10, 15), vn(2025, 10, 1, 11), {"30d", "mtd", "qtd", "ytd"}),
    (vn(2025, 10, 31, 10, 15), vn(2025, 10, 1, 10, 59, 59), {"mtd", "qtd", "ytd"}),
    (vn(2025, 11, 15, 12), vn(2025, 10, 1), {"qtd", "ytd"}),
    (vn(2025, 11, 15, 12), vn(2025, 9, 30, 23, 59, 59), {"ytd"}),
    # Vietnam's month starts at 17:00 UTC of the day before.
    (vn(2025, 11, 1, 6, 59, 59), vn(2025, 11, 1), ALL - {"1h"}),
    (vn(2025, 11, 1, 6, 59, 59), vn(2025, 10, 31, 23, 59, 59), {"24h", "7d", "30d", "qtd", "ytd"}),
    (vn(2026, 1, 1), vn(2025, 12, 31, 23, 59, 59), {"1h", "24h", "7d", "30d"}),
    (vn(2026, 1, 1), vn(2026, 1, 1), ALL),
]


@pytest.mark.parametrize(("t", "received", "counted"), WINDOW_CASES)
def test_windows_at_their_edges(t: int, received: int, counted: frozenset[str]) -> None:
    book = FigureBook()
    book.move(None, facts(received))
    snap = book.snapshot(CITY, t)
    got = {w for w in WINDOWS if snap.windows[w].received_total}
    assert got == set(counted)
    for w in WINDOWS:
        assert snap.windows[w].received_total == snap.windows[w].received_online_full


@pytest.mark.parametrize("t", sorted({case[0] for case in WINDOW_CASES}))
def test_window_starts_agree_with_the_reference(t: int) -> None:
    assert {w: window_start(w, t) for w in WINDOWS} == window_starts(t)


def test_qtd_just_after_the_quarter_starts_counts_the_last_half_hour_only() -> None:
    t = vn(2025, 10, 1, 0, 30)
    book = FigureBook()
    for minute in range(0, 120, 5):  # 23:00 on 30 Sep to 00:55 on 1 Oct, every 5 minutes
        book.move(None, facts(vn(2025, 9, 30, 23) + minute * 60))
    snap = book.snapshot(CITY, t).windows
    assert snap["qtd"].received_total == snap["mtd"].received_total == 7  # 00:00 .. 00:30
    assert snap["1h"].received_total == 12  # 23:31 .. 00:30 holds 23:35 .. 00:30
    assert snap["ytd"].received_total == 19


def test_the_series_buckets_hours_and_vietnam_days_up_to_the_clock() -> None:
    t = vn(2025, 10, 1, 0, 30)
    book = FigureBook()
    for x in (
        vn(2025, 9, 30, 23, 10),
        vn(2025, 9, 30, 23, 50),
        vn(2025, 10, 1, 0, 5),
        vn(2025, 10, 1, 0, 45),
        vn(2025, 9, 23, 23, 59),
        vn(2025, 7, 3, 1),
    ):
        book.move(None, facts(x))
    s = book.series(CITY, t)
    assert s.hourly["received_total"] == {vn(2025, 9, 30, 23): 2, vn(2025, 10, 1): 1}
    assert s.daily["received_online_full"] == {
        vn(2025, 9, 23): 1,
        vn(2025, 9, 30): 2,
        vn(2025, 10, 1): 1,
    }  # 3 July is more than 90 days back; 00:45 is after the clock
    assert s.hourly["received_post"] == {}
    flat = s.to_redis_hash()
    assert set(flat) == set(SERIES_FIELDS)
    assert flat["hourly.received_total"] == f'{{"{vn(2025, 9, 30, 23)}":2,"{vn(2025, 10, 1)}":1}}'
    assert flat["daily.became_overdue"] == "{}"


# -- gauges move with the clock ---------------------------------------------------------


def test_gauges_rise_and_fall_with_the_clock_alone() -> None:
    received, near, due = vn(2025, 10, 1, 8), vn(2025, 10, 8), vn(2025, 10, 9)
    book = FigureBook()
    book.move(None, facts(received, due_at=due, near_at=near, became_overdue_at=due))
    book.move(None, facts(received, open=False, resolved_at=received + 60, resolved_on_time=True))

    def gauges(t: int) -> tuple[int, int, int, int]:
        s = book.snapshot(CITY, t)
        return s.open_now, s.overdue_now, s.near_due_now, s.not_yet_due_now

    assert gauges(near - 1) == (1, 0, 0, 1)
    assert gauges(near) == (1, 0, 1, 1)
    assert gauges(due - 1) == (1, 0, 1, 1)
    # became_overdue fires at the due instant, with no event
    assert book.snapshot(CITY, due - 1).windows["1h"].became_overdue == 0
    assert book.snapshot(CITY, due).windows["1h"].became_overdue == 1
    # 766: (on time + not yet due) / (on time + late + open)
    assert book.snapshot(CITY, due - 1).windows["30d"].on_time_rate == 1
    assert book.snapshot(CITY, due).windows["30d"].on_time_rate == Fraction(1, 2)
    assert gauges(due) == (1, 1, 0, 0)
    assert gauges(due + 86400) == (1, 1, 0, 0)


def test_a_paused_dossier_is_not_overdue_and_counts_as_not_yet_due() -> None:
    events = [
        event("accepted", dossier_id="P", sequence=1),
        event("supplement_requested", dossier_id="P", sequence=2, at=T0 + timedelta(days=1)),
    ]
    book, _ = book_of(events)
    later = vn(2025, 10, 20)
    s = book.snapshot(CITY, later)
    assert (s.open_now, s.overdue_now, s.near_due_now, s.not_yet_due_now) == (1, 0, 0, 1)
    assert s.windows["30d"].became_overdue == 0


def test_an_accepted_dossier_becomes_overdue_at_its_due_instant() -> None:
    book, _ = book_of([event("accepted", dossier_id="A")])
    due = vn(2025, 10, 9)
    assert book.snapshot(CITY, due - 1).overdue_now == 0
    assert book.snapshot(CITY, due).overdue_now == 1
    assert book.scopes_changed_between(due - 1, due) == set(SCOPES)
    assert book.scopes_changed_between(due, due + 1) == set()


def test_a_late_resolution_became_overdue_at_the_due_instant() -> None:
    events = [
        event("accepted", dossier_id="L", sequence=1),
        event("resolved", dossier_id="L", sequence=2, at=datetime(2025, 10, 10, 10, tzinfo=VN_TZ)),
    ]
    book, _ = book_of(events)
    s = book.snapshot(CITY, vn(2025, 10, 10, 12))
    assert s.windows["24h"].resolved_late == 1 and s.windows["24h"].became_overdue == 0
    assert s.windows["7d"].became_overdue == 1 and s.overdue_now == 0 and s.open_now == 0
    assert s.windows["24h"].on_time_rate == 0
    series = book.series(CITY, vn(2025, 10, 10, 12))
    assert series.hourly["became_overdue"] == {vn(2025, 10, 9): 1}
    assert series.hourly["resolved_late"] == {vn(2025, 10, 10, 10): 1}


# -- moves, rebuild and dirty scopes ----------------------------------------------------

CHANNELS = list(ChannelKind)


def random_facts(rng: random.Random, base: int) -> DossierFacts | None:
    if rng.random() < 0.1:
        return None
    received = base + rng.randint(-40 * 86400, 3 * 3600)
    due = received + rng.choice([rng.randint(1, 9) * 86400, rng.randint(3600, 40 * 3600)])
    resolved = rng.choice([None, received + rng.randint(60, 20 * 86400)])
    closed = resolved is None and rng.random() < 0.2
    paused = resolved is None and rng.random() < 0.2
    open_ = resolved is None and not closed
    scopes = (
        f"agency:A{rng.randint(1, 4)}",
        rng.choice(["level:city", "level:commune"]),
        f"field:F{rng.randint(1, 3)}",
        CITY,
    )
    return DossierFacts(
        scopes=scopes,
        channel=rng.choice(CHANNELS),
        received_at=received,
        resolved_at=resolved,
        resolved_on_time=None if resolved is None else resolved < due,
        open=open_,
        paused=paused,
        due_at=None if paused else due,
        near_at=None if paused or not open_ else max(received, due - rng.randint(0, 86400)),
        became_overdue_at=None if paused or (resolved is not None and resolved < due) else due,
    )


def test_moves_leave_exactly_the_latest_contributions() -> None:
    rng = random.Random(7)
    base = vn(2025, 10, 1, 0, 20)
    book = FigureBook()
    last: dict[int, DossierFacts | None] = {}
    for _ in range(1500):
        d = rng.randrange(150)
        after = random_facts(rng, base)
        book.move(last.get(d), after)
        last[d] = after
        if rng.random() < 0.02:
            book.snapshot(CITY, base - 3600)  # evaluations in between lift the fine floor
    rebuilt = FigureBook()
    rebuilt.rebuild(last.values(), now=base)
    assert rebuilt.dirty_scopes() == set(rebuilt.scopes())
    for t in (base - 3600, base, base + 1800, base + 3 * 3600 + 7, base + 40 * 86400):
        assert hashes(book, t) == {s: rebuilt.snapshot(s, t).to_redis_hash() for s in book.scopes()}
        assert series_hashes(book, t) == {
            s: rebuilt.series(s, t).to_redis_hash() for s in book.scopes()
        }
    # Moving every contribution out leaves nothing anywhere.
    for f in last.values():
        book.move(f, None)
    end = base + 40 * 86400
    empty = FigureBook().snapshot(CITY, end).to_redis_hash()
    assert all(book.snapshot(s, end).to_redis_hash() == empty for s in book.scopes())


def test_a_rebuild_with_a_clock_and_a_pin_reads_as_the_moves_do_over_a_long_history() -> None:
    # A history of 120 days, longer than the hour buckets are kept (32 days): the rebuild
    # keeps less, and must still give every figure, series and pinned hour the moves give.
    rng = random.Random(11)
    base = vn(2025, 10, 1, 0, 20)
    facts_list = [random_facts(rng, base - rng.randint(0, 80) * 86400) for _ in range(1200)]
    pin = base - 60 * 86400  # the spike alert keeps the hours from here on
    moved = FigureBook()
    moved.keep_hours_from(pin)
    for f in facts_list:
        moved.move(None, f)
    rebuilt = FigureBook()
    rebuilt.rebuild(facts_list, now=base, keep_hours_from=pin)
    assert rebuilt.dirty_scopes() == set(rebuilt.scopes()) == set(moved.scopes())
    for t in (base, base + 1800, base + 3 * 3600 + 7, base + 40 * 86400):
        assert hashes(rebuilt, t) == hashes(moved, t)
        assert series_hashes(rebuilt, t) == series_hashes(moved, t)
    assert rebuilt.overdue_between(pin, base) == moved.overdue_between(pin, base)


def test_a_rebuild_with_a_clock_keeps_only_the_recent_instants_fine_grained() -> None:
    rng = random.Random(5)
    base = vn(2025, 10, 1, 0, 20)
    facts_list = [random_facts(rng, base - rng.randint(0, 80) * 86400) for _ in range(800)]
    rebuilt = FigureBook(retention=4 * 3600)
    rebuilt.rebuild(facts_list, now=base)
    floor = (base - 4 * 3600) // 3600 * 3600
    kept = len(rebuilt.fine_instants())
    # Every instant at or after the floor, in each of the dossier's 4 scopes; none older.
    recent = sum(
        4
        for f in facts_list
        if f is not None
        for x in (f.received_at, f.resolved_at, f.became_overdue_at)
        if x is not None and x >= floor
    )
    assert kept == recent
    assert all(x >= floor for x in rebuilt.fine_instants())


def test_dirty_scopes_follow_moves() -> None:
    book = FigureBook()
    f = facts(vn(2025, 10, 1, 8))
    book.move(None, f)
    assert book.dirty_scopes() == set(SCOPES)
    book.clear_dirty()
    book.move(f, f)
    assert book.dirty_scopes() == set()
    moved = f._replace(scopes=("agency:X", "level:commune", "field:land", CITY))
    book.move(f, moved)
    assert book.dirty_scopes() == {*SCOPES, *moved.scopes}
    assert book.snapshot("agency:SO-YTE", vn(2025, 10, 2)).windows["ytd"].received_total == 0
    assert book.snapshot("agency:X", vn(2025, 10, 2)).windows["ytd"].received_total == 1


def test_an_unknown_scope_has_zero_figures() -> None:
    snap = FigureBook().snapshot("agency:NONE", vn(2025, 10, 1)).to_redis_hash()
    assert set(snap) == set(SNAPSHOT_FIELDS)
    assert (
        snap["open_now"] == "0" and snap["ytd.on_time_rate"] == "" and snap["1h.online_ratio"] == ""
    )


def test_a_clock_far_behind_the_latest_one_is_refused() -> None:
    book = FigureBook()
    book.move(None, facts(vn(2025, 10, 1, 8)))
    t = vn(2025, 10, 2, 12)
    book.snapshot(CITY, t)
    book.snapshot(CITY, t - 2 * 3600)  # within retention - 2 hours
    with pytest.raises(ClockTooOldError):
        book.snapshot(CITY, t - 5 * 3600)
    with pytest.raises(ValueError):
        FigureBook(retention=3600)


# -- ratios and the hash ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (None, ""),
        (Fraction(2, 3), "0.666667"),
        (Fraction(1, 3), "0.333333"),
        (Fraction(1), "1.000000"),
        (Fraction(0), "0.000000"),
        (Fraction(1, 2_000_000), "0.000001"),  # half rounds up
        (Fraction(1, 2_000_001), "0.000000"),
    ],
)
def test_ratio_text(ratio: Fraction | None, text: str) -> None:
    assert ratio_text(ratio) == text
    if ratio is not None:
        # Not in lowest terms, as counts are: the same text.
        assert quotient_text(ratio.numerator * 6, ratio.denominator * 6) == text


@pytest.mark.parametrize("scale", [1, 7, 1_000_003])
def test_quotient_text_is_the_ratio_text_of_the_quotient(scale: int) -> None:
    rng = random.Random(scale)
    assert quotient_text(0, 0) == quotient_text(5, 0) == ""
    for _ in range(2000):
        den = rng.randint(1, 3_000_000)
        num = rng.randint(0, den)
        assert quotient_text(num * scale, den * scale) == ratio_text(Fraction(num, den))


def test_the_hash_has_every_field_and_the_ratios() -> None:
    t = vn(2025, 10, 1, 12)
    book = FigureBook()
    book.move(None, facts(t - 60, channel=ChannelKind.ONLINE_FULL))
    book.move(None, facts(t - 60, channel=ChannelKind.ONLINE_PARTIAL))
    book.move(None, facts(t - 60, channel=ChannelKind.IN_PERSON))
    flat = book.snapshot(CITY, t).to_redis_hash()
    assert list(flat) == list(SNAPSHOT_FIELDS)
    assert flat["1h.received_total"] == "3"
    assert flat["1h.online_ratio"] == "0.666667" and flat["24h.full_online_ratio"] == "0.333333"
    assert flat["ytd.on_time_rate"] == "1.000000"  # three open, not yet due
    assert all(f"{w}.{m}" in flat for w in WINDOWS for m in COUNT_METRICS)


# -- against the brute-force reference --------------------------------------------------

AGENCIES = [
    ("SO-YTE", "city"),
    ("SO-TP", "city"),
    ("CA-TP", "city"),
    ("11311", "commune"),
    ("11320", "commune"),
]
FIELDS = ["health", "justice", "land", "civil_status", "business"]
MODES = [("in_person", None), ("online", "full"), ("online", "partial"), ("post", None)]
CLOCKS = [
    vn(2025, 9, 15, 10, 0, 17),
    vn(2025, 9, 30, 23, 59, 59),
    vn(2025, 10, 1, 0, 30),
    vn(2025, 10, 1, 8, 0, 0),
    vn(2025, 10, 6, 13, 37, 42),
    vn(2025, 10, 9, 0, 20),  # day limits fall due at midnight
    vn(2025, 10, 9, 15, 0, 1),
    vn(2025, 10, 20, 9, 5),
    vn(2025, 11, 30, 16, 59, 59),
    vn(2026, 1, 1, 0, 0, 0),
]


def stray_moves(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """Transfers (half of them to another agency) and apology slips, carrying any status
    the contract allows them (2, 4, 5 or 6): the dossier's status must not follow it."""
    moves: list[tuple[str, dict[str, Any]]] = []
    for _ in range(rng.randint(0, 2)):
        kind = rng.choice(["transferred", "apology_issued"])
        extra: dict[str, Any] = {"status": rng.choice([2, 4, 5, 6])}
        if kind == "transferred" and rng.random() < 0.5:
            extra["move_to"] = rng.choice(AGENCIES)
        moves.append((kind, extra))
    return moves


def random_lifecycle(rng: random.Random, n: int, *, stray: bool = False) -> list[DossierEvent]:
    """One dossier's events: intake, a middle of pauses, fees and transfers, an ending.

    `stray` adds `stray_moves` in every open status (2, 4, 5, 6) and desks whose clocks run
    up to 6 hours behind the dossier's latest event.
    """
    agency, level = rng.choice(AGENCIES)
    channel, mode = rng.choice(MODES)
    common = {
        "dossier_id": f"D-{n:05d}",
        "agency": {"code": agency, "level": level},
        "procedure": {"code": "1.000001", "field": rng.choice(FIELDS)},
        "channel": channel,
        "online_mode": mode,
    }
    if rng.random() < 0.5:
        at = datetime.fromtimestamp(rng.choice(CLOCKS) + rng.randint(-3 * 3600, 3600), VN_TZ)
    else:
        at = datetime(2025, 9, 10, tzinfo=VN_TZ) + timedelta(seconds=rng.randint(0, 80 * 86400))
    steps: list[tuple[str, dict[str, Any]]] = []
    if rng.random() < 0.2:
        steps.append(("submitted", {}))
    if rng.random() < 0.05:
        steps.append(("refused", {}))
    else:
        unit = rng.choice(["working_days", "calendar_days", "hours"])
        value = rng.randint(4, 40) if unit == "hours" else rng.randint(1, 12)
        ahead = timedelta(hours=value) if unit == "hours" else timedelta(days=value)
        steps.append(("accepted", {"time_limit": {"value": value, "unit": unit}, "ahead": ahead}))
        if stray:
            steps += stray_moves(rng)
        for _ in range(rng.randint(0, 3)):
            kind = rng.choice(["processing", "transferred", "apology_issued", "supplement", "fee"])
            if kind == "supplement":
                steps.append(("supplement_requested", {}))
                if stray:
                    steps += stray_moves(rng)
                steps.append(("supplement_received", {"clock": rng.choice(["resume", "restart"])}))
            elif kind == "fee":
                steps.append(("fee_requested", {}))
                if stray:
                    steps += stray_moves(rng)
                steps.append(("fee_paid", {}))
            else:
                steps.append((kind, {}))
        ending = rng.choice(
            ["open", "open", "resolved", "resolved", "returned", "withdrawn", "stopped", "paused"]
        )
        if ending == "paused":
            steps.append(("supplement_requested", {}))
            if stray:
                steps += stray_moves(rng)
            if rng.random() < 0.5:
                steps.append(("withdrawn", {}))
        elif ending == "returned":
            steps += [("resolved", {}), ("returned", {})]
        elif ending != "open":
            steps.append((ending, {}))
    events = []
    for seq, (step, extra) in enumerate(steps, start=1):
        ahead = extra.pop("ahead", None)
        move = extra.pop("move_to", None)
        if move is not None:  # this event and the later ones name the new agency
            common["agency"] = {"code": move[0], "level": move[1]}
        kw = dict(common)
        if ahead is not None:
            kw["appointment_at"] = (at + ahead).isoformat()
        kw.update(extra)
        when = at
        if stray and seq > 1 and rng.random() < 0.1:
            when = at - timedelta(seconds=rng.randint(60, 6 * 3600))  # a desk clock behind
        events.append(event(step, sequence=seq, at=when, **kw))
        at += timedelta(
            seconds=rng.choice(
                [rng.randint(1, 3600), rng.randint(3600, 86400), rng.randint(86400, 12 * 86400)]
            )
        )
    return events


def random_events(
    seed: int, dossiers: int, *, stray: bool = False
) -> tuple[list[DossierEvent], list[DossierEvent]]:
    """(events in a delivery order with duplicates and local reordering, events in time order)."""
    rng = random.Random(seed)
    clean = [e for n in range(dossiers) for e in random_lifecycle(rng, n, stray=stray)]
    clean.sort(key=lambda e: e.occurred_at)
    delivered = list(clean)
    for _ in range(len(clean) // 10):
        delivered.insert(rng.randrange(len(delivered) + 1), rng.choice(clean))
    for i in range(0, len(delivered) - 1, 3):  # swap neighbours: sequences arrive out of order
        if rng.random() < 0.3:
            delivered[i], delivered[i + 1] = delivered[i + 1], delivered[i]
    return delivered, clean


@pytest.fixture(scope="module")
def generated() -> tuple[list[DossierEvent], list[DossierEvent]]:
    return random_events(seed=2025, dossiers=300)


@pytest.fixture(scope="module")
def generated_stray() -> tuple[list[DossierEvent], list[DossierEvent]]:
    return random_events(seed=766, dossiers=300, stray=True)


def test_the_book_equals_the_reference_at_every_clock(
    generated: tuple[list[DossierEvent], list[DossierEvent]],
) -> None:
    delivered, _ = generated
    book, states = book_of(delivered)
    # Also clocks on exact instants: an event's second, a due instant, a near-due instant.
    rng = random.Random(3)
    exact = [epoch_floor(e.occurred_at) for e in rng.sample(delivered, 4)]
    for f in (dossier_facts(s, CAL) for s in rng.sample(list(states.values()), 60)):
        if f is not None and f.near_at is not None and f.due_at is not None:
            exact += [f.due_at, f.near_at]
    for t in sorted({*CLOCKS, *exact[:12]}):
        expected = reference_snapshots(delivered, t)
        assert sorted(expected) == book.scopes()
        assert hashes(book, t) == expected
        assert series_hashes(book, t) == reference_series(delivered, t)


def test_the_book_equals_the_reference_with_transfers_apologies_and_clocks_behind(
    generated_stray: tuple[list[DossierEvent], list[DossierEvent]],
) -> None:
    """Transfers and apology slips never change the status, whatever status they carry; a
    transfer moves the dossier's every figure to its new agency; late desk clocks clamp."""
    delivered, _ = generated_stray
    kinds = {e.event_type.value for e in delivered}
    assert {"transferred", "apology_issued", "supplement_received", "fee_paid"} <= kinds
    book, _ = book_of(delivered)
    for t in CLOCKS:
        expected = reference_snapshots(delivered, t)
        got = hashes(book, t)
        empty = FigureBook().snapshot(CITY, t).to_redis_hash()
        # A scope every dossier has left (transferred away) keeps only zero figures.
        assert {s: h for s, h in got.items() if s in expected or h != empty} == expected
        series = reference_series(delivered, t)
        assert {s: h for s, h in series_hashes(book, t).items() if s in series} == series


def test_the_book_equals_the_reference_when_fed_live(
    generated: tuple[list[DossierEvent], list[DossierEvent]],
) -> None:
    """Events arrive in time order while the clock is read in between, as in the worker."""
    _, clean = generated
    book, states = FigureBook(), dict[str, DossierState]()
    clocks = iter(CLOCKS)
    t = next(clocks, None)
    seen: list[DossierEvent] = []
    for ev in clean:
        while t is not None and ev.occurred_at.timestamp() > t:
            assert hashes(book, t) == reference_snapshots(seen, t)
            t = next(clocks, None)
        feed(book, states, ev)
        seen.append(ev)
        if len(seen) % 97 == 0 and t is not None:
            book.snapshot(CITY, epoch_floor(ev.occurred_at))  # lifts the fine floor meanwhile
    if t is not None:
        assert hashes(book, t) == reference_snapshots(seen, t)


def test_reads_between_transfers_do_not_change_what_the_book_reads(
    generated_stray: tuple[list[DossierEvent], list[DossierEvent]],
) -> None:
    """Read between events as the worker's rounds do, while transfers move dossiers
    received days before into other scopes: a book read all along reads what a book
    made afresh from the same dossiers reads (and, at the end, what the reference does)."""
    _, clean = generated_stray
    book, states = FigureBook(), dict[str, DossierState]()

    def fresh_hashes(t: int) -> dict[str, dict[str, str]]:
        fresh = FigureBook()
        for state in states.values():
            fresh.move(None, dossier_facts(state, CAL))
        return hashes(fresh, t)

    def nonzero(got: dict[str, dict[str, str]], t: int) -> dict[str, dict[str, str]]:
        empty = FigureBook().snapshot(CITY, t).to_redis_hash()
        return {s: h for s, h in got.items() if h != empty}

    transfers_checked, clock = 0, 0
    for i, ev in enumerate(clean):
        feed(book, states, ev)
        clock = max(clock, epoch_ceil(ev.occurred_at))
        if ev.event_type.value == "transferred" or i % 150 == 0:
            assert nonzero(hashes(book, clock), clock) == nonzero(fresh_hashes(clock), clock)
            transfers_checked += ev.event_type.value == "transferred"
    assert transfers_checked >= 3
    end = clock + 3600
    expected = reference_snapshots(clean, end)
    assert {s: h for s, h in hashes(book, end).items() if s in expected} == expected


def test_the_reference_ignores_duplicates_and_order(
    generated: tuple[list[DossierEvent], list[DossierEvent]],
) -> None:
    delivered, clean = generated
    assert reference_snapshots(delivered, CLOCKS[5]) == reference_snapshots(clean, CLOCKS[5])
    _, states = book_of(clean)
    assert sum(1 for s in states.values() if s.pending) == 0


def test_scopes_changed_between_finds_every_change_with_no_event(
    generated: tuple[list[DossierEvent], list[DossierEvent]],
) -> None:
    delivered, _ = generated
    book, _ = book_of(delivered)
    rng = random.Random(11)
    t0 = vn(2025, 10, 6, 23, 58)
    checked = 0
    for step in [
        1,
        59,
        60,
        61,
        3600,
        86400,
        3 * 86400 + 17,
        *(rng.randint(1, 7200) for _ in range(6)),
    ]:
        t1 = t0 + step
        before, before_series = hashes(book, t0), series_hashes(book, t0)
        after, after_series = hashes(book, t1), series_hashes(book, t1)
        changed = book.scopes_changed_between(t0, t1)
        assert changed == book.scopes_changed_between(t1, t0)
        for scope in book.scopes():
            differs = before[scope] != after[scope] or before_series[scope] != after_series[scope]
            if differs:
                assert scope in changed, (t0, t1, scope)
            checked += differs
        t0 = t1
    assert checked > 0
    assert book.scopes_changed_between(t0, t0) == set()


def test_a_receipt_leaving_the_daily_series_is_a_change_with_no_event() -> None:
    # Received and resolved on 10 April: at the midnight 90 days on, the daily series
    # (the last 90 Vietnam days) no longer holds that day, and no window of July changes.
    book = FigureBook()
    received = vn(2025, 4, 10, 9)
    book.move(None, facts(received, open=False, resolved_at=received + 3600, resolved_on_time=True))
    leaves = vn(2025, 4, 10) + 90 * 86400
    t0, t1 = leaves - 60, leaves + 60
    before, after = hashes(book, t0), hashes(book, t1)
    assert before == after  # the snapshot: every window the same
    assert series_hashes(book, t0) != series_hashes(book, t1)
    assert book.scopes_changed_between(t0, t1) == set(SCOPES)


# -- what the alert history reads: overdue hours, near-due at an instant, receipts ---------

HOUR_S = 3600
IN_PERSON = {"channel": "in_person", "online_mode": None}
COMMUNE = {
    "agency": {"code": "11311", "level": "commune"},
    "procedure": {"code": "2", "field": "land"},
}


def alert_inputs_book() -> FigureBook:
    """Five dossiers, their due instants by the rules (day limits: 00:00 after the
    appointment date; hour limits: the appointment instant):
    A  SO-YTE online full, accepted Wed 1 Oct 08:00, appointment 8 Oct: due 9 Oct 00:00, open.
    B  11311 (commune) in person, 1 Oct 09:30, due 9 Oct 00:00, resolved late 10 Oct 10:00.
    C  SO-YTE online partial, 1 Oct 10:00, due 9 Oct 00:00, resolved on time 3 Oct.
    D  SO-YTE in person, 4 working hours from Mon 6 Oct 09:00: due 13:00, near due from
       12:00 (a quarter of the time before), open.
    E  SO-YTE by post, Thu 2 Oct 14:00, appointment 9 Oct: due 10 Oct 00:00, open.
    """

    def at(*a: int) -> datetime:
        return datetime(*a, tzinfo=VN_TZ)

    events = [
        event("accepted", dossier_id="A"),
        event("accepted", dossier_id="B", at=at(2025, 10, 1, 9, 30), **COMMUNE, **IN_PERSON),
        event(
            "resolved", dossier_id="B", sequence=2, at=at(2025, 10, 10, 10), **COMMUNE, **IN_PERSON
        ),
        event("accepted", dossier_id="C", at=at(2025, 10, 1, 10), online_mode="partial"),
        event("resolved", dossier_id="C", sequence=2, at=at(2025, 10, 3), online_mode="partial"),
        event(
            "accepted",
            dossier_id="D",
            at=at(2025, 10, 6, 9),
            time_limit={"value": 4, "unit": "hours"},
            appointment_at=at(2025, 10, 6, 13).isoformat(),
            **IN_PERSON,
        ),
        event("accepted", dossier_id="E", at=at(2025, 10, 2, 14), channel="post", online_mode=None),
    ]
    return book_of(events)[0]


def test_overdue_between_gives_each_scopes_became_overdue_hours_without_fields() -> None:
    book = alert_inputs_book()
    d_due, day_due = vn(2025, 10, 6, 13), vn(2025, 10, 9)
    assert book.overdue_between(vn(2025, 10, 6), vn(2025, 10, 10)) == {
        "agency:SO-YTE": {d_due: 1, day_due: 1},  # D and A; C was resolved on time
        "agency:11311": {day_due: 1},  # B, resolved after it fell due
        "level:city": {d_due: 1, day_due: 1},
        "level:commune": {day_due: 1},
        "city": {d_due: 1, day_due: 2},
    }
    # [h0, h1): E's due instant 10 Oct 00:00 is the end, left out, and the next start.
    assert book.overdue_between(day_due + HOUR_S, vn(2025, 10, 10)) == {}
    assert book.overdue_between(vn(2025, 10, 10), vn(2025, 10, 10, 1)) == {
        "agency:SO-YTE": {vn(2025, 10, 10): 1},
        "level:city": {vn(2025, 10, 10): 1},
        "city": {vn(2025, 10, 10): 1},
    }
    assert book.overdue_between(vn(2025, 10, 6, 14), vn(2025, 10, 8, 23)) == {}


@pytest.mark.parametrize(
    ("t", "yte", "city"),
    [
        (vn(2025, 10, 6, 11, 59, 59), 0, 0),
        (vn(2025, 10, 6, 12), 1, 1),  # D near due from 12:00
        (vn(2025, 10, 6, 12, 59, 59), 1, 1),
        (vn(2025, 10, 6, 13), 0, 0),  # D overdue: no longer near due
        (vn(2025, 10, 8, 10), 1, 1),  # A, from 00:00 of its appointment day
        (vn(2025, 10, 9, 10), 1, 1),  # E (A is overdue now)
        (vn(2025, 10, 10), 0, 0),
    ],
)
def test_near_due_at_counts_open_dossiers_between_near_and_due(t: int, yte: int, city: int) -> None:
    book = alert_inputs_book()
    asked = ["agency:SO-YTE", "agency:11311", "agency:NOWHERE", CITY]
    # B is resolved: never near due in its agency; an agency without dossiers is left out.
    assert book.near_due_at(asked, t) == {"agency:SO-YTE": yte, "agency:11311": 0, CITY: city}


@pytest.mark.parametrize(
    ("scope", "window", "t", "expected"),
    [
        ("agency:SO-YTE", "24h", vn(2025, 10, 1, 23), (2, 2)),  # A full, C partial
        ("agency:SO-YTE", "7d", vn(2025, 10, 6, 10), (4, 2)),  # and E (post), D (in person)
        (CITY, "mtd", vn(2025, 10, 6, 10), (5, 2)),  # and B (in person)
        ("agency:SO-YTE", "1h", vn(2025, 10, 6, 9), (1, 0)),  # D, at its very second
        ("agency:SO-YTE", "1h", vn(2025, 10, 6, 8, 59, 59), (0, 0)),
        (CITY, "mtd", vn(2025, 9, 30, 23, 59, 59), (0, 0)),
        ("agency:NOWHERE", "qtd", vn(2025, 10, 6, 10), (0, 0)),
    ],
)
def test_received_in_counts_receipts_and_online_ones_over_a_window(
    scope: str, window: str, t: int, expected: tuple[int, int]
) -> None:
    assert alert_inputs_book().received_in(scope, window, t) == expected


def test_alert_inputs_agree_with_the_reference(
    generated: tuple[list[DossierEvent], list[DossierEvent]],
) -> None:
    delivered, _ = generated
    book, _ = book_of(delivered)
    facts = all_facts(delivered)
    # overdue_between: the reference's became-overdue instants per scope and hour bucket.
    h0, h1 = vn(2025, 9, 20), vn(2025, 10, 25)
    expected: dict[str, dict[int, int]] = {}
    for f in facts:
        if f.became is not None and h0 <= f.became < h1:
            for scope in f.scopes:
                if not scope.startswith("field:"):
                    hours = expected.setdefault(scope, {})
                    hour = f.became - f.became % 3600
                    hours[hour] = hours.get(hour, 0) + 1
    assert sum(expected[CITY].values()) > 20
    assert book.overdue_between(h0, h1) == expected
    agencies = [s for s in book.scopes() if s.startswith("agency:")]
    for t in CLOCKS:  # ascending: received_in moves the book's clock forward
        ref = snapshots_from_facts(facts, t)
        assert book.near_due_at(agencies, t) == {
            s: int(ref[s]["near_due_now"]) for s in agencies if s in ref
        }
        for scope in (*agencies, CITY):
            for window in ("24h", "mtd", "qtd"):
                fields = ref.get(scope)
                want = (0, 0)
                if fields is not None:
                    want = (
                        int(fields[f"{window}.received_total"]),
                        int(fields[f"{window}.received_online_full"])
                        + int(fields[f"{window}.received_online_partial"]),
                    )
                assert book.received_in(scope, window, t) == want, (scope, window, t)
