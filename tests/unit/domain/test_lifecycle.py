"""Applying events to a dossier's state: order, duplicates, impossible moves, pauses."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.calendar import VN_TZ, WorkingCalendar
from domain.lifecycle import (
    ChannelKind,
    DossierState,
    Lifecycle,
    Outcome,
    calendar_resume,
    due_from_appointment,
)
from schemas.enums import Status, TimeUnit
from tests.factories import T0, event, lifecycle

LIFE = Lifecycle(calendar_resume(WorkingCalendar()))


def run(events: list) -> tuple[DossierState, list[Outcome]]:
    state = DossierState(events[0].dossier_id)
    return state, [LIFE.apply(state, e).outcome for e in events]


def test_a_full_lifecycle_applies_in_order() -> None:
    events = lifecycle()
    state, outcomes = run(events)
    assert outcomes == [Outcome.APPLIED] * 4
    assert state.status is Status.RETURNED
    assert state.received_at == events[0].occurred_at
    assert state.resolved_at == events[2].occurred_at
    assert state.channel is ChannelKind.ONLINE_FULL
    assert (state.agency, state.level, state.field) == ("SO-YTE", "city", "health")
    assert not state.is_open


def test_the_same_event_twice_changes_nothing() -> None:
    events = lifecycle()
    state, outcomes = run([events[0], events[1], events[1], events[0]])
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert state.last_seq == 2 and state.status is Status.IN_PROCESS


def test_an_old_sequence_number_with_a_new_event_id_is_a_duplicate() -> None:
    events = lifecycle()
    state, _ = run(events[:2])
    replay = event("processing", dossier_id=events[0].dossier_id, sequence=2)
    assert LIFE.apply(state, replay).outcome is Outcome.DUPLICATE


def test_out_of_order_events_wait_for_the_gap_then_apply_in_sequence() -> None:
    e1, e2, e3, e4 = lifecycle()
    state = DossierState(e1.dossier_id)
    assert LIFE.apply(state, e3).outcome is Outcome.PENDING
    assert LIFE.apply(state, e1).outcome is Outcome.APPLIED
    assert state.status is Status.ACCEPTED and 3 in state.pending
    result = LIFE.apply(state, e2)
    assert [e.sequence for e in result.applied] == [2, 3]
    assert state.status is Status.RESOLVED and not state.pending
    assert LIFE.apply(state, e3).outcome is Outcome.DUPLICATE
    assert LIFE.apply(state, e4).outcome is Outcome.APPLIED


def test_a_pending_event_seen_twice_is_a_duplicate() -> None:
    e1, _, e3, _ = lifecycle()
    state = DossierState(e1.dossier_id)
    LIFE.apply(state, e3)
    assert LIFE.apply(state, e3).outcome is Outcome.DUPLICATE


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (("processing",), "processing from status new"),
        (("accepted", "returned"), "returned from status 2"),
        (("accepted", "resolved", "resolved"), "resolved from status 9"),
        (("accepted", "withdrawn", "processing"), "processing from status 7"),
        (("accepted", "supplement_received"), "supplement_received from status 2"),
        (("accepted", "fee_paid"), "fee_paid from status 2"),
    ],
)
def test_impossible_transitions_are_rejected_with_a_reason(
    steps: tuple[str, ...], reason: str
) -> None:
    events = lifecycle(steps=steps)
    state = DossierState(events[0].dossier_id)
    results = [LIFE.apply(state, e) for e in events]
    last = results[-1]
    assert last.outcome is Outcome.REJECTED
    assert reason in last.rejected[0][1]
    # The bad event consumes its sequence number: the dossier is not stalled by it.
    assert state.last_seq == len(events)


def test_a_rejected_event_does_not_stall_later_ones() -> None:
    events = lifecycle(steps=("accepted", "returned", "processing"))
    state, outcomes = run(events)
    assert outcomes == [Outcome.APPLIED, Outcome.REJECTED, Outcome.APPLIED]
    assert state.status is Status.IN_PROCESS


def test_transfer_and_apology_keep_the_status_and_the_appointment() -> None:
    events = lifecycle(steps=("accepted", "processing", "transferred", "apology_issued"))
    state, outcomes = run(events)
    assert outcomes == [Outcome.APPLIED] * 4
    assert state.status is Status.IN_PROCESS
    assert state.appointment_at == events[0].appointment_at
    assert state.apology_at == events[3].apology_appointment_at


def test_due_instant_is_the_start_of_the_day_after_the_appointment_in_vietnam() -> None:
    # 17:00 UTC on 7 Oct is 00:00 on 8 Oct in Vietnam: the appointment date is 8 Oct.
    appointment = datetime.fromisoformat("2025-10-07T17:00:00+00:00")
    assert due_from_appointment(appointment, TimeUnit.WORKING_DAYS) == datetime(
        2025, 10, 9, tzinfo=VN_TZ
    )
    assert due_from_appointment(appointment, TimeUnit.HOURS) == appointment


def test_a_supplement_pause_moves_the_due_time_by_the_working_days_paused() -> None:
    # Accepted Wed 1 Oct 2025, appointment Wed 8 Oct; paused Thu 2 Oct, resumed Tue 7 Oct:
    # working days in (2 Oct, 7 Oct] are Fri 3, Mon 6, Tue 7 -> three more working days.
    steps = ("accepted", "supplement_requested", "supplement_received")
    e1 = event("accepted", appointment_at="2025-10-08T17:00:00+07:00")
    e2 = event("supplement_requested", sequence=2, at=datetime(2025, 10, 2, 9, tzinfo=VN_TZ))
    e3 = event("supplement_received", sequence=3, at=datetime(2025, 10, 7, 9, tzinfo=VN_TZ))
    assert [e.event_type.value for e in (e1, e2, e3)] == list(steps)
    state = DossierState(e1.dossier_id)
    LIFE.apply(state, e1)
    assert state.due_at == datetime(2025, 10, 9, tzinfo=VN_TZ)
    LIFE.apply(state, e2)
    assert state.paused_at == e2.occurred_at and state.supplements == 1
    LIFE.apply(state, e3)
    assert state.paused_at is None
    assert state.due_at == datetime(2025, 10, 14, tzinfo=VN_TZ)  # appointment Mon 13 Oct


def test_restart_counts_the_full_limit_again_from_the_resumption() -> None:
    e1 = event("accepted", appointment_at="2025-10-08T17:00:00+07:00")
    e2 = event("supplement_requested", sequence=2, at=T0 + timedelta(days=1))
    resumed = datetime(2025, 10, 7, 9, tzinfo=VN_TZ)
    e3 = event("supplement_received", sequence=3, at=resumed, clock="restart")
    state, _ = run([e1, e2, e3])
    assert state.due_at == WorkingCalendar().due_at(resumed, 5, TimeUnit.WORKING_DAYS)
