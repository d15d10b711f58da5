"""The alert engine judges what every partition froze: the spike rule on the hours before
the settled hour, the gauge rules on each hour end's samples in order; nothing changes
until a verdict is committed, and a verdict judged again gives the same ids."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import orjson
import pytest

from domain.alerts import DEFAULT_THRESHOLDS, ID_NAMESPACE
from domain.calendar import VN_TZ, WorkingCalendar
from stream_apps.alerting import AgencyInfo, AlertEngine

HOUR = 3600
AGENCIES = {"SO-YTE": AgencyInfo("city", "Sở Y tế"), "SO-XD": AgencyInfo("city", "Sở Xây dựng")}
YTE, XD = "agency:SO-YTE", "agency:SO-XD"


def vn(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=VN_TZ).timestamp())


def utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def event_id(kind: str, scope: str, opened_at: int, action: str) -> str:
    """docs/alerts.md: `id` = UUIDv5 of `{kind}|{scope}|{opened_at}|{action}`."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{kind}|{scope}|{opened_at}|{action}"))


def incident_id(kind: str, scope: str, opened_at: int) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{kind}|{scope}|{opened_at}"))


def engine() -> AlertEngine:
    return AlertEngine(DEFAULT_THRESHOLDS, WorkingCalendar(), AGENCIES.get)


Samples = Mapping[str, Mapping[int, Sequence[int]]]


# -- overdue spike -------------------------------------------------------------------------

# Wed 15 Oct 2025, 09:00 Vietnam time: a working bucket of a working day.
BURST = vn(2025, 10, 15, 9)
COVERS = vn(2025, 8, 1)  # far enough back for the window and all 20 baseline blocks


def test_the_spike_rule_sees_only_the_hours_before_the_settled_hour() -> None:
    e = engine()
    # Six dossiers became overdue at 09:00 (and six more at 10:00, frozen by some
    # partitions already); no history before: median 0, open level min_count = 5.
    hours = {
        YTE: ({BURST: 6, BURST + HOUR: 6}, COVERS),
        "field:health": ({BURST: 60}, COVERS),  # fields have no spike alert
    }
    first = e.judge(BURST, hours, {})
    assert first.events == []  # 09:00 is not over: its count is not final yet
    assert set(first.states) == {f"overdue_spike|{YTE}"}
    e.commit(first)
    second = e.judge(BURST + HOUR, hours, {})
    [opened] = second.events
    assert opened.id == event_id("overdue_spike", YTE, BURST, "opened")
    assert opened.incident_id == incident_id("overdue_spike", YTE, BURST)
    assert (opened.kind, opened.action, opened.severity) == ("overdue_spike", "opened", "critical")
    assert opened.at == opened.opened_at == utc(BURST)
    assert (opened.scope, opened.agency, opened.agency_name) == (YTE, "SO-YTE", "Sở Y tế")
    # The window: the 11 duty buckets ending at Wed 09:00 are Tue 10:00 ... 17:00, the
    # closing bucket Wed 00:00, Wed 08:00 and 09:00; the 10:00 burst is not in it yet.
    assert opened.figures == {
        "became_overdue": 6,
        "window_from": vn(2025, 10, 14, 10),
        "window_to": BURST,
        "window_buckets": 11,
    }
    assert opened.baseline["open_level"] == 5 and opened.baseline["close_line"] == 2
    assert opened.baseline["blocks"] == 20


def test_counts_of_the_settled_hour_do_not_add_to_the_window() -> None:
    # 3 at 09:00 and 3 more at 10:00: 6 in the window of 10:00 once 10:00 is over, but
    # judged at 10:00 only the 3 of 09:00 are final.
    hours = {YTE: ({BURST: 3, BURST + HOUR: 3}, COVERS)}
    assert engine().judge(BURST + HOUR, hours, {}).events == []
    [opened] = engine().judge(BURST + 2 * HOUR, hours, {}).events
    # A new state starts at the first hour the series covers and judges every hour since,
    # as a worker reading live would have: the window of 10:00 holds both, 6 >= 5, so the
    # incident opens at 10:00 even though the first judgement comes at 11:00.
    assert opened.id == event_id("overdue_spike", YTE, BURST + HOUR, "opened")
    assert opened.figures["became_overdue"] == 6


# -- near-due backlog and online target -----------------------------------------------------

T1, T2, T3 = vn(2025, 10, 15, 10), vn(2025, 10, 15, 11), vn(2025, 10, 15, 12)


@pytest.mark.parametrize(
    ("second", "actions"),
    [
        (10, ["opened", "cleared"]),  # at close_at (10): cleared
        (11, ["opened"]),  # above close_at: still open
    ],
)
def test_near_due_samples_are_judged_in_hour_order(second: int, actions: list[str]) -> None:
    e = engine()
    # Given out of order: the engine judges the hour ends in time order.
    verdict = e.judge(T3, {}, {YTE: {T2: [second], T1: [20]}})  # 20 = open_at
    assert [ev.action for ev in verdict.events] == actions
    assert [ev.at for ev in verdict.events] == [utc(T1), utc(T2)][: len(actions)]
    assert [ev.id for ev in verdict.events] == [
        event_id("near_due_backlog", YTE, T1, a) for a in actions
    ]
    assert {ev.incident_id for ev in verdict.events} == {incident_id("near_due_backlog", YTE, T1)}
    assert all(ev.opened_at == utc(T1) and ev.severity == "warning" for ev in verdict.events)


