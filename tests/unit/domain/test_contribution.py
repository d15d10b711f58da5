"""A dossier's figure facts are worked out again only when what they read has changed.

`Lifecycle.apply(..., known=facts)` reuses the facts of the state before an event when
the event leaves every field of `CONTRIBUTION_FIELDS` as it was. That is right only if
`dossier_facts` reads no other field, and if `same_contribution` compares exactly those
fields: both are held here, and the reuse is checked against recomputing on every event
of three weeks of the simulator's workload.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import pytest

import domain.figures
from domain.calendar import VN_TZ, WorkingCalendar
from domain.figures import dossier_facts
from domain.lifecycle import (
    CONTRIBUTION_FIELDS,
    NOT_CHECKED,
    ChannelKind,
    DossierState,
    Lifecycle,
    Outcome,
    Void,
    calendar_resume,
    same_contribution,
    state_values,
)
from producers.simulator import SimulationConfig, WorkloadSimulator
from schemas.enums import Status, TimeUnit
from schemas.registry import AgencyRegistry

CALENDAR = WorkingCalendar()
AT = datetime(2025, 9, 22, 8, tzinfo=VN_TZ)
FIELDS = [f.name for f in dataclasses.fields(DossierState)]


def full_state(**changes: Any) -> DossierState:
    values: dict[str, Any] = {
        "dossier_id": "HP-1",
        "agency": "SO-YTE",
        "level": "city",
        "field": "health",
        "procedure": "P-1",
        "channel": ChannelKind.POST,
        "status": Status.IN_PROCESS,
        "last_seq": 3,
        "received_at": AT,
        "appointment_at": AT + timedelta(days=9),
        "due_at": AT + timedelta(days=10),
        "paused_at": None,
        "supplements": 1,
        "limit_value": 5,
        "limit_unit": TimeUnit.WORKING_DAYS,
        "apology_at": None,
        "resolved_at": None,
        "closed_at": None,
        "last_at": AT + timedelta(days=1),
        "prints": b"\x01" * 24,
        "flags": frozenset(),
        "pending": {},
    }
    values.update(changes)
    return DossierState(**values)


def another(value: Any) -> Any:
    """A value of the same type as `value` that is not it (nor equal to it)."""
    if value is None:
        return AT + timedelta(hours=5)
    if isinstance(value, bool):
        return not value
    if isinstance(value, Enum):
        return next(m for m in type(value) if m is not value)
    if isinstance(value, str):
        return value + "-2"
    if isinstance(value, int):
        return value + 1
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, bytes):
        return value + b"\x02" * 8
    if isinstance(value, frozenset):
        return value | {"gap_released"}
    if isinstance(value, dict):
        return {9: Void(9, "an invalid message")}
    raise AssertionError(f"no other value for {value!r}")


@pytest.mark.parametrize("name", FIELDS)
def test_same_contribution_compares_exactly_the_contribution_fields(name: str) -> None:
    state = full_state()
    values = state_values(state)
    assert same_contribution(state, values)
    setattr(state, name, another(getattr(state, name)))
    assert same_contribution(state, values) is (name not in CONTRIBUTION_FIELDS), name


def test_a_field_set_again_to_an_equal_object_counts_as_changed() -> None:
    state = full_state()
    values = state_values(state)
    state.received_at = AT + timedelta(0)  # equal, another object
    assert state.received_at == AT and state.received_at is not AT
    assert not same_contribution(state, values)


STATES = [
    full_state(),  # open, in the agency's hands
    full_state(received_at=None, due_at=None, status=Status.SUBMITTED),
    full_state(paused_at=AT + timedelta(days=2), supplements=2),  # paused
    full_state(paused_at=AT + timedelta(days=11)),  # overdue at its pause
    full_state(resolved_at=AT + timedelta(days=3), status=Status.RESOLVED),
    full_state(resolved_at=AT + timedelta(days=12), supplements=2, status=Status.RETURNED),
    full_state(closed_at=AT + timedelta(days=2), status=Status.WITHDRAWN),
    full_state(limit_unit=TimeUnit.HOURS, due_at=AT + timedelta(hours=30)),
    full_state(due_at=AT - timedelta(days=1)),  # due before its receipt
]


@pytest.mark.skipif(
    not domain.figures.__file__.endswith(".py"),
    reason="compiled: a class of the compiled core cannot be subclassed to watch its reads",
)
@pytest.mark.parametrize("state", STATES, ids=range(len(STATES)))
def test_the_figure_facts_read_no_field_beyond_the_contribution_fields(
    state: DossierState,
) -> None:
    read: set[str] = set()

    class Watched(DossierState):
        def __getattribute__(self, name: str) -> Any:
            if name in FIELDS:
                read.add(name)
            return super().__getattribute__(name)

    watched = Watched(**{name: getattr(state, name) for name in FIELDS})
    facts = dossier_facts(watched, CALENDAR)
    assert facts == dossier_facts(state, CALENDAR)
    assert read, "nothing was read: the watch does not work"
    assert read <= set(CONTRIBUTION_FIELDS), read - set(CONTRIBUTION_FIELDS)


def test_reused_facts_equal_facts_worked_out_again_over_three_weeks_of_events() -> None:
    life = Lifecycle(calendar_resume(CALENDAR))

    def check(state: DossierState) -> Any:
        return dossier_facts(state, CALENDAR)

    states: dict[str, DossierState] = {}
    known: dict[str, Any] = {}
    config = SimulationConfig(seed=6, start=date(2025, 9, 1), days=21, scale=0.2)
    simulator = WorkloadSimulator(config, registry=AgencyRegistry.default(), calendar=CALENDAR)
    reused = recomputed = 0
    for sim_event in simulator.events():
        ev = sim_event.to_event()
        state = states.setdefault(ev.dossier_id, DossierState(ev.dossier_id))
        before = known.get(ev.dossier_id)
        if before is None:
            before = check(state)
        result = life.apply(state, ev, check, before)
        if result.outcome is not Outcome.APPLIED:
            continue
        assert result.facts is not NOT_CHECKED
        assert result.facts == check(state), (ev.dossier_id, ev.event_type)
        if result.facts is before:
            reused += 1
        else:
            recomputed += 1
        known[ev.dossier_id] = result.facts
    assert reused > 1000 and recomputed > 1000, (reused, recomputed)
