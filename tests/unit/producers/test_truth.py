"""The truth of a workload: definitions on hand-made plans, and agreement with the worker core."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest

from domain.calendar import WorkingCalendar
from domain.figures import dossier_facts
from domain.lifecycle import DossierState, Lifecycle, calendar_resume
from producers.simulator import (
    UTC7,
    DossierPlan,
    Procedure,
    SimulationConfig,
    WorkloadSimulator,
)
from producers.truth import ONLINE_TARGET, TruthBuilder, UnitTruth, compute_truth
from schemas.enums import AgencyLevel, Channel, OnlineMode, ProcedureField, TimeUnit
from schemas.registry import AgencyRegistry

START = datetime(2025, 10, 1, tzinfo=UTC7)
END = START + timedelta(days=10)
H = 3600
T0 = int(START.timestamp())
T_END = int(END.timestamp())
PROC = Procedure("1.000100", ProcedureField.HEALTH, "thủ tục", 5, TimeUnit.WORKING_DAYS)


@pytest.fixture(scope="module")
def registry() -> AgencyRegistry:
    return AgencyRegistry.default()


def plan(**overrides: Any) -> DossierPlan:
    """A dossier of SO-YTE received in person on day 1, due at day 8 (00:00)."""
    fields: dict[str, Any] = {
        "ordinal": 0,
        "dossier_id": "HP-SO-YTE-2510-000001",
        "agency_code": "SO-YTE",
        "level": AgencyLevel.CITY,
        "procedure": PROC,
        "channel": Channel.IN_PERSON,
        "online_mode": None,
        "arrived_at": T0 + 9 * H,
        "accepted_at": T0 + 9 * H,
        "deadlines": [(T0 + 9 * H, T0 + 7 * 24 * H)],
    }
    fields.update(overrides)
    return DossierPlan(**fields)


def unit_of(registry: AgencyRegistry, *plans: DossierPlan, **kw: Any) -> UnitTruth:
    return compute_truth(plans, registry, START, END, **kw).units["SO-YTE"]


DUE = T0 + 7 * 24 * H


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"resolved_at": DUE - 1}, {"resolved_on_time": 1}),
        ({"resolved_at": DUE}, {"resolved_late": 1}),  # the due instant is exclusive
        ({"resolved_at": T_END + 1}, {"open_at_end": 1, "open_past_due": 1}),
        (
            {"resolved_at": None, "deadlines": [(T0 + 9 * H, T_END + 1)]},
            {"open_at_end": 1},  # still open, not yet due
        ),
        (
            {"resolved_at": None, "deadlines": [(T0 + 9 * H, T_END)]},
            {"open_at_end": 1, "open_past_due": 1},  # due exactly at the end
        ),
        (
            {"pauses": [(DUE - H, None)], "stopped_at": T_END + 1},
            {"open_at_end": 1},  # waiting for a supplement: the clock is paused
        ),
        (
            # the pause moved the due on by two days: resolved after the first due, on time
            {
                "pauses": [(T0 + 30 * H, T0 + 80 * H)],
                "deadlines": [(T0 + 9 * H, DUE), (T0 + 80 * H, DUE + 48 * H)],
                "resolved_at": DUE + 24 * H,
            },
            {"resolved_on_time": 1},
        ),
        (
            {
                "pauses": [(T0 + 30 * H, T0 + 50 * H), (T0 + 60 * H, T0 + 70 * H)],
                "resolved_at": DUE - 1,
            },
            {"resolved_late": 1, "second_supplement": 1},  # the 766 rule
        ),
        ({"withdrawn_at": T0 + 30 * H}, {"withdrawn": 1}),
        ({"stopped_at": T0 + 30 * H}, {"stopped": 1}),
        ({"resolved_at": DUE - 1, "returned_at": DUE + 1}, {"resolved_on_time": 1, "returned": 1}),
        ({"incident": True, "resolved_at": DUE + 1}, {"resolved_late": 1, "incident_dossiers": 1}),
    ],
)
def test_outcomes(
    registry: AgencyRegistry, overrides: dict[str, Any], expected: dict[str, int]
) -> None:
    u = unit_of(registry, plan(**overrides))
    counted = {k: v for k, v in u.to_dict().items() if isinstance(v, int) and v and k != "events"}
    counted = {k: v for k, v in counted.items() if k not in ("received", "in_person")}
    counted.pop("resolved", None)
    counted.pop("overdue", None)
    assert counted == expected
    assert u.received == 1 and u.in_person == 1


def test_second_supplement_rule_can_be_off(registry: AgencyRegistry) -> None:
    p = plan(pauses=[(T0 + 30 * H, T0 + 50 * H), (T0 + 60 * H, T0 + 70 * H)], resolved_at=DUE - 1)
    u = unit_of(registry, p, second_supplement_late=False)
    assert (u.resolved_on_time, u.resolved_late) == (1, 0)


@pytest.mark.parametrize(
    ("overrides", "received", "refused"),
    [
        ({"accepted_at": None, "refused_at": T0 + 10 * H, "deadlines": []}, 0, 1),
        ({"accepted_at": T_END, "deadlines": [(T_END, T_END + 100 * H)]}, 0, 0),
        ({"accepted_at": T0 - 1, "deadlines": [(T0 - 1, DUE)]}, 0, 0),
        ({"accepted_at": None, "deadlines": []}, 0, 0),  # submitted online, not yet accepted
    ],
)
def test_received_means_accepted_in_the_period(
    registry: AgencyRegistry, overrides: dict[str, Any], received: int, refused: int
) -> None:
    u = unit_of(registry, plan(**overrides))
    assert (u.received, u.refused, u.overdue) == (received, refused, 0)


def test_shares_and_target(registry: AgencyRegistry) -> None:
    done = DUE - 1
    plans = [plan(channel=Channel.ONLINE, online_mode=OnlineMode.FULL, resolved_at=done)] * 5
    plans += [plan(channel=Channel.ONLINE, online_mode=OnlineMode.PARTIAL, resolved_at=done)] * 3
    plans += [plan(channel=Channel.POST, resolved_at=done), plan(resolved_at=DUE)]
    u = unit_of(registry, *plans)
    assert (u.online_full, u.online_partial, u.post, u.in_person) == (5, 3, 1, 1)
    assert u.online_share == pytest.approx(0.8)
    assert u.full_online_share == pytest.approx(0.5)
    assert u.meets_online_target and ONLINE_TARGET == 0.8
    assert u.overdue_share == pytest.approx(0.1)
    assert u.on_time_share == pytest.approx(0.9)


def test_empty_units_have_no_shares(registry: AgencyRegistry) -> None:
    truth = TruthBuilder(registry, START, END, agencies=["SO-YTE", "11311"]).build()
    u = truth.units["SO-YTE"]
    assert u.online_share is None and u.on_time_share is None and u.overdue_share is None
    assert not u.meets_online_target
    assert [x.code for x in truth.by_level(AgencyLevel.COMMUNE)] == ["11311"]


def test_totals_add_up_and_serialise(registry: AgencyRegistry, tmp_path: Any) -> None:
    config = SimulationConfig(start=date(2025, 10, 1), days=10, seed=3, scale=0.05)
    sim = WorkloadSimulator(config, registry=registry, calendar=WorkingCalendar())
    truth = compute_truth(
        sim.plans(),
        registry,
        config.start_at,
        config.end_at,
        agencies=[p.code for p in sim.profiles],
    )
    assert len(truth.by_level(AgencyLevel.COMMUNE)) == 114
    assert len(truth.by_level(AgencyLevel.CITY)) == 16
    assert list(truth.units)[:16] == [u.code for u in truth.by_level(AgencyLevel.CITY)]
    for name in ("received", "online_full", "resolved_late", "open_past_due", "events"):
        city = sum(getattr(u, name) for u in truth.by_level(AgencyLevel.CITY))
        communes = sum(getattr(u, name) for u in truth.by_level(AgencyLevel.COMMUNE))
        assert getattr(truth.city, name) == city
        assert getattr(truth.communes, name) == communes
        assert getattr(truth.total, name) == city + communes
    doc = orjson.loads(orjson.dumps(truth.to_dict()))
    assert doc["city"]["received"] == truth.city.received
    assert len(doc["units"]) == 130


# -- agreement with the worker's pure core ---------------------------------------------------


def test_truth_is_what_the_worker_core_computes_from_the_events(
    registry: AgencyRegistry,
) -> None:
    """Replay the events, duplicated and reordered, through the worker's lifecycle core."""
    calendar = WorkingCalendar()
    config = SimulationConfig(
        start=date(2025, 10, 1), days=20, seed=11, scale=0.04, duplicates=0.03, reorder=0.03
    )
    sim = WorkloadSimulator(config, registry=registry, calendar=calendar)
    builder = TruthBuilder(registry, config.start_at, config.end_at)
    lifecycle = Lifecycle(calendar_resume(calendar))
    states: dict[str, DossierState] = {}
    rejected = 0
    for event in sim.events(on_plan=builder.add):
        state = states.setdefault(event.dossier_id, DossierState(event.dossier_id))
        rejected += len(lifecycle.apply(state, event.to_event()).rejected)
    assert rejected == 0
    assert sim.stats.duplicates > 0 and sim.stats.swaps > 0
    truth = builder.build()

    got: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for state in states.values():
        facts = dossier_facts(state, calendar)
        if facts is None:
            continue
        g = got[state.agency]
        g["received"] += 1
        g[facts.channel.value] += 1
        if facts.resolved_on_time is True:
            g["resolved_on_time"] += 1
        elif facts.resolved_on_time is False:
            g["resolved_late"] += 1
        if (
            facts.open
            and state.paused_at is None
            and state.due_at is not None
            and state.due_at <= config.end_at
        ):
            g["open_past_due"] += 1
    names = (
        "received",
        "in_person",
        "online_full",
        "online_partial",
        "post",
        "resolved_on_time",
        "resolved_late",
        "open_past_due",
    )
    assert truth.city.resolved_late > 0 and truth.city.open_past_due >= 0
    for code, unit in truth.units.items():
        expected = {n: getattr(unit, n) for n in names}
        assert {n: got[code][n] for n in names} == expected, code


def test_truth_builder_is_streaming(registry: AgencyRegistry) -> None:
    config = SimulationConfig(start=date(2025, 10, 1), days=5, seed=2, scale=0.05)
    sim = WorkloadSimulator(config, registry=registry, calendar=WorkingCalendar())
    builder = TruthBuilder(registry, config.start_at, config.end_at)
    for event in sim.events(on_plan=builder.add):
        assert event.dossier_id  # plans arrive before their events
    streamed = builder.build()
    again = compute_truth(sim.plans(), registry, config.start_at, config.end_at)
    assert streamed.to_dict() == again.to_dict()
    assert streamed.total.events == sim.stats.events
