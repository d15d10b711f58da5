"""Property-based tests (Hypothesis) of the pure domain core: lifecycle, calendar, figures.

Every expected value comes from an independent statement of the rule (the contract in
docs/event-contract.md and the module docstrings of domain/), restated in plain code here
or in `strategies.py`; the code under test is only ever compared against such
statements or against itself under a change that the rules say cannot matter (order,
resends, UTC offsets). The runs are derandomized, so CI sees the same examples each time.
"""

from __future__ import annotations

import calendar as _cal
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from domain.calendar import CalendarRules, WorkingCalendar
from domain.figures import FigureBook, dossier_facts
from domain.lifecycle import DossierState, Lifecycle, Outcome, calendar_resume
from schemas.enums import TimeUnit
from schemas.events import DossierEvent
from tests.factories import event
from tests.unit.domain.strategies import (
    STYLES,
    VIETNAM,
    DossierPlan,
    Expected,
    Population,
    bad_step,
    deliveries,
    expected_state,
    month_end_dates,
    plans,
    populations,
    props,
    stamp,
    state_fields,
    vn_midnight_after,
)

CAL = WorkingCalendar()  # built once for the module
RESTART_CAL = WorkingCalendar(rules=CalendarRules(supplement_policy="restart"))
LIFE = Lifecycle(calendar_resume(CAL))

# -- helpers ----------------------------------------------------------------------------


def apply_all(dossier_id: str, events: Iterable[DossierEvent]) -> DossierState:
    state = DossierState(dossier_id)
    for e in events:
        LIFE.apply(state, e)
    return state


def assert_follows_rules(state: DossierState, exp: Expected) -> None:
    """The state agrees with the independent model on every field the model decides."""
    got_channel = None if state.channel is None else state.channel.value
    assert state.status == exp.status
    assert state.last_seq == exp.last_seq
    assert (got_channel, state.agency, state.level, state.field) == (
        exp.channel,
        exp.agency,
        exp.level,
        exp.field,
    )
    assert state.received_at == exp.received_at
    assert state.appointment_at == exp.appointment_at
    assert state.paused_at == exp.paused_at
    assert state.resolved_at == exp.resolved_at
    assert state.closed_at == exp.closed_at
    assert state.supplements == exp.supplements
    assert state.apology_at == exp.apology_at
    if exp.due_known:
        assert state.due_at == exp.due_at


def model_of(plan: DossierPlan, events: Sequence[DossierEvent]) -> Expected:
    return expected_state(events, plan.channel[2])


def scopes_of(exp: Expected) -> tuple[str, ...]:
    """The scopes a received dossier counts in, from the figures docstring."""
    return (f"agency:{exp.agency}", f"level:{exp.level}", f"field:{exp.field}", "city")


# -- 1. lifecycle -----------------------------------------------------------------------


@props(200)
@given(plan=plans(max_steps=14), style=st.sampled_from(STYLES))
def test_in_order_application_follows_the_rules(plan: DossierPlan, style: str) -> None:
    """Applied once in sequence order, a valid history gives the state the contract states,
    whatever UTC offset its instants are stamped with.

    In particular transfers and apology slips never change the status, whatever status
    code they carry, and every event of a valid history is applied, none rejected.
    """
    events = plan.events(style)
    state = DossierState(plan.dossier_id)
    for e in events:
        result = LIFE.apply(state, e)
        assert result.outcome is Outcome.APPLIED and result.rejected == ()
    assert_follows_rules(state, model_of(plan, events))
    assert state.pending == {}


@props(200)
@given(plan=plans(max_steps=14), data=st.data())
def test_any_order_with_resends_gives_the_in_order_state(
    plan: DossierPlan, data: st.DataObject
) -> None:
    """Any permutation of a history, with the same event objects resent anywhere in it,
    leaves exactly the state that applying the events once in sequence order leaves."""
    events = plan.events()
    delivery = data.draw(deliveries(events), label="delivery")
    in_order = apply_all(plan.dossier_id, events)
    shuffled = apply_all(plan.dossier_id, delivery)
    assert state_fields(shuffled) == state_fields(in_order)
    assert shuffled.pending == {}


