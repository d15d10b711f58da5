"""The dossier store of one partition: redelivery, counts, changelog round trip."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import orjson
import pytest

from domain.calendar import WorkingCalendar
from domain.lifecycle import ChannelKind, DossierState, Lifecycle, Void, calendar_resume
from schemas.enums import Status, TimeUnit
from schemas.registry import AgencyRegistry
from stream_apps.book import PartitionBook, new_partition_book
from stream_apps.store import (
    META_KEY,
    DossierRecord,
    PartitionStore,
    Verdict,
    decode_record,
    encode_record,
)
from tests.factories import T0, event, lifecycle

CALENDAR = WorkingCalendar()
NOW = (T0 + timedelta(days=400)).timestamp()  # the wall clock: after every test event


def store() -> PartitionStore:
    return PartitionStore(0, Lifecycle(calendar_resume(CALENDAR)), AgencyRegistry.default())


def book() -> PartitionBook:
    return new_partition_book(CALENDAR, second_supplement_late=True)


def key(ev: Any) -> bytes:
    return str(ev.dossier_id).encode()


def raw(ev: Any) -> bytes:
    return ev.model_dump_json().encode()


def conserved(counts: dict[str, int]) -> bool:
    parts = ("applied", "duplicates", "pending", "dead_lettered")
    return counts["events_in"] == sum(counts[k] for k in parts)


def test_every_message_lands_in_exactly_one_count() -> None:
    s, b = store(), book()
    e1, e2, e3, e4 = lifecycle()
    messages = [raw(e1), raw(e3), raw(e1), b"not json", raw(e2), raw(e4), raw(e4)]
    k = key(e1)
    verdicts = [s.process(i, k, m, b, now=NOW)[0] for i, m in enumerate(messages)]
    assert verdicts == [
        Verdict.APPLIED,
        Verdict.PENDING,
        Verdict.DUPLICATE,
        Verdict.DEAD_LETTER,
        Verdict.APPLIED,
        Verdict.APPLIED,
        Verdict.DUPLICATE,
    ]
    assert s.counts() == {
        "events_in": 7,
        "applied": 4,
        "duplicates": 2,
        "pending": 0,
        "dead_lettered": 1,
        "stuck_dossiers": 0,
        "flagged_dossiers": 0,
    }


def test_a_redelivered_message_is_skipped_and_not_counted_again() -> None:
    s, b = store(), book()
    e1, e2, *_ = lifecycle()
    s.process(10, key(e1), raw(e1), b, now=NOW)
    s.process(11, key(e2), raw(e2), b, now=NOW)
    s.process(12, None, b"garbage", b, now=NOW)
    before = s.counts()
    # The worker crashed after applying offsets 10-12 but before committing them.
    assert s.process(10, key(e1), raw(e1), b, now=NOW)[0] is Verdict.REDELIVERY
    assert s.process(11, key(e2), raw(e2), b, now=NOW)[0] is Verdict.REDELIVERY
    assert s.process(12, None, b"garbage", b, now=NOW)[0] is Verdict.REDELIVERY
    assert s.counts() == before
    # A genuinely new message with an old event is a duplicate, and is counted.
    assert s.process(13, key(e2), raw(e2), b, now=NOW)[0] is Verdict.DUPLICATE
    assert s.counts()["duplicates"] == before["duplicates"] + 1


def test_impossible_transitions_are_dead_lettered_with_the_original_bytes() -> None:
    s, b = store(), book()
    message = raw(event("resolved", dossier_id="Z"))
    verdict, letters = s.process(0, b"Z", message, b, now=NOW)
    assert verdict is Verdict.DEAD_LETTER
    assert letters[0].value == message and "impossible transition" in letters[0].reason
    assert conserved(s.counts())


def test_restoring_from_the_changelog_gives_the_same_states_counts_and_figures() -> None:
    s, b = store(), book()
    offset = 0
    changelog: list[tuple[bytes, bytes]] = []
    for i in range(20):
        steps = ("accepted", "processing", "resolved") if i % 3 else ("accepted",)
        for ev in lifecycle(f"R{i}", steps=steps, gap=timedelta(days=i + 1)):
            s.process(offset, key(ev), raw(ev), b, now=NOW)
            offset += 1
        if i % 5 == 4:
            changelog += s.take_changes()  # a checkpoint every few dossiers
    s.process(offset, None, b"junk", b, now=NOW)
    changelog += s.take_changes()
    assert changelog[-1][0] == META_KEY
    restored = store()
    restored.restore(changelog)
    assert restored.counts() == s.counts()
    assert {k: r.state for k, r in restored.records.items()} == {
        k: r.state for k, r in s.records.items()
    }
    rebuilt = book()
    for state in restored.states():
        rebuilt.move(None, rebuilt.facts(state))
    t = int((T0 + timedelta(days=60)).timestamp())
    assert {sc: rebuilt.snapshot(sc, t) for sc in rebuilt.scopes()} == {
        sc: b.snapshot(sc, t) for sc in b.scopes()
    }


def test_a_restore_in_runs_and_a_stepped_rebuild_give_the_same_figures() -> None:
    s = PartitionStore(
        0, Lifecycle(calendar_resume(CALENDAR)), AgencyRegistry.default(), clock_mode="event"
    )
    b = book()
    offset = 0
    latest = T0
    for i in range(23):
        steps = ("accepted", "processing", "resolved") if i % 3 else ("accepted",)
        for ev in lifecycle(f"S{i}", steps=steps, gap=timedelta(days=i + 1)):
            s.process(offset, key(ev), raw(ev), b, now=NOW)
            offset += 1
            latest = max(latest, ev.occurred_at)
    changelog = s.take_changes()
    # A record deleted by a tombstone is gone after the restore.
    some_record = next(v for k, v in changelog if k != META_KEY)
    changelog += [(b"GONE-1", some_record), (b"GONE-1", None)]
    restored = PartitionStore(
        0, Lifecycle(calendar_resume(CALENDAR)), AgencyRegistry.default(), clock_mode="event"
    )
    for i in range(0, len(changelog), 4):
        restored.restore_records(changelog[i : i + 4])
    restored.end_restore()
    assert restored.counts() == s.counts()
    assert set(restored.records) == set(s.records)
    clock = restored.restored_clock(now=NOW)
    assert clock == int(latest.timestamp())  # the event clock, not the wall clock
    rebuilt = book()
    steps = list(restored.seeding(rebuilt, now=clock, keep_hours_from=None, step=5))
    assert steps == [5, 10, 15, 20, 23]
    for t in (clock, clock + 7 * 86400):
        assert {sc: rebuilt.snapshot(sc, t) for sc in rebuilt.scopes()} == {
            sc: b.snapshot(sc, t) for sc in b.scopes()
        }


def test_the_restored_clock_of_a_live_store_is_the_wall_clock() -> None:
    s = store()
    assert s.restored_clock(now=NOW) == int(NOW)
    event_store = PartitionStore(0, Lifecycle(calendar_resume(CALENDAR)), clock_mode="event")
    assert event_store.restored_clock(now=NOW) is None  # nothing applied yet


def test_changes_are_taken_once() -> None:
    s, b = store(), book()
    s.process(0, key(event()), raw(event()), b, now=NOW)
    assert len(s.take_changes()) == 2  # the dossier and the meta (event clock moved)
    assert s.take_changes() == []


# -- no input stops the store ------------------------------------------------------------


def test_an_event_the_calendar_cannot_judge_is_dead_lettered_and_the_next_one_applies() -> None:
    narrow = PartitionStore(
        0, Lifecycle(calendar_resume(WorkingCalendar(years=range(2025, 2026)))), None
    )
    b = new_partition_book(WorkingCalendar(years=range(2025, 2026)), second_supplement_late=True)
    poison = event("accepted", dossier_id="P1", appointment_at="2031-06-02T17:00:00+07:00")
    good = event("accepted", dossier_id="G1")
    verdict, letters = narrow.process(0, key(poison), raw(poison), b, now=NOW)
    assert verdict is Verdict.DEAD_LETTER
    assert "CalendarError" in letters[0].reason and letters[0].value == raw(poison)
    assert narrow.records["P1"].state.received_at is None  # nothing of it was kept
    assert narrow.process(1, key(good), raw(good), b, now=NOW)[0] is Verdict.APPLIED
    assert b.snapshot("city", int(NOW)).open_now == 1
    assert conserved(narrow.counts())


def test_a_supplement_answered_before_it_was_asked_is_applied_at_the_later_time() -> None:
    s, b = store(), book()
    e1 = event("accepted")
    e2 = event("supplement_requested", sequence=2, at=T0 + timedelta(days=2))
    e3 = event("supplement_received", sequence=3, at=T0 + timedelta(days=1))
    verdicts = [s.process(i, key(e), raw(e), b, now=NOW)[0] for i, e in enumerate((e1, e2, e3))]
    assert verdicts == [Verdict.APPLIED] * 3
    state = s.records[e1.dossier_id].state
    assert state.paused_at is None and "time_clamped" in state.flags
    assert s.counts()["flagged_dossiers"] == 1
    assert s.feed_issues() == {"SO-YTE": {"stuck": {}, "flagged": {e1.dossier_id: "time_clamped"}}}


def test_a_figures_failure_is_undone_and_dead_lettered() -> None:
    class Broken:  # the figures port, failing on a resolution (a wrapper: the compiled
        # core's classes take no Python subclasses)
        def __init__(self, inner: PartitionBook) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def move(self, before: Any, after: Any) -> None:
            if after is not None and after.resolved_at is not None:
                raise RuntimeError("figures broke")
            self.inner.move(before, after)

    s, b = store(), Broken(book())
    e1, e2, e3, _ = lifecycle()
    for i, e in enumerate((e1, e2)):
        s.process(i, key(e), raw(e), b, now=NOW)
    state = s.records[e1.dossier_id].state
    fields = [f.name for f in dataclasses.fields(DossierState)]
    before = {name: getattr(state, name) for name in fields}
    verdict, letters = s.process(2, key(e3), raw(e3), b, now=NOW)
    assert verdict is Verdict.DEAD_LETTER and "RuntimeError: figures broke" in letters[0].reason
    state = s.records[e1.dossier_id].state
    assert state.last_seq == 2 and state.resolved_at is None
    assert {name: getattr(state, name) for name in fields} == before
    assert conserved(s.counts()) and s.counts()["dead_lettered"] == 1


def test_an_invalid_event_with_a_readable_sequence_uses_it_up() -> None:
    s, b = store(), book()
    e1, e2, e3, _ = lifecycle()
    bad = e2.model_dump(mode="json")
    bad["status"] = 9  # processing with status 9: fails the contract
    s.process(0, key(e1), raw(e1), b, now=NOW)
    assert s.process(1, key(e3), raw(e3), b, now=NOW)[0] is Verdict.PENDING
    assert s.counts()["stuck_dossiers"] == 1
    verdict, letters = s.process(2, None, orjson.dumps(bad), b, now=NOW)
    assert verdict is Verdict.DEAD_LETTER
    assert "status" in letters[0].reason and "sequence 2" in letters[0].reason
    assert "used up" in letters[0].reason
    state = s.records[e1.dossier_id].state
    assert state.last_seq == 3 and state.resolved_at == e3.occurred_at
    assert s.counts() == {
        "events_in": 3,
        "applied": 2,
        "duplicates": 0,
        "pending": 0,
        "dead_lettered": 1,
        "stuck_dossiers": 0,
        "flagged_dossiers": 0,
    }


def test_an_event_from_the_future_is_dead_lettered_and_does_not_move_the_event_clock() -> None:
    s, b = store(), book()
    e1 = event("accepted")
    ahead = event("processing", sequence=2, at=T0 + timedelta(days=30))
    s.process(0, key(e1), raw(e1), b, now=e1.occurred_at.timestamp() + 60)
    now = e1.occurred_at.timestamp() + 120
    verdict, letters = s.process(1, key(ahead), raw(ahead), b, now=now)
    assert verdict is Verdict.DEAD_LETTER and letters[0].reason.startswith("future:")
    assert s.meta.max_event_time == e1.occurred_at.timestamp()
    # Within the tolerance, an event slightly ahead of the wall clock is fine.
    close = event("processing", sequence=3, at=T0 + timedelta(minutes=4))
    assert s.process(2, key(close), raw(close), b, now=e1.occurred_at.timestamp())[0] is (
        Verdict.APPLIED
    )


@pytest.mark.parametrize("second", ["processing", "returned"])  # applies, or is impossible
def test_the_event_clock_reaches_the_latest_event_a_filled_gap_applies(second: str) -> None:
    s, b = store(), book()
    e1 = event("accepted")
    e2 = event(second, sequence=2, at=T0 + timedelta(hours=20))
    e3 = event("resolved", sequence=3, at=T0 + timedelta(hours=40))
    s.process(0, key(e1), raw(e1), b, now=NOW)
    assert s.process(1, key(e3), raw(e3), b, now=NOW)[0] is Verdict.PENDING
    s.process(2, key(e2), raw(e2), b, now=NOW)  # fills the gap: e3 applies after it
    assert s.records[e1.dossier_id].state.status is Status.RESOLVED
    assert s.meta.max_event_time == e3.occurred_at.timestamp()


def test_a_duplicate_or_a_rejected_event_does_not_move_the_event_clock() -> None:
    s, b = store(), book()
    e1 = event("accepted")
    s.process(0, key(e1), raw(e1), b, now=NOW)
    late_reject = event("returned", sequence=2, at=T0 + timedelta(days=5))
    s.process(1, key(late_reject), raw(late_reject), b, now=NOW)
    assert s.meta.max_event_time == e1.occurred_at.timestamp()


def test_a_gap_never_filled_is_released_after_the_timeout_and_flagged() -> None:
    s, b = store(), book()
    e1, _, e3, e4 = lifecycle()
    clock = T0.timestamp()
    s.process(0, key(e1), raw(e1), b, now=NOW, clock=clock)
    s.process(1, key(e3), raw(e3), b, now=NOW, clock=clock + 10)
    s.process(2, key(e4), raw(e4), b, now=NOW, clock=clock + 20)
    assert s.counts()["pending"] == 2 and s.counts()["stuck_dossiers"] == 1
    assert s.feed_issues()["SO-YTE"]["stuck"] == {e1.dossier_id: clock + 10}
    assert s.release_gaps(clock + 3600, 3600.0, b) == []  # not yet: 3590 s waiting
    assert s.records[e1.dossier_id].state.last_seq == 1
    s.release_gaps(clock + 3610, 3600.0, b)
    state = s.records[e1.dossier_id].state
    assert state.last_seq == 4 and state.status is Status.RETURNED
    assert s.counts()["pending"] == 0 and s.counts()["applied"] == 3
    assert s.feed_issues() == {"SO-YTE": {"stuck": {}, "flagged": {e1.dossier_id: "gap_released"}}}
    assert conserved(s.counts())


def test_conflicting_events_are_dead_lettered_as_conflicts() -> None:
    s, b = store(), book()
    e1 = event("accepted")
    other_agency = event("accepted", agency={"code": "SO-TP", "level": "city"})
    same_seq_other_content = event("processing", sequence=2)
    s.process(0, key(e1), raw(e1), b, now=NOW)
    s.process(1, key(e1), raw(event("processing", sequence=2)), b, now=NOW)
    for i, message in enumerate((other_agency, same_seq_other_content), start=2):
        verdict, letters = s.process(i, key(message), raw(message), b, now=NOW)
        assert verdict is Verdict.DEAD_LETTER and letters[0].reason.startswith("conflict")
    assert s.counts()["dead_lettered"] == 2 and s.counts()["duplicates"] == 0


def test_new_state_fields_survive_the_changelog() -> None:
    s, b = store(), book()
    e1, _, e3, _ = lifecycle()
    bad = lifecycle()[3].model_dump(mode="json")
    bad["status"] = 1
    s.process(0, key(e1), raw(e1), b, now=NOW, clock=5.0)
    s.process(1, key(e3), raw(e3), b, now=NOW, clock=6.0)
    s.process(2, None, orjson.dumps(bad), b, now=NOW, clock=7.0)  # void at sequence 4
    restored = store()
    restored.restore(s.take_changes())
    state = restored.records[e1.dossier_id].state
    assert state == s.records[e1.dossier_id].state
    assert restored.records[e1.dossier_id].waiting_since == 6.0
    assert restored.counts() == s.counts() and restored.stuck == {e1.dossier_id: 6.0}


def test_a_message_keyed_by_anything_but_its_dossier_id_is_misrouted() -> None:
    s, b = store(), book()
    e1 = event("accepted")
    for k in (b"another-key", None):
        verdict, letters = s.process(0 if k else 1, k, raw(e1), b, now=NOW)
        assert verdict is Verdict.DEAD_LETTER and letters[0].reason.startswith("misrouted")
    assert s.records == {} and s.counts()["dead_lettered"] == 2


def test_in_event_time_a_gap_ages_with_its_own_partition_clock() -> None:
    s = PartitionStore(
        0, Lifecycle(calendar_resume(CALENDAR)), AgencyRegistry.default(), clock_mode="event"
    )
    b = book()
    e1, _, e3, _ = lifecycle()
    s.process(0, key(e1), raw(e1), b, now=NOW)
    s.process(1, key(e3), raw(e3), b, now=NOW)  # gap: sequence 2 is missing
    assert s.stuck == {e1.dossier_id: e1.occurred_at.timestamp()}
    # The partition's events move its clock; 50 minutes on, the gap is not yet an hour old.
    other = event("accepted", dossier_id="OTHER-1", at=T0 + timedelta(minutes=50))
    s.process(2, key(other), raw(other), b, now=NOW)
    assert s.release_gaps(None, 3600.0, b) == [] and e1.dossier_id in s.stuck
    later = event("accepted", dossier_id="OTHER-2", at=T0 + timedelta(minutes=61))
    s.process(3, key(later), raw(later), b, now=NOW)
    s.release_gaps(None, 3600.0, b)
    assert s.stuck == {} and "gap_released" in s.records[e1.dossier_id].state.flags


# The record `test_a_record_is_written_as_it_always_was` writes, as the changelog holds it.
GOLDEN = (
    b'{"s":{"id":"HP-SO-YTE-2510-000001","agency":"SO-YTE","level":"city",'
    b'"field":"health","procedure":"1.004616","channel":"online_partial","status":4,'
    b'"seq":2,"supplements":1,"limit":[5,"working_days"],'
    b'"prints":"000102030405060708090a0b0c0d0e0f",'
    b'"received_at":"2025-10-01T08:00:00.250000+07:00",'
    b'"appointment_at":"2025-10-08T08:00:00+07:00",'
    b'"due_at":"2025-10-09T08:00:00+07:00","paused_at":"2025-10-02T08:00:00+07:00",'
    b'"apology_at":"2025-10-10T08:00:00+07:00",'
    b'"resolved_at":"2025-10-03T08:00:00+07:00",'
    b'"closed_at":"2025-10-04T08:00:00+07:00",'
    b'"last_at":"2025-10-01T08:00:00.250000+07:00","flags":["gap_released",'
    b'"time_clamped"],"pending":[{"void":4,"reason":"an invalid message"}]},"o":17,'
    b'"n":[2,0,1],"w":1759280400.5}'
)


def test_a_record_is_written_as_it_always_was() -> None:
    # The changelog's bytes: records written by earlier versions must keep decoding, and
    # a record written now must be the same bytes.
    at = T0 + timedelta(microseconds=250_000)
    state = DossierState(
        "HP-SO-YTE-2510-000001",
        agency="SO-YTE",
        level="city",
        field="health",
        procedure="1.004616",
        channel=ChannelKind.ONLINE_PARTIAL,
        status=Status.IN_PROCESS,
        last_seq=2,
        received_at=at,
        appointment_at=T0 + timedelta(days=7),
        due_at=T0 + timedelta(days=8),
        paused_at=T0 + timedelta(days=1),
        supplements=1,
        limit_value=5,
        limit_unit=TimeUnit.WORKING_DAYS,
        apology_at=T0 + timedelta(days=9),
        resolved_at=T0 + timedelta(days=2),
        closed_at=T0 + timedelta(days=3),
        last_at=at,
        prints=bytes(range(16)),
        flags=frozenset({"time_clamped", "gap_released"}),
    )
    state.wait(4, Void(4, "an invalid message"))
    record = DossierRecord(state, 17, 2, 0, 1, 1759280400.5)
    raw = encode_record(record)
    assert raw == GOLDEN
    assert decode_record(raw) == record
