"""The dossier store of one partition: redelivery, counts, changelog round trip."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from stream_apps.book import PartitionBook
from stream_apps.store import META_KEY, PartitionStore, Verdict
from tests.factories import T0, event, lifecycle

CALENDAR = WorkingCalendar()


def store() -> PartitionStore:
    return PartitionStore(0, Lifecycle(calendar_resume(CALENDAR)), AgencyRegistry.default())


def book() -> PartitionBook:
    return PartitionBook(CALENDAR, second_supplement_late=True)


def raw(ev: Any) -> bytes:
    return ev.model_dump_json().encode()


def conserved(counts: dict[str, int]) -> bool:
    parts = ("applied", "duplicates", "pending", "dead_lettered")
    return counts["events_in"] == sum(counts[k] for k in parts)


def test_every_message_lands_in_exactly_one_count() -> None:
    s, b = store(), book()
    e1, e2, e3, e4 = lifecycle()
    messages = [raw(e1), raw(e3), raw(e1), b"not json", raw(e2), raw(e4), raw(e4)]
    verdicts = [s.process(i, None, m, b)[0] for i, m in enumerate(messages)]
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
    }


def test_a_redelivered_message_is_skipped_and_not_counted_again() -> None:
    s, b = store(), book()
    e1, e2, *_ = lifecycle()
    s.process(10, None, raw(e1), b)
    s.process(11, None, raw(e2), b)
    s.process(12, None, b"garbage", b)
    before = s.counts()
    # The worker crashed after applying offsets 10-12 but before committing them.
    assert s.process(10, None, raw(e1), b)[0] is Verdict.REDELIVERY
    assert s.process(11, None, raw(e2), b)[0] is Verdict.REDELIVERY
    assert s.process(12, None, b"garbage", b)[0] is Verdict.REDELIVERY
    assert s.counts() == before
    # A genuinely new message with an old event is a duplicate, and is counted.
    assert s.process(13, None, raw(e2), b)[0] is Verdict.DUPLICATE
    assert s.counts()["duplicates"] == before["duplicates"] + 1


def test_impossible_transitions_are_dead_lettered_with_the_original_bytes() -> None:
    s, b = store(), book()
    message = raw(event("resolved", dossier_id="Z"))
    verdict, letters = s.process(0, b"Z", message, b)
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
            s.process(offset, None, raw(ev), b)
            offset += 1
        if i % 5 == 4:
            changelog += s.take_changes()  # a checkpoint every few dossiers
    s.process(offset, None, b"junk", b)
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


def test_changes_are_taken_once() -> None:
    s, b = store(), book()
    s.process(0, None, raw(event()), b)
    assert len(s.take_changes()) == 2  # the dossier and the meta (event clock moved)
    assert s.take_changes() == []