def _expected_outcome(seq: int, arrived: set[int], bad: int | None) -> Outcome:
    """The outcome of offering sequence `seq` when `arrived` were offered before.

    An old number is a duplicate; a number whose predecessors have not all arrived waits;
    otherwise it is applied, or rejected when it is the impossible event.
    """
    if seq in arrived:
        return Outcome.DUPLICATE
    if any(s not in arrived for s in range(1, seq)):
        return Outcome.PENDING
    return Outcome.REJECTED if seq == bad else Outcome.APPLIED


def _count_offers(
    dossier_id: str, delivery: Sequence[DossierEvent], bad: int | None
) -> tuple[DossierState, Counter[Outcome], list[int], list[int]]:
    state = DossierState(dossier_id)
    arrived: set[int] = set()
    outcomes: Counter[Outcome] = Counter()
    applied: list[int] = []
    rejected: list[int] = []
    for e in delivery:
        expected = _expected_outcome(e.sequence, arrived, bad)
        arrived.add(e.sequence)
        result = LIFE.apply(state, e)
        assert result.outcome is expected, (e.sequence, sorted(arrived))
        outcomes[result.outcome] += 1
        applied += [a.sequence for a in result.applied]
        rejected += [r.sequence for r, _ in result.rejected]
    return state, outcomes, applied, rejected


@props(200)
@given(plan=plans(max_steps=14), data=st.data())
def test_every_offer_is_counted_exactly_once(plan: DossierPlan, data: st.DataObject) -> None:
    """Each offer ends as applied, duplicate, pending or rejected, as the sequence rules say.

    offered = applied + pending + duplicate outcomes; duplicates = offered - distinct;
    every distinct event is applied exactly once (pending ones when their gap fills),
    in sequence order; nothing stays pending once every sequence has arrived.
    """
    events = plan.events()
    delivery = data.draw(deliveries(events), label="delivery")
    state, outcomes, applied, rejected = _count_offers(plan.dossier_id, delivery, None)
    n = len(events)
    assert sum(outcomes.values()) == len(delivery)
    assert outcomes[Outcome.DUPLICATE] == len(delivery) - n
    assert outcomes[Outcome.APPLIED] + outcomes[Outcome.PENDING] == n
    assert outcomes[Outcome.REJECTED] == 0 and rejected == []
    assert applied == list(range(1, n + 1))
    assert state.pending == {} and state.last_seq == n


@props(200)
@given(data=st.data())
def test_an_impossible_event_is_rejected_once_and_stalls_nothing(data: st.DataObject) -> None:
    """One impossible event in a history, in any delivery with resends: it is rejected
    exactly once, consumes its sequence number, every other event is applied exactly
    once, offered = applied + pending + duplicate + rejected outcomes, and the final
    state is the state of the history without it."""
    clean = data.draw(plans(max_steps=10), label="plan")
    plan, bad = data.draw(bad_step(clean), label="with an impossible event")
    events = plan.events()
    delivery = data.draw(deliveries(events), label="delivery")
    state, outcomes, applied, rejected = _count_offers(plan.dossier_id, delivery, bad)
    n = len(events)
    assert rejected == [bad]
    assert sorted(applied) == [s for s in range(1, n + 1) if s != bad]
    assert sum(outcomes.values()) == len(delivery)
    assert outcomes[Outcome.DUPLICATE] == len(delivery) - n
    assert state.pending == {} and state.last_seq == n
    exp = model_of(clean, clean.events())
    assert_follows_rules(state, replace(exp, last_seq=n))


