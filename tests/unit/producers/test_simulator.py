"""The workload simulator: determinism, contract validity, lifecycles, calibration, faults."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

import orjson
import pytest

from domain.calendar import VN_TZ, CalendarRules, WorkingCalendar
from domain.lifecycle import NEXT, due_from_appointment
from producers.simulator import (
    CITY_PROFILES,
    SEED_ONLINE_LEADERS,
    UTC7,
    DossierPlan,
    Incident,
    SimEvent,
    SimulationConfig,
    WorkloadSimulator,
)
from producers.truth import WorkloadTruth, compute_truth
from schemas.enums import AgencyLevel, Channel, EventType, Status, TimeUnit
from schemas.events import ClockAction, parse_event
from schemas.registry import AgencyRegistry

START = date(2025, 10, 1)
SMALL = SimulationConfig(start=START, days=12, seed=7, scale=0.05)


@pytest.fixture(scope="module")
def registry() -> AgencyRegistry:
    return AgencyRegistry.default()


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


def simulate(
    config: SimulationConfig, registry: AgencyRegistry, calendar: WorkingCalendar
) -> list[SimEvent]:
    return list(WorkloadSimulator(config, registry=registry, calendar=calendar).events())


def as_bytes(events: list[SimEvent]) -> bytes:
    return b"".join(orjson.dumps(e.as_dict()) + b"\n" for e in events)


@pytest.fixture(scope="module")
def small(registry: AgencyRegistry, calendar: WorkingCalendar) -> list[SimEvent]:
    return simulate(SMALL, registry, calendar)


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes(
    small: list[SimEvent], registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    again = simulate(SMALL, registry, calendar)
    assert len(small) > 1_000
    assert as_bytes(again) == as_bytes(small)


def test_a_simulator_can_be_run_twice(registry: AgencyRegistry, calendar: WorkingCalendar) -> None:
    sim = WorkloadSimulator(SMALL, registry=registry, calendar=calendar)
    assert as_bytes(list(sim.events())) == as_bytes(list(sim.events()))


def test_another_seed_gives_other_events(
    small: list[SimEvent], registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    other = simulate(replace(SMALL, seed=8), registry, calendar)
    assert as_bytes(other) != as_bytes(small)
    assert {e.event_id for e in other}.isdisjoint({e.event_id for e in small})


def test_city_events_do_not_depend_on_the_communes(
    small: list[SimEvent], registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    city_only = simulate(replace(SMALL, communes=False), registry, calendar)
    city_part = [e for e in small if e.agency["level"] == "city"]
    assert as_bytes(city_only) == as_bytes(city_part)


# -- the contract --------------------------------------------------------------------------


def test_every_event_satisfies_the_contract(
    small: list[SimEvent], registry: AgencyRegistry
) -> None:
    for event in small:
        model = parse_event(orjson.dumps(event.as_dict()), registry)
        assert model.event_id == event.event_id
        assert model.occurred_at == event.occurred_at


def test_to_event_gives_the_validated_model(
    small: list[SimEvent], registry: AgencyRegistry
) -> None:
    model = small[0].to_event(registry)
    assert model.dossier_id == small[0].dossier_id
    assert model.model_dump(mode="json", exclude_none=True) == orjson.loads(
        orjson.dumps(small[0].as_dict())
    )


def test_wire_times_carry_the_vietnam_offset(small: list[SimEvent]) -> None:
    line = orjson.dumps(small[0].as_dict()).decode()
    assert re.search(r'"occurred_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00"', line)


def test_dossier_ids_are_unique_stable_and_well_formed(small: list[SimEvent]) -> None:
    pattern = re.compile(r"^HP-[A-Z0-9-]+-\d{4}-\d{6}$")
    agency_of: dict[str, str] = {}
    for event in small:
        assert pattern.match(event.dossier_id), event.dossier_id
        assert agency_of.setdefault(event.dossier_id, event.agency["code"]) == event.agency["code"]
        assert event.dossier_id.startswith(f"HP-{event.agency['code']}-2510-")


def test_event_ids_are_unique_without_faults(small: list[SimEvent]) -> None:
    assert len({e.event_id for e in small}) == len(small)


def test_events_are_in_occurred_at_order(small: list[SimEvent]) -> None:
    times = [e.occurred_at for e in small]
    assert times == sorted(times)
    assert times[0] >= datetime.combine(START, time(0), tzinfo=VN_TZ)
    assert times[-1] < datetime.combine(START + timedelta(days=SMALL.days), time(0), tzinfo=VN_TZ)


def test_emitted_shortly_after_occurred(small: list[SimEvent]) -> None:
    for event in small:
        assert timedelta(0) < event.emitted_at - event.occurred_at <= timedelta(seconds=30)


# -- lifecycles ----------------------------------------------------------------------------


def by_dossier(events: list[SimEvent]) -> dict[str, list[SimEvent]]:
    out: dict[str, list[SimEvent]] = defaultdict(list)
    for event in events:
        out[event.dossier_id].append(event)
    return out


def test_sequences_run_one_to_n_in_order(small: list[SimEvent]) -> None:
    for dossier_id, events in by_dossier(small).items():
        assert [e.sequence for e in events] == list(range(1, len(events) + 1)), dossier_id
        assert [e.occurred_at for e in events] == sorted({e.occurred_at for e in events})


def test_statuses_follow_the_worker_lifecycle(small: list[SimEvent]) -> None:
    for dossier_id, events in by_dossier(small).items():
        status: Status | None = None
        for event in events:
            assert event.event_type in NEXT.get(status, frozenset()), (dossier_id, event)
            if event.event_type not in (EventType.TRANSFERRED, EventType.APOLOGY_ISSUED):
                status = event.status
            else:
                assert event.status is status


def test_online_dossiers_start_submitted_others_at_the_counter(small: list[SimEvent]) -> None:
    for events in by_dossier(small).values():
        first = events[0]
        if first.channel is Channel.ONLINE:
            assert first.event_type is EventType.SUBMITTED
            assert first.online_mode is not None
        else:
            assert first.event_type in (EventType.ACCEPTED, EventType.REFUSED)
            assert first.online_mode is None


def test_every_kind_of_event_occurs(small: list[SimEvent]) -> None:
    seen = Counter(e.event_type for e in small)
    assert set(seen) == set(EventType), set(EventType) - set(seen)
    assert Counter(e.channel for e in small).keys() == set(Channel)


def test_staff_act_in_working_hours_of_working_days(
    small: list[SimEvent], calendar: WorkingCalendar
) -> None:
    rules = calendar.rules
    anytime = {EventType.SUBMITTED, EventType.RETURNED}  # online, and results sent online
    for event in small:
        if event.event_type in anytime:
            continue
        local = event.occurred_at.astimezone(VN_TZ)
        assert calendar.is_working_day(local.date()), event
        assert rules.workday_start <= local.time() < rules.workday_end, event


def test_appointment_gives_back_the_calendar_due(
    small: list[SimEvent], calendar: WorkingCalendar
) -> None:
    accepted = [e for e in small if e.event_type is EventType.ACCEPTED]
    assert {e.time_limit["unit"] for e in accepted if e.time_limit} == set(TimeUnit)
    for event in accepted:
        assert event.time_limit is not None and event.appointment_at is not None
        unit, value = event.time_limit["unit"], event.time_limit["value"]
        due = calendar.due_at(event.occurred_at, value, unit)
        assert due_from_appointment(event.appointment_at, unit) == due
        if unit is not TimeUnit.HOURS:  # a readable appointment: the end of the working day
            local = event.appointment_at.astimezone(VN_TZ)
            assert local.time() == calendar.rules.workday_end


def test_supplements_pause_and_resume_the_clock(small: list[SimEvent]) -> None:
    requested = [e for e in small if e.event_type is EventType.SUPPLEMENT_REQUESTED]
    received = [e for e in small if e.event_type is EventType.SUPPLEMENT_RECEIVED]
    assert requested and received
    assert all(e.clock is ClockAction.PAUSE for e in requested)
    assert all(e.clock is ClockAction.RESUME for e in received)


def test_restart_policy_restarts_the_clock(registry: AgencyRegistry) -> None:
    calendar = WorkingCalendar(CalendarRules(supplement_policy="restart"))
    config = replace(SMALL, communes=False, scale=0.1)
    events = simulate(config, registry, calendar)
    received = [e for e in events if e.event_type is EventType.SUPPLEMENT_RECEIVED]
    assert received and all(e.clock is ClockAction.RESTART for e in received)


def test_refusals_withdrawals_and_stops_have_reasons(small: list[SimEvent]) -> None:
    needing = (EventType.REFUSED, EventType.WITHDRAWN, EventType.STOPPED)
    for event in small:
        if event.event_type in needing:
            assert event.reason


def test_some_dossiers_get_two_supplement_requests(
    registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    sim = WorkloadSimulator(
        replace(SMALL, days=30, scale=0.2), registry=registry, calendar=calendar
    )
    counts = Counter(plan.supplements for plan in sim.plans())
    assert counts[1] > 0 and counts[2] > 0
    assert counts[2] < counts[1] / 10


def test_apology_slips_come_before_the_due_of_late_dossiers(
    registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    sim = WorkloadSimulator(
        replace(SMALL, days=30, scale=0.2), registry=registry, calendar=calendar
    )
    late = apologised = 0
    for plan in sim.plans():
        apologies = [e for e in plan.events if e.event_type is EventType.APOLOGY_ISSUED]
        if plan.intended_late:
            late += 1
            apologised += bool(apologies)
        for event in apologies:
            assert plan.intended_late
            due = plan.deadlines[-1][1]
            assert event.occurred_at.timestamp() < due
            assert event.apology_appointment_at is not None
            assert event.apology_appointment_at > event.occurred_at
    assert late > 20
    assert 0.5 < apologised / late < 0.9


# -- calibration ---------------------------------------------------------------------------

# A quarter at a quarter of the default volume (about 35,000 city dossiers): big enough
# for the shares to be within a point, small enough for a unit test.
QUARTER = SimulationConfig(start=START, days=91, seed=1, scale=0.25, communes=False)


@pytest.fixture(scope="module")
def quarter_truth(registry: AgencyRegistry, calendar: WorkingCalendar) -> WorkloadTruth:
    sim = WorkloadSimulator(QUARTER, registry=registry, calendar=calendar)
    return compute_truth(sim.plans(), registry, QUARTER.start_at, QUARTER.end_at)


def test_quarter_volume_matches_the_article(quarter_truth: WorkloadTruth) -> None:
    assert quarter_truth.city.received == pytest.approx(140_000 * 0.25, rel=0.03)


def test_city_online_share_is_about_67_percent(quarter_truth: WorkloadTruth) -> None:
    share = quarter_truth.city.online_share
    assert share is not None and 0.66 <= share <= 0.68


def test_the_six_named_units_are_above_80_percent_online(quarter_truth: WorkloadTruth) -> None:
    above = {u.code for u in quarter_truth.by_level(AgencyLevel.CITY) if u.meets_online_target}
    assert above == set(SEED_ONLINE_LEADERS)
    below = {u.code for u in quarter_truth.by_level(AgencyLevel.CITY)} - above
    assert len(below) == len(CITY_PROFILES) - 6


def test_about_one_percent_overdue(quarter_truth: WorkloadTruth) -> None:
    overdue, on_time = quarter_truth.city.overdue_share, quarter_truth.city.on_time_share
    assert overdue is not None and 0.005 <= overdue <= 0.015
    assert on_time is not None and 0.98 <= on_time <= 0.995


def test_communes_are_less_online(registry: AgencyRegistry, calendar: WorkingCalendar) -> None:
    config = replace(SMALL, days=14, scale=0.2)
    sim = WorkloadSimulator(config, registry=registry, calendar=calendar)
    truth = compute_truth(sim.plans(), registry, config.start_at, config.end_at)
    share = truth.communes.online_share
    assert share is not None and 0.40 <= share <= 0.55
    working_days = sum(
        calendar.is_working_day(START + timedelta(days=i)) for i in range(config.days)
    )
    expected = 114 * 25 * working_days * config.scale
    assert truth.communes.received == pytest.approx(expected, rel=0.08)


def test_volume_scales_with_scale_and_days(
    registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    def received(config: SimulationConfig) -> int:
        sim = WorkloadSimulator(config, registry=registry, calendar=calendar)
        return compute_truth(sim.plans(), registry, config.start_at, config.end_at).city.received

    base = replace(SMALL, communes=False, days=28, scale=0.1)
    assert received(replace(base, scale=0.2)) == pytest.approx(2 * received(base), rel=0.08)
    assert received(base) == pytest.approx(140_000 * 0.1 * 28 / 91, rel=0.08)


# -- incidents -----------------------------------------------------------------------------


def test_incident_makes_the_agency_late_inside_the_window(
    registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    base = replace(SMALL, days=21, scale=0.3, communes=False)
    incident = Incident("SO-XD", datetime(2025, 10, 13, 8, 0, tzinfo=UTC7), 48)
    with_incident = replace(base, incidents=(incident,))
    lo, hi = incident.start.timestamp(), incident.end.timestamp()

    def late_share_in_window(config: SimulationConfig) -> tuple[float, int]:
        sim = WorkloadSimulator(config, registry=registry, calendar=calendar)
        due_inside = [
            p
            for p in sim.plans()
            if p.agency_code == "SO-XD" and p.deadlines and lo <= p.deadlines[-1][1] < hi
        ]
        late = sum(p.intended_late for p in due_inside)
        return late / len(due_inside), len(due_inside)

    before, n = late_share_in_window(base)
    after, n_after = late_share_in_window(with_incident)
    # Lateness draws from SO-XD's own stream, so its later dossiers differ a little.
    assert n > 50 and abs(n - n_after) <= n // 10
    assert before < 0.05
    assert after > 0.4

    def truth(config: SimulationConfig) -> WorkloadTruth:
        sim = WorkloadSimulator(config, registry=registry, calendar=calendar)
        return compute_truth(sim.plans(), registry, config.start_at, config.end_at)

    t0, t1 = truth(base), truth(with_incident)
    assert t1.units["SO-XD"].overdue > 5 * max(1, t0.units["SO-XD"].overdue)
    # Each agency draws from its own random stream: the others are untouched.
    for code, unit in t0.units.items():
        if code != "SO-XD":
            assert unit.to_dict() == t1.units[code].to_dict()


def test_incident_on_an_unknown_agency_is_refused(
    registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    bad = Incident("SO-NOPE", datetime(2025, 10, 2, tzinfo=UTC7), 24)
    with pytest.raises(ValueError, match="SO-NOPE"):
        WorkloadSimulator(replace(SMALL, incidents=(bad,)), registry=registry, calendar=calendar)


@pytest.mark.parametrize(
    ("text", "code", "start", "hours"),
    [
        (
            "SO-XD:2025-11-03T08:00:00+07:00:48",
            "SO-XD",
            datetime(2025, 11, 3, 8, tzinfo=UTC7),
            48.0,
        ),
        ("CA-TP:2025-11-03T01:00:00+00:00:6", "CA-TP", datetime(2025, 11, 3, 8, tzinfo=UTC7), 6.0),
        ("11311:2025-11-03:24", "11311", datetime(2025, 11, 3, tzinfo=UTC7), 24.0),
        ("SO-YTE:2025-11-03T08:00:2.5", "SO-YTE", datetime(2025, 11, 3, 8, tzinfo=UTC7), 2.5),
    ],
)
def test_incident_parse(text: str, code: str, start: datetime, hours: float) -> None:
    incident = Incident.parse(text)
    assert (incident.agency_code, incident.start, incident.hours) == (code, start, hours)


@pytest.mark.parametrize(
    "text",
    [
        "SO-XD",
        "SO-XD:2025-11-03",
        "SO-XD:not-a-date:4",
        "SO-XD:2025-11-03T08:00:x",
        ":2025-11-03:4",
    ],
)
def test_incident_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Incident.parse(text)


@pytest.mark.parametrize(
    "changes",
    [{"days": 0}, {"scale": -1.0}, {"duplicates": 1.5}, {"reorder": -0.1}],
)
def test_config_rejects_nonsense(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(SMALL, **changes)


# -- faults --------------------------------------------------------------------------------


def test_duplicates_and_reorder_leave_the_lifecycles_and_truth_alone(
    small: list[SimEvent], registry: AgencyRegistry, calendar: WorkingCalendar
) -> None:
    faulty_config = replace(SMALL, duplicates=0.05, reorder=0.05)
    sim = WorkloadSimulator(faulty_config, registry=registry, calendar=calendar)
    plans: list[DossierPlan] = []
    faulty = list(sim.events(on_plan=plans.append))
    stats = sim.stats

    # The extra events are exactly the duplicates; nothing is lost.
    assert stats.events == len(small)
    assert len(faulty) == len(small) + stats.duplicates
    assert 0.04 * len(small) < stats.duplicates < 0.06 * len(small)
    copies = Counter(e.event_id for e in faulty)
    assert sum(n - 1 for n in copies.values()) == stats.duplicates
    first_seen: dict[object, SimEvent] = {}
    for event in faulty:
        earlier = first_seen.setdefault(event.event_id, event)
        assert earlier == event  # a duplicate is the same event, byte for byte

    # Deduplicated and put back in order, it is the clean stream.
    unique = list(first_seen.values())
    key = lambda e: (e.occurred_at, e.dossier_id, e.sequence)  # noqa: E731
    assert as_bytes(sorted(unique, key=key)) == as_bytes(sorted(small, key=key))

    # Swaps: a dossier's event comes right after its successor.
    inversions = 0
    for events in by_dossier(list(first_seen.values())).values():
        seqs = [e.sequence for e in events]
        inversions += sum(1 for a, b in pairwise(seqs) if a > b)
    assert inversions == stats.swaps
    assert 0.02 * len(small) < stats.swaps < 0.06 * len(small)

    clean_sim = WorkloadSimulator(SMALL, registry=registry, calendar=calendar)
    clean = compute_truth(clean_sim.plans(), registry, SMALL.start_at, SMALL.end_at)
    truth = compute_truth(plans, registry, SMALL.start_at, SMALL.end_at)
    assert truth.to_dict() == clean.to_dict()


def test_faults_are_deterministic(registry: AgencyRegistry, calendar: WorkingCalendar) -> None:
    config = replace(SMALL, days=5, duplicates=0.1, reorder=0.1)
    assert as_bytes(simulate(config, registry, calendar)) == as_bytes(
        simulate(config, registry, calendar)
    )
