"""Applying events to a dossier's state: order, duplicates, impossible moves, pauses."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta

import orjson
import pytest

from domain.calendar import VN_TZ, WorkingCalendar
from domain.lifecycle import (
    ChannelKind,
    DossierState,
    Lifecycle,
    Outcome,
    Void,
    calendar_resume,
    due_from_appointment,
    fingerprint,
    restore_state,
    state_values,
)
from schemas.enums import AgencyLevel, ProcedureField, Status, TimeUnit
from schemas.events import parse_event
from schemas.registry import AgencyRegistry
from tests.factories import T0, event, event_doc, lifecycle

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


def test_an_old_sequence_number_with_another_event_is_a_conflict_not_a_duplicate() -> None:
    events = lifecycle()
    state, _ = run(events[:2])
    replay = event("processing", dossier_id=events[0].dossier_id, sequence=2)
    result = LIFE.apply(state, replay)
    assert result.outcome is Outcome.REJECTED and not result.consumed
    assert "sequence 2 is already used by another event" in result.rejected[0][1]
    assert state.last_seq == 2


def test_a_resend_with_a_new_emitted_at_is_still_a_duplicate() -> None:
    events = lifecycle()
    state, _ = run(events[:2])
    doc = events[1].model_dump(mode="json")
    doc["emitted_at"] = "2025-10-05T10:00:00+07:00"
    resend = event("processing", **{k: v for k, v in doc.items() if k != "event_type"})
    assert LIFE.apply(state, resend).outcome is Outcome.DUPLICATE


def test_a_waiting_sequence_with_other_content_is_a_conflict() -> None:
    e1, _, e3, _ = lifecycle()
    state = DossierState(e1.dossier_id)
    LIFE.apply(state, e3)
    other = event("resolved", dossier_id=e1.dossier_id, sequence=3)
    assert LIFE.apply(state, other).outcome is Outcome.REJECTED
    assert state.pending[3] is e3


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"agency": {"code": "SO-TP", "level": "city"}}, "agency SO-TP"),
        ({"procedure": {"code": "2.000001", "field": "health"}}, "procedure 2.000001"),
        ({"procedure": {"code": "1.004616", "field": "justice"}}, "procedure 1.004616"),
        ({"channel": "in_person", "online_mode": None}, "channel in_person"),
        ({"online_mode": "partial"}, "channel online_partial"),
    ],
)
def test_an_event_that_contradicts_the_dossier_identity_is_a_conflict(
    override: dict, fragment: str
) -> None:
    e1 = event("accepted")
    state, _ = run([e1])
    intruder = event("processing", sequence=2, **override)
    result = LIFE.apply(state, intruder)
    assert result.outcome is Outcome.REJECTED
    assert "conflict" in result.rejected[0][1] and fragment in result.rejected[0][1]
    # Not this dossier's event: its sequence stays free for the dossier's own event 2.
    assert state.last_seq == 1 and state.status is Status.ACCEPTED
    assert LIFE.apply(state, event("processing", sequence=2)).outcome is Outcome.APPLIED


def test_a_transfer_moves_the_dossier_to_the_agency_it_names() -> None:
    e1 = event("accepted")
    moved = {"agency": {"code": "11311", "level": "commune"}}
    e2 = event("transferred", sequence=2, status=2, at=T0 + timedelta(hours=3), **moved)
    e3 = event("resolved", sequence=3, at=T0 + timedelta(hours=5), **moved)
    state, outcomes = run([e1, e2, e3])
    assert outcomes == [Outcome.APPLIED] * 3
    assert (state.agency, state.level) == ("11311", "commune")
    assert state.status is Status.RESOLVED
    # After the transfer, the old agency's name no longer fits the dossier.
    late = event("returned", sequence=4, at=T0 + timedelta(hours=6))
    assert LIFE.apply(state, late).outcome is Outcome.REJECTED


def test_a_time_going_backwards_is_clamped_to_the_dossier_latest_time() -> None:
    e1 = event("accepted", at=T0)
    e2 = event("supplement_requested", sequence=2, at=T0 + timedelta(days=1))
    e3 = event("supplement_received", sequence=3, at=T0 + timedelta(hours=20))  # desk clock
    state, outcomes = run([e1, e2, e3])
    assert outcomes == [Outcome.APPLIED] * 3
    assert state.last_at == T0 + timedelta(days=1)
    assert "time_clamped" in state.flags
    # Paused and resumed at the same instant: the due instant did not move.
    assert state.due_at == due_from_appointment(e1.appointment_at, TimeUnit.WORKING_DAYS)  # type: ignore[arg-type]


def test_a_dossier_overdue_at_its_pause_stays_overdue_and_its_due_does_not_move() -> None:
    e1 = event("accepted", appointment_at="2025-10-08T17:00:00+07:00")  # due 9 Oct 00:00
    e2 = event("supplement_requested", sequence=2, at=datetime(2025, 10, 10, 9, tzinfo=VN_TZ))
    e3 = event("supplement_received", sequence=3, at=datetime(2025, 10, 15, 9, tzinfo=VN_TZ))
    state, _ = run([e1, e2])
    assert state.overdue_at_pause and not state.paused
    LIFE.apply(state, e3)
    assert state.due_at == datetime(2025, 10, 9, tzinfo=VN_TZ)
    restart = event(
        "supplement_received",
        sequence=3,
        at=datetime(2025, 10, 15, 9, tzinfo=VN_TZ),
        clock="restart",
    )
    again, _ = run([e1, e2, restart])
    assert again.due_at == datetime(2025, 10, 9, tzinfo=VN_TZ)


def test_a_pause_made_before_the_due_instant_still_pauses() -> None:
    e1 = event("accepted", appointment_at="2025-10-08T17:00:00+07:00")  # due 9 Oct 00:00
    e2 = event("supplement_requested", sequence=2, at=datetime(2025, 10, 8, 23, 59, tzinfo=VN_TZ))
    state, _ = run([e1, e2])
    assert state.paused and not state.overdue_at_pause


def test_an_error_while_applying_leaves_the_state_unchanged_and_uses_the_sequence() -> None:
    e1, e2, e3, _ = lifecycle()
    state, _ = run([e1])
    before = (state.status, state.last_at, state.received_at)

    def failing_check(candidate: DossierState) -> None:
        raise ValueError("boom")

    result = LIFE.apply(state, e2, check=failing_check)
    assert result.outcome is Outcome.REJECTED
    assert "cannot apply: ValueError: boom" in result.rejected[0][1]
    assert (state.status, state.last_at, state.received_at) == before
    assert state.last_seq == 2
    assert LIFE.apply(state, e3).outcome is Outcome.APPLIED


def test_a_calendar_error_is_a_rejection_not_a_crash() -> None:
    narrow = Lifecycle(calendar_resume(WorkingCalendar(years=range(2025, 2026))))
    e1 = event("accepted", appointment_at="2025-12-31T17:00:00+07:00")
    e2 = event("supplement_requested", sequence=2, at=datetime(2025, 12, 29, 9, tzinfo=VN_TZ))
    e3 = event("supplement_received", sequence=3, at=datetime(2025, 12, 31, 9, tzinfo=VN_TZ))
    state = DossierState(e1.dossier_id)
    for e in (e1, e2):
        narrow.apply(state, e)
    result = narrow.apply(state, e3)  # the moved appointment falls in 2026: outside
    assert result.outcome is Outcome.REJECTED and "CalendarError" in result.rejected[0][1]
    assert state.paused_at == e2.occurred_at and state.last_seq == 3


def test_an_invalid_message_uses_up_its_sequence() -> None:
    e1, _, e3, e4 = lifecycle()
    state, _ = run([e1, e3])
    assert state.pending
    result = LIFE.void(state, 2, "an invalid message")
    assert result.outcome is Outcome.REJECTED
    assert [e.sequence for e in result.applied] == [3]
    assert state.last_seq == 3 and state.status is Status.RESOLVED
    assert LIFE.apply(state, e4).outcome is Outcome.APPLIED
    # The real event 2 arriving afterwards is a conflict with the void.
    late = event("processing", sequence=2)
    assert LIFE.apply(state, late).outcome is Outcome.REJECTED


def test_a_void_ahead_waits_in_line_and_counts_no_event() -> None:
    e1, e2, e3, _ = lifecycle()
    state, _ = run([e1])
    LIFE.void(state, 3, "an invalid message")
    assert state.waiting_events == 0 and 3 in state.pending
    result = LIFE.apply(state, e2)
    assert [e.sequence for e in result.applied] == [2]
    assert state.last_seq == 3
    assert LIFE.apply(state, e3).outcome is Outcome.REJECTED  # sequence 3 went to the void


def test_release_ends_a_gap_and_flags_the_dossier() -> None:
    e1, e2, e3, e4 = lifecycle()
    state, _ = run([e1, e3, e4])
    assert state.waiting_events == 2
    result = LIFE.release(state)
    assert [e.sequence for e in result.applied] == [3, 4]
    assert state.last_seq == 4 and not state.pending
    assert "gap_released" in state.flags
    assert LIFE.apply(state, e2).outcome is Outcome.REJECTED


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


def test_state_values_put_back_every_field() -> None:
    # Every field set to a value its default does not have: a field left out of
    # `state_values` would not be put back.
    at = datetime(2025, 9, 22, 8, tzinfo=VN_TZ)
    state = DossierState(
        "HP-1",
        agency="SO-YTE",
        level="city",
        field="health",
        procedure="P-1",
        channel=ChannelKind.POST,
        status=Status.IN_PROCESS,
        last_seq=3,
        received_at=at,
        appointment_at=at + timedelta(days=1),
        due_at=at + timedelta(days=2),
        paused_at=at + timedelta(days=3),
        supplements=1,
        limit_value=5,
        limit_unit=TimeUnit.WORKING_DAYS,
        apology_at=at + timedelta(days=4),
        resolved_at=at + timedelta(days=5),
        closed_at=at + timedelta(days=6),
        last_at=at + timedelta(days=7),
        prints=b"\x01" * 24,
        flags=frozenset({"time_clamped"}),
        pending={5: Void(5, "an invalid message")},
    )
    other = DossierState("HP-2")
    for f in dataclasses.fields(DossierState):
        assert getattr(state, f.name) != getattr(other, f.name), f.name
    restore_state(other, state_values(state))
    for f in dataclasses.fields(DossierState):
        assert getattr(other, f.name) is getattr(state, f.name), f.name


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"procedure": {"code": "1.004616", "field": "education"}},
            "conflict: procedure 1.004616 (education) is not the dossier's 1.004616 (health)",
        ),
        (
            {"procedure": {"code": "2.000001", "field": "health"}},
            "conflict: procedure 2.000001 (health) is not the dossier's 1.004616 (health)",
        ),
        (
            {"channel": "online", "online_mode": "partial"},
            "conflict: channel online_partial is not the dossier's online_full",
        ),
        (
            {"agency": {"code": "SO-TU-PHAP", "level": "city"}},
            "conflict: agency SO-TU-PHAP is not the dossier's SO-YTE "
            "(a move between agencies is a 'transferred' event)",
        ),
        ({}, None),  # the dossier's own procedure, channel and agency
    ],
)
def test_an_event_of_another_procedure_channel_or_agency_is_a_conflict(
    overrides: dict, reason: str | None
) -> None:
    first = lifecycle()[0]
    state, _ = run([first])
    result = LIFE.apply(state, event("processing", sequence=2, **overrides))
    if reason is None:
        assert result.outcome is Outcome.APPLIED and state.last_seq == 2
    else:
        assert result.outcome is Outcome.REJECTED and not result.consumed
        assert result.rejected[0][1] == reason and state.last_seq == 1


def test_the_level_and_field_kept_are_the_enum_values_themselves() -> None:
    # Plain strings, one object shared by every dossier (not the enum members).
    state, _ = run(lifecycle()[:1])
    assert state.level is AgencyLevel.CITY.value and state.field is ProcedureField.HEALTH.value
    moved = event("transferred", sequence=2, agency={"code": "UBND-XA-1", "level": "commune"})
    assert LIFE.apply(state, moved).outcome is Outcome.APPLIED
    assert (state.agency, state.level) == ("UBND-XA-1", "commune")
    assert state.level is AgencyLevel.COMMUNE.value


def test_a_fingerprint_is_the_digest_of_the_events_canonical_json_without_emitted_at() -> None:
    # Fingerprints are kept in the changelog (`DossierState.prints`): a resend checked
    # after an upgrade must give the bytes stored before it. So the canonical form is
    # written out here, not derived: fields in contract order, emitted_at left out,
    # codes and enums as their JSON values, times with their written offsets (Z as +00:00).
    doc = event_doc(
        "accepted",
        event_id="0b8f1a52-7d4e-4c8e-9a53-2f0d7f4c1e90",
        occurred_at="2025-07-01T08:30:00+07:00",
        emitted_at="2025-07-01T08:30:02+07:00",
        appointment_at="2025-07-08T10:00:00Z",
    )
    canonical = (
        '{"schema_version":1,"event_id":"0b8f1a52-7d4e-4c8e-9a53-2f0d7f4c1e90",'
        '"dossier_id":"HP-SO-YTE-2510-000001","sequence":1,"event_type":"accepted",'
        '"status":2,"occurred_at":"2025-07-01T08:30:00+07:00",'
        '"agency":{"code":"SO-YTE","level":"city"},'
        '"procedure":{"code":"1.004616","field":"health"},"channel":"online",'
        '"online_mode":"full","time_limit":{"value":5,"unit":"working_days"},'
        '"appointment_at":"2025-07-08T10:00:00+00:00","clock":null,"reason":null,'
        '"apology_appointment_at":null}'
    )
    expected = hashlib.blake2b(canonical.encode(), digest_size=8).digest()
    registry = AgencyRegistry.default()
    read_from_text = parse_event(orjson.dumps(doc), registry)
    read_from_doc = parse_event(doc, registry)
    assert fingerprint(read_from_text) == expected
    assert fingerprint(read_from_doc) == expected
    # emitted_at aside: a resend stamped later has the same fingerprint.
    resent = parse_event(orjson.dumps({**doc, "emitted_at": "2025-07-01T09:00:00+07:00"}))
    assert fingerprint(resent) == expected