class LifecycleMachine(RuleBasedStateMachine):
    """A dossier fed its events one at a time: the next one, an old one again, or a future
    one early. Invariants after every step:

    - last_seq never decreases;
    - every pending key is greater than last_seq + 1 (the gap is never pending itself);
    - last_seq is the longest run 1..k of sequence numbers that have all been offered;
    - pending holds exactly the offered events beyond last_seq, as the very objects sent;
    - the state is the model's state of the first last_seq events;
    - offers = applied + pending + duplicate outcomes, duplicates = offers - distinct
      offered, and every event applied so far was applied exactly once, in order;
    - once every sequence has been offered, nothing is pending and last_seq = n.
    Each offer's outcome is also checked against the sequence rules as it happens.
    """

    def __init__(self) -> None:
        super().__init__()
        self.plan: DossierPlan | None = None
        self.events: list[DossierEvent] = []
        self.state = DossierState("none")
        self.sent: set[int] = set()
        self.offers = 0
        self.outcomes: Counter[Outcome] = Counter()
        self.applied: list[int] = []
        self.highest_last_seq = 0

    @initialize(plan=plans(max_steps=14))
    def load(self, plan: DossierPlan) -> None:
        self.plan = plan
        self.events = plan.events()
        self.state = DossierState(plan.dossier_id)

    def _offer(self, seq: int) -> None:
        expected = _expected_outcome(seq, self.sent, None)
        before = self.state.last_seq
        self.sent.add(seq)
        self.offers += 1
        result = LIFE.apply(self.state, self.events[seq - 1])
        assert result.outcome is expected
        assert result.rejected == ()
        self.outcomes[result.outcome] += 1
        self.applied += [e.sequence for e in result.applied]
        assert [e.sequence for e in result.applied] == list(
            range(before + 1, self.state.last_seq + 1)
        )

    @rule()
    def send_next(self) -> None:
        """Send the next expected event (nothing once every event is applied)."""
        if self.state.last_seq < len(self.events):
            self._offer(self.state.last_seq + 1)

    @rule(data=st.data())
    def resend_old(self, data: st.DataObject) -> None:
        """Send again the very same object of an event already sent (nothing if none was)."""
        if self.sent:
            self._offer(data.draw(st.sampled_from(sorted(self.sent)), label="resend"))

    @rule(data=st.data())
    def send_future(self, data: st.DataObject) -> None:
        """Send early an event beyond the next expected one (nothing when there is none)."""
        lo, hi = self.state.last_seq + 2, len(self.events)
        if lo <= hi:
            self._offer(data.draw(st.integers(lo, hi), label="future"))

    @invariant()
    def last_seq_never_decreases(self) -> None:
        assert self.state.last_seq >= self.highest_last_seq
        self.highest_last_seq = self.state.last_seq

    @invariant()
    def pending_is_beyond_the_gap(self) -> None:
        assert all(seq > self.state.last_seq + 1 for seq in self.state.pending)

    @invariant()
    def last_seq_is_the_offered_prefix(self) -> None:
        k = 0
        while k + 1 in self.sent:
            k += 1
        assert self.state.last_seq == k

    @invariant()
    def pending_holds_exactly_the_waiting_events(self) -> None:
        waiting = {s for s in self.sent if s > self.state.last_seq}
        assert set(self.state.pending) == waiting
        assert all(self.state.pending[s] is self.events[s - 1] for s in waiting)

    @invariant()
    def state_is_the_model_of_the_applied_prefix(self) -> None:
        if self.plan is not None:
            applied = self.events[: self.state.last_seq]
            assert_follows_rules(self.state, model_of(self.plan, applied))

    @invariant()
    def offers_are_counted_once(self) -> None:
        o = self.outcomes
        assert o[Outcome.APPLIED] + o[Outcome.PENDING] + o[Outcome.DUPLICATE] == self.offers
        assert o[Outcome.DUPLICATE] == self.offers - len(self.sent)
        assert self.applied == list(range(1, self.state.last_seq + 1))

    @invariant()
    def all_offered_means_all_applied(self) -> None:
        if self.events and len(self.sent) == len(self.events):
            assert self.state.pending == {} and self.state.last_seq == len(self.events)