def test_online_target_is_judged_only_on_samples_with_received_counts() -> None:
    e = engine()
    m1, m2 = vn(2025, 10, 15), vn(2025, 10, 16)  # two Vietnam midnights
    samples = {
        XD: {m1: [0, 100, 50], m2: [0, 100, 50]},  # 50% online, below 80% for a day
        YTE: {m1: [0], m2: [0]},  # no target sample
    }
    verdict = e.judge(m2, {}, samples)
    [opened] = verdict.events
    assert opened.id == event_id("online_target", XD, m2, "opened")
    assert (opened.kind, opened.at, opened.agency_name) == ("online_target", utc(m2), "Sở Xây dựng")
    assert opened.figures["received"] == 100 and opened.figures["online"] == 50
    assert opened.figures["below_since"] == m1
    assert f"online_target|{XD}" in verdict.states
    assert f"online_target|{YTE}" not in verdict.states
    assert f"near_due_backlog|{YTE}" in verdict.states


# -- commit, replay, persistence -------------------------------------------------------------


def test_nothing_changes_until_commit_and_commit_tracks_the_open_alerts() -> None:
    e = engine()
    opening = e.judge(T1, {}, {YTE: {T1: [25]}})
    assert e.states == {} and e.open_events == {}
    e.commit(opening)
    key = f"near_due_backlog|{YTE}"
    assert e.states[key].status == "open" and e.states[key].opened_at == T1
    opened_id = incident_id("near_due_backlog", YTE, T1)
    assert list(e.open_events) == [opened_id]
    stored = orjson.loads(e.open_events[opened_id])
    assert stored["id"] == event_id("near_due_backlog", YTE, T1, "opened")
    assert stored["action"] == "opened"
    clearing = e.judge(T2, {}, {YTE: {T2: [3]}})
    e.commit(clearing)
    assert e.open_events == {}
    assert e.states[key].status == "closed" and e.states[key].cooldown_until == T2 + HOUR


def test_an_incident_opened_and_cleared_in_one_verdict_leaves_no_open_alert() -> None:
    e = engine()
    e.commit(e.judge(T2, {}, {YTE: {T1: [25], T2: [0]}}))
    assert e.open_events == {}


def test_a_verdict_not_committed_is_judged_again_with_the_same_ids() -> None:
    samples = {YTE: {T1: [25], T2: [15], T3: [5]}, XD: {T2: [30]}}
    e = engine()
    first = e.judge(T3, {}, samples)
    again = e.judge(T3, {}, samples)  # the worker crashed before storing the first
    expected = [
        event_id("near_due_backlog", XD, T2, "opened"),
        event_id("near_due_backlog", YTE, T1, "opened"),
        event_id("near_due_backlog", YTE, T1, "cleared"),
    ]
    assert sorted(ev.id for ev in first.events) == sorted(expected)
    assert [ev.id for ev in again.events] == [ev.id for ev in first.events]
    assert again.states == first.states
    # Judged hour by hour instead, the same ids come out.
    stepwise = engine()
    ids = []
    for g in (T1, T2, T3):
        verdict = stepwise.judge(g, {}, {s: {g: v[g]} for s, v in samples.items() if g in v})
        stepwise.commit(verdict)
        ids += [ev.id for ev in verdict.events]
    assert sorted(ids) == sorted(expected)


def test_the_stored_form_loads_back_and_continues_the_same() -> None:
    e = engine()
    e.commit(e.judge(T1, {}, {YTE: {T1: [25]}, XD: {T1: [2]}}))
    states, opened = e.stored_form()
    assert orjson.loads(states[f"near_due_backlog|{YTE}"]) == {
        "v": 1,
        "kind": "near_due_backlog",
        "scope": YTE,
        "status": "open",
        "opened_at": T1,
        "changed_at": T1,
        "cooldown_until": None,
        "evaluated_at": T1,
        "resume_at": None,
        "below_since": None,
    }
    back = engine()
    back.load(states, opened)
    assert back.loaded and back.states == e.states and back.open_events == e.open_events
    nxt = {YTE: {T2: [1]}}
    assert [ev.id for ev in back.judge(T2, {}, nxt).events] == [
        event_id("near_due_backlog", YTE, T1, "cleared")
    ]
    assert back.judge(T2, {}, nxt).events == e.judge(T2, {}, nxt).events


def test_drop_scopes_forgets_the_states_and_open_alerts_of_other_scopes() -> None:
    e = engine()
    e.commit(e.judge(T1, {}, {YTE: {T1: [25]}, XD: {T1: [40]}}))
    assert len(e.open_events) == 2
    e.drop_scopes(lambda scope: scope == XD)
    assert set(e.states) == {f"near_due_backlog|{XD}"}
    assert list(e.open_events) == [incident_id("near_due_backlog", XD, T1)]