TestLifecycleMachine = LifecycleMachine.TestCase
TestLifecycleMachine.settings = props(150, stateful_step_count=50)


# -- 2. calendar ------------------------------------------------------------------------
# Whether one date is a working day is the calendar's primitive (`is_working_day`, from
# the holiday tables); everything built on it is recounted here date by date.

DATES = st.dates(date(2021, 1, 1), date(2029, 12, 31))
COUNTS = st.integers(0, 60)
POSITIVE = st.integers(1, 60)
DAY_UNITS = st.sampled_from([TimeUnit.WORKING_DAYS, TimeUnit.CALENDAR_DAYS])
UNITS = st.sampled_from(list(TimeUnit))
OFFSETS = st.sampled_from([UTC, VIETNAM, timezone(timedelta(hours=-5))])
WORKDAY_START, WORKDAY_END, CUTOFF = time(8), time(17), time(17)  # CalendarRules' defaults


def _instant(d: date, seconds: int, tz: timezone) -> datetime:
    """The instant `seconds` after 00:00 Vietnam on d, expressed in the offset tz."""
    return (datetime.combine(d, time(0), tzinfo=VIETNAM) + timedelta(seconds=seconds)).astimezone(
        tz
    )


INSTANTS = st.builds(_instant, DATES, st.integers(0, 86399), OFFSETS)


def working_days_in(start: date, end: date) -> int:
    """Working days in (start, end], counted one date at a time."""
    n, d = 0, start + timedelta(days=1)
    while d <= end:
        n += CAL.is_working_day(d)
        d += timedelta(days=1)
    return n


def first_working_on_or_after(d: date) -> date:
    while not CAL.is_working_day(d):
        d += timedelta(days=1)
    return d


def receipt_date(received: datetime) -> date:
    """The docstring's effective receipt date: the local date, or the next working day
    when that date is a day off or the local time is at or after the 17:00 cut-off."""
    local = received.astimezone(VIETNAM)
    if CAL.is_working_day(local.date()) and local.time() < CUTOFF:
        return local.date()
    return first_working_on_or_after(local.date() + timedelta(days=1))


@props(200)
@given(received=INSTANTS, value=COUNTS, unit=DAY_UNITS)
def test_a_day_limit_is_due_after_a_working_appointment_day(
    received: datetime, value: int, unit: TimeUnit
) -> None:
    """For day limits the due instant is 00:00 (Vietnam) after the appointment date, and
    that date is a working day: the value-th working day after the receipt date, or the
    receipt date plus value days moved to the next working day (calendar days)."""
    due = CAL.due_at(received, value, unit)
    appointment = CAL.appointment_date(due)
    assert CAL.is_working_day(appointment)
    assert due == vn_midnight_after(datetime.combine(appointment, time(12), tzinfo=VIETNAM))
    start = receipt_date(received)
    if unit is TimeUnit.WORKING_DAYS:
        assert working_days_in(start, appointment) == value
        if value == 0:
            assert appointment == start
    else:
        assert appointment == first_working_on_or_after(start + timedelta(days=value))


@props(150)
@given(received=INSTANTS, value=st.integers(1, 60))
def test_an_hour_limit_is_due_inside_working_hours(received: datetime, value: int) -> None:
    """An hour limit of at least one hour falls due within (08:00, 17:00] of a working day,
    at or after the receipt."""
    due = CAL.due_at(received, value, TimeUnit.HOURS).astimezone(VIETNAM)
    assert CAL.is_working_day(due.date())
    assert WORKDAY_START < due.time() <= WORKDAY_END
    assert due > received


@props(200)
@given(d=DATES, n=POSITIVE, m=POSITIVE)
def test_adding_working_days_composes(d: date, n: int, m: int) -> None:
    """Adding n working days and then m is adding n + m (n, m >= 1)."""
    assert CAL.add_working_days(CAL.add_working_days(d, n), m) == CAL.add_working_days(d, n + m)


@props(200)
@given(d=DATES, n=COUNTS)
def test_working_days_between_counts_what_was_added(d: date, n: int) -> None:
    """Between d and d + n working days lie exactly n working days (n >= 1; for n = 0 the
    result is d itself on a working day, else the next working day, 1 away), and
    `working_days_between` agrees with counting the working dates one by one."""
    end = CAL.add_working_days(d, n)
    expected = n if n >= 1 or CAL.is_working_day(d) else 1
    assert CAL.working_days_between(d, end) == expected
    assert CAL.working_days_between(d, end) == working_days_in(d, end)
    assert CAL.working_days_between(end, d) == -expected


@props(200)
@given(
    received=INSTANTS,
    value=COUNTS,
    unit=UNITS,
    pause_after=st.integers(0, 20 * 86400),
    pause_for=st.integers(0, 30 * 86400),
    restart=st.booleans(),
)
def test_a_supplement_pause_never_moves_the_due_earlier(
    received: datetime,
    value: int,
    unit: TimeUnit,
    pause_after: int,
    pause_for: int,
    restart: bool,
) -> None:
    """After a pause the due instant is never earlier than before, under both policies;
    under "pause" a day-limit appointment moves on by exactly the working days in
    (paused date, resumed date] (Vietnam dates), so a same-day pause moves nothing."""
    cal = RESTART_CAL if restart else CAL
    due = cal.due_at(received, value, unit)
    paused = received + timedelta(seconds=pause_after)
    resumed = paused + timedelta(seconds=pause_for)
    moved = cal.due_after_resume(due, paused, resumed, value=value, unit=unit)
    assert moved >= due
    if not restart and unit is not TimeUnit.HOURS:
        extra = working_days_in(
            paused.astimezone(VIETNAM).date(), resumed.astimezone(VIETNAM).date()
        )
        old, new = CAL.appointment_date(due), CAL.appointment_date(moved)
        assert working_days_in(old, new) == extra
        assert CAL.is_working_day(new) and (extra > 0 or moved == due)


@props(200)
@given(received=INSTANTS, later=st.integers(0, 15 * 86400), value=COUNTS, unit=UNITS)
def test_the_due_is_monotone_in_the_receipt(
    received: datetime, later: int, value: int, unit: TimeUnit
) -> None:
    """A later receipt never gets an earlier due instant, whatever the unit."""
    after = received + timedelta(seconds=later)
    assert CAL.due_at(received, value, unit) <= CAL.due_at(after, value, unit)


# -- 3. figures -------------------------------------------------------------------------

CHANNEL_KINDS = ("in_person", "online_full", "online_partial", "post")
WINDOW_NAMES = ("1h", "24h", "7d", "30d", "mtd", "qtd", "ytd")


def epoch(dt: datetime) -> int:
    """Whole epoch seconds at or before an instant."""
    return _cal.timegm(dt.astimezone(UTC).timetuple())


def vn_epoch(y: int, m: int, d: int) -> int:
    """Epoch seconds of 00:00 in Vietnam (UTC+7) on a date."""
    return _cal.timegm((y, m, d, 0, 0, 0)) - 7 * 3600


def my_window_starts(t: int) -> dict[str, int]:
    """Window starts from the figures docstring: minute / hour buckets counted back from T's,
    and Vietnam midnight of the first day of T's month, quarter and year."""
    local = datetime.fromtimestamp(t, VIETNAM)
    quarter_month = 3 * ((local.month - 1) // 3) + 1
    return {
        "1h": (t // 60 - 59) * 60,
        "24h": (t // 3600 - 23) * 3600,
        "7d": (t // 3600 - 167) * 3600,
        "30d": (t // 3600 - 719) * 3600,
        "mtd": vn_epoch(local.year, local.month, 1),
        "qtd": vn_epoch(local.year, quarter_month, 1),
        "ytd": vn_epoch(local.year, 1, 1),
    }


def feed(events: Iterable[DossierEvent]) -> tuple[FigureBook, dict[str, DossierState]]:
    """A book fed as the worker feeds it: each event moves the dossier's facts before -> after."""
    book, states = FigureBook(), dict[str, DossierState]()
    for e in events:
        state = states.setdefault(e.dossier_id, DossierState(e.dossier_id))
        before = dossier_facts(state, CAL)
        LIFE.apply(state, e)
        book.move(before, dossier_facts(state, CAL))
    return book, states


def received_models(pop: Population) -> list[tuple[DossierPlan, Expected]]:
    """The received dossiers of a population with the model's view of each."""
    out = []
    for plan in pop.plans:
        exp = model_of(plan, plan.events())
        if exp.received_at is not None:
            out.append((plan, exp))
    return out


@pytest.mark.usefixtures("each_book")  # on every figure book
@props(100)
@given(pop=populations())
def test_the_figures_count_what_the_dossiers_say(pop: Population) -> None:
    """At a clock T after every instant, in every scope:

    - per window, each channel's count is the number of that scope's dossiers of that
      channel received in [window start, T], and the four sum to `received_total`;
    - per window, on-time + late resolutions are the resolutions in [window start, T];
    - `open_now` is the received dossiers neither resolved nor closed, counted directly;
    - a dossier counts in the scopes of the agency holding it now (a transfer moves it
      whole), so a scope it left counts nothing of it;
    - `overdue_now + not_yet_due_now == open_now`; `near_due_now <= open_now`, and
      near-due and overdue (near <= T < due vs due <= T) never overlap;
    - `ytd`, when every receipt is in T's Vietnam year: `open_now == received_total -
      resolved_on_time - resolved_late - closed` (closed counted directly).
    """
    t = pop.t
    book, _ = feed(pop.events())
    members = received_models(pop)
    # A scope a dossier has left (by a transfer) stays listed, with zero figures.
    assert {s for _, exp in members for s in scopes_of(exp)} <= set(book.scopes())
    starts = my_window_starts(t)
    for scope in book.scopes():
        mine = [(plan, exp) for plan, exp in members if scope in scopes_of(exp)]

        def inside_ytd(x: datetime | None) -> bool:
            return x is not None and epoch(x) >= starts["ytd"]

        snap = book.snapshot(scope, t)
        for w in WINDOW_NAMES:
            fig, start = snap.windows[w], starts[w]

            def inside(x: datetime | None, start: int = start) -> bool:
                return x is not None and start <= epoch(x) <= t

            for kind in CHANNEL_KINDS:
                direct = sum(1 for p, e in mine if p.channel[2] == kind and inside(e.received_at))
                assert getattr(fig, f"received_{kind}") == direct, (scope, w, kind)
            assert fig.received_total == sum(
                getattr(fig, f"received_{kind}") for kind in CHANNEL_KINDS
            )
            resolved = sum(1 for _, e in mine if inside(e.resolved_at))
            assert fig.resolved_on_time + fig.resolved_late == resolved, (scope, w)
        open_direct = sum(1 for _, e in mine if e.is_open)
        closed_direct = sum(1 for _, e in mine if e.closed_at is not None and e.resolved_at is None)
        assert snap.open_now == open_direct
        assert snap.overdue_now + snap.not_yet_due_now == snap.open_now
        assert 0 <= snap.near_due_now <= snap.open_now
        assert snap.overdue_now >= 0 and snap.near_due_now + snap.overdue_now <= snap.open_now
        if all(inside_ytd(e.received_at) for _, e in mine):
            ytd = snap.windows["ytd"]
            assert snap.open_now == (
                ytd.received_total - ytd.resolved_on_time - ytd.resolved_late - closed_direct
            )


@pytest.mark.usefixtures("each_book")  # on every figure book
@props(60)
@given(pop=populations(), data=st.data())
def test_moving_every_dossier_out_leaves_an_empty_book(
    pop: Population, data: st.DataObject
) -> None:
    """Facts moved in event by event and then moved out (`move(f, None)`) in any order leave
    every scope's snapshot and series equal to an empty book's."""
    t = pop.t
    book, states = feed(pop.events())
    order = data.draw(st.permutations(sorted(states)), label="out order")
    for dossier_id in order:
        book.move(dossier_facts(states[dossier_id], CAL), None)
    empty = FigureBook()
    empty_snapshot = empty.snapshot("city", t).to_redis_hash()
    empty_series = empty.series("city", t).to_redis_hash()
    for scope in book.scopes():
        assert book.snapshot(scope, t).to_redis_hash() == empty_snapshot, scope
        assert book.series(scope, t).to_redis_hash() == empty_series, scope


# -- 4. time zones ----------------------------------------------------------------------


def figures_of(book: FigureBook, t: int) -> dict[str, Any]:
    return {s: (book.snapshot(s, t), book.series(s, t)) for s in book.scopes()}


@pytest.mark.usefixtures("each_book")  # on every figure book
@props(40)
@given(pop=populations(max_dossiers=12))
def test_utc_offsets_of_the_stamps_change_nothing(pop: Population) -> None:
    """The same dossiers sent with instants stamped `Z`, `+00:00`, `+07:00` or `-05:00`
    (the same instants) give equal states, facts, snapshots and series (hour and
    Vietnam-day buckets alike)."""
    t = pop.t
    results = []
    for style in STYLES:
        book, states = feed(pop.events(style))
        facts = {k: dossier_facts(s, CAL) for k, s in states.items()}
        fields = {k: state_fields(s) for k, s in states.items()}
        results.append((style, figures_of(book, t), facts, fields))
    _, base_figures, base_facts, base_fields = results[0]
    for style, figures, facts, fields in results[1:]:
        assert fields == base_fields, style
        assert facts == base_facts, style
        assert figures == base_figures, style


@pytest.mark.usefixtures("each_book")  # on every figure book
@props(100)
@example(day=date(2025, 12, 31), seconds=23 * 3600 + 1800, later=0, style="Z")
@example(day=date(2025, 6, 10), seconds=23 * 3600 + 1800, later=3600, style="-05:00")
@given(
    day=st.one_of(DATES, month_end_dates()),
    seconds=st.integers(0, 86399),
    later=st.integers(0, 86399),
    style=st.sampled_from(STYLES),
)
def test_a_utc_instant_counts_in_its_vietnam_day(
    day: date, seconds: int, later: int, style: str
) -> None:
    """Vietnam is UTC+7, so an instant at or after 17:00 UTC (e.g. 23:30 UTC) belongs to
    the NEXT Vietnam day, one before 17:00 UTC to the same date: the daily series counts
    it in the bucket starting at 00:00 (Vietnam) of that day, and with a clock on that
    Vietnam day it is in `mtd` even when the UTC date is the last of the previous month."""
    instant = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(seconds=seconds)
    vn_day = day + timedelta(days=1) if seconds >= 17 * 3600 else day
    day_start = vn_epoch(vn_day.year, vn_day.month, vn_day.day)
    t = min(epoch(instant) + later, day_start + 86399)  # still on that Vietnam day
    accepted = event(
        "accepted",
        dossier_id="HP-TZ-1",
        at=instant,
        occurred_at=stamp(instant, style),
        appointment_at=stamp(instant + timedelta(days=5), style),
    )
    book, _ = feed([accepted])
    series = book.series("city", t)
    assert series.daily["received_total"] == {day_start: 1}
    assert series.hourly["received_total"] == {epoch(instant) // 3600 * 3600: 1}
    assert book.snapshot("city", t).windows["mtd"].received_total == 1
