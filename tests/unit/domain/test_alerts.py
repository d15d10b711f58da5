"""Alert rules: hand-computed spikes, targets and near-due backlogs, replays and settings.

Every expected instant below is worked out by hand from the rules in the docstring of
domain/alerts.py (and docs/alerts.md), with the default thresholds unless a test says
otherwise: spike open level O = max(5, ceil(m + 4s)), close line C = floor(m + 2s),
s = max(1.4826 * MAD, sqrt(m), 1), windows and blocks of N = 11 duty buckets (08:00 ...
17:00 and the 00:00 closing bucket of each working day).

The calendar in March and April 2026 up to 10 April: every Monday to Friday is a working
day, no Saturday or Sunday is (checked by `test_premise_calendar`). Series put every
became-overdue instant at the start of its hour bucket, so the series at T is simply
the buckets starting at or before T.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts import (
    DEFAULT_THRESHOLDS,
    ID_NAMESPACE,
    AlertAction,
    AlertConfigError,
    AlertInputError,
    AlertKind,
    AlertState,
    AlertStatus,
    AlertThresholds,
    NearDueInput,
    NearDueThresholds,
    ScopeThresholds,
    Severity,
    SpikeInput,
    SpikeThresholds,
    TargetInput,
    TargetThresholds,
    Transition,
    _judge,
    duty_buckets,
    evaluate,
    parse_thresholds,
)
from domain.calendar import VN_TZ, WorkingCalendar

CAL = WorkingCalendar()
SCOPE = "agency:11311"
H = 3600


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch seconds of a Vietnam wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=VN_TZ).timestamp())


COVERS = vn(2026, 3, 1)  # the series below are known from 1 March 2026


def days(first: date, last: date) -> Iterable[date]:
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


def quiet_series(per_night: int = 1) -> dict[int, int]:
    """`per_night` dossiers fall due at 00:00 after every weekday from 2 March to 10 April."""
    series: dict[int, int] = {}
    for d in days(date(2026, 3, 2), date(2026, 4, 10)):
        if d.weekday() < 5:
            nxt = d + timedelta(days=1)
            series[vn(nxt.year, nxt.month, nxt.day)] = per_night
    return series


def spike_series() -> dict[int, int]:
    """The quiet series, plus 2 dossiers falling due in each hour 10:00-14:00 of Wed 8 April."""
    series = quiet_series()
    for hour in range(10, 15):
        series[vn(2026, 4, 8, hour)] = 2
    return series


def hourly(first: int, last: int, minute: int = 30) -> list[int]:
    """Every hour's minute `minute` from the hour of `first` to that of `last`."""
    return list(range(first + minute * 60, last + 1, H))


def run_spike(
    series: Mapping[int, int],
    times: Iterable[int],
    *,
    thresholds: AlertThresholds = DEFAULT_THRESHOLDS,
    state: AlertState | None = None,
    covers_from: int = COVERS,
) -> tuple[AlertState, list[Transition]]:
    st = state or AlertState.new(AlertKind.OVERDUE_SPIKE, SCOPE)
    out: list[Transition] = []
    for t in times:
        visible = {h: c for h, c in series.items() if h <= t}
        st, trs = evaluate(
            st, t, SpikeInput(visible, covers_from), thresholds=thresholds, calendar=CAL
        )
        out.extend(trs)
    return st, out


def spike_thresholds(**kw: Any) -> AlertThresholds:
    return AlertThresholds(defaults=ScopeThresholds(overdue_spike=SpikeThresholds(**kw)))


def brief(trs: Iterable[Transition]) -> list[tuple[str, int]]:
    return [(tr.action.value, tr.at) for tr in trs]


WEEK = hourly(vn(2026, 4, 8, 0), vn(2026, 4, 10, 23, 59))  # Wed 8 April 00:30 ... Fri 23:30


def test_premise_calendar() -> None:
    for d in days(date(2026, 3, 1), date(2026, 4, 12)):
        assert CAL.is_working_day(d) == (d.weekday() < 5), d


# -- duty buckets -----------------------------------------------------------------------


def test_duty_buckets_of_a_working_day() -> None:
    expected = [vn(2026, 4, 8, h) for h in range(8, 18)] + [vn(2026, 4, 9)]
    assert duty_buckets(CAL, date(2026, 4, 8)) == expected


@pytest.mark.parametrize(
    "d",
    [date(2026, 4, 11), date(2026, 4, 12), date(2026, 4, 30), date(2026, 9, 2)],
    ids=["saturday", "sunday", "30-april", "national-day"],
)
def test_days_off_have_no_duty_buckets(d: date) -> None:
    assert duty_buckets(CAL, d) == []


# -- overdue spikes -----------------------------------------------------------------------


def test_spike_opens_once_at_the_hand_computed_hour_and_clears_once() -> None:
    # Baseline: every block of 11 duty buckets holds exactly one 00:00 bucket (count 1):
    # m = 1, MAD = 0, s = max(0, sqrt(1), 1) = 1, O = max(5, 1 + 4) = 5, C = 1 + 2 = 3.
    # Window on Wed 8 April: 10:00 -> 1 + 2 = 3; 11:00 -> 1 + 2 + 2 = 5 >= O: opens at 11:00.
    # The 2s leave the window one working day later: Thu 9 April 13:00 holds Wed 14:00-17:00
    # (2), Thu 00:00 (1), Thu 08:00-13:00 (0) = 3 <= C; block 1 then holds 9, the median
    # stays 1. Bucket 13:00 is complete at 14:00: cleared at 14:00.
    state, trs = run_spike(spike_series(), WEEK)
    assert brief(trs) == [("opened", vn(2026, 4, 8, 11)), ("cleared", vn(2026, 4, 9, 14))]
    opened, cleared = trs
    assert opened.kind is AlertKind.OVERDUE_SPIKE and opened.scope == SCOPE
    assert opened.severity is Severity.CRITICAL
    assert dict(opened.figures) == {
        "became_overdue": 5,
        "window_from": vn(2026, 4, 7, 12),
        "window_to": vn(2026, 4, 8, 11),
        "window_buckets": 11,
    }
    assert dict(opened.baseline) == {
        "blocks": 20,
        "median": "1.000000",
        "mad": "0.000000",
        "spread": "1.000000",
        "open_level": 5,
        "close_line": 3,
    }
    assert cleared.opened_at == opened.at == opened.opened_at
    assert cleared.figures["became_overdue"] == 3
    assert cleared.figures["window_to"] == vn(2026, 4, 9, 13)
    assert cleared.incident_id == opened.incident_id
    assert state.status is AlertStatus.CLOSED
    assert state.cooldown_until == vn(2026, 4, 9, 14) + 6 * H


def test_spike_stays_open_between_the_close_line_and_the_open_level() -> None:
    # One dossier in each hour 10:00-17:00 of Wed 8 April. Window on Wed: 12:00 -> 1 + 3 = 4,
    # 13:00 -> 1 + 4 = 5 >= O: opens at 13:00. On Thu 9 April the window holds Wed (h+1)-17,
    # Thu 00:00 (1) and Thu 08-h (0): 13:00 -> 4 + 1 = 5, 14:00 -> 3 + 1 = 4, which is below
    # O = 5 but above C = 3 (block 1 holds 6, the median stays 1): still open. 15:00 ->
    # 2 + 1 = 3 <= C, complete at 16:00: cleared at 16:00.
    series = quiet_series()
    for hour in range(10, 18):
        series[vn(2026, 4, 8, hour)] = 1
    _, trs = run_spike(series, WEEK)
    assert brief(trs) == [("opened", vn(2026, 4, 8, 13)), ("cleared", vn(2026, 4, 9, 16))]


def test_spike_ids_are_uuid5_of_kind_scope_and_opening_instant() -> None:
    _, (opened, cleared) = run_spike(spike_series(), WEEK)
    incident = f"overdue_spike|{SCOPE}|{vn(2026, 4, 8, 11)}"
    assert opened.incident_id == str(uuid.uuid5(ID_NAMESPACE, incident))
    assert opened.id == str(uuid.uuid5(ID_NAMESPACE, incident + "|opened"))
    assert cleared.id == str(uuid.uuid5(ID_NAMESPACE, incident + "|cleared"))


def test_spike_stays_open_without_repeats_while_evaluated_every_minute() -> None:
    times = list(range(vn(2026, 4, 8, 10, 30), vn(2026, 4, 9, 13, 59), 60))
    state, trs = run_spike(spike_series(), times)
    assert brief(trs) == [("opened", vn(2026, 4, 8, 11))]
    assert state.status is AlertStatus.OPEN


def test_cooldown_prevents_an_immediate_reopen() -> None:
    # 4 more fall due at Thu 9 April 15:00: the window there is Wed 16-17 (0), Thu 00:00 (1)
    # and Thu 15:00 (4) = 5 >= O, and stays 5 at 16:00, 17:00 and Fri 00:00 (Thu's buckets
    # plus Fri 00:00). The clear at 14:00 starts a 6 h cooldown (to 20:00): no opening at
    # 15, 16, 17; the next duty bucket, Fri 00:00, opens. It clears when Thu 15:00 leaves:
    # Fri 15:00 holds Thu 16-17 (0), Fri 00:00 (1) = 1 <= C, complete at 16:00.
    series = spike_series()
    series[vn(2026, 4, 9, 15)] = 4
    _, trs = run_spike(series, WEEK)
    assert brief(trs) == [
        ("opened", vn(2026, 4, 8, 11)),
        ("cleared", vn(2026, 4, 9, 14)),
        ("opened", vn(2026, 4, 10, 0)),
        ("cleared", vn(2026, 4, 10, 16)),
    ]
    # Without a cooldown the same figures reopen at once, at Thu 15:00.
    _, trs = run_spike(series, WEEK, thresholds=spike_thresholds(cooldown_s=0))
    assert brief(trs) == [
        ("opened", vn(2026, 4, 8, 11)),
        ("cleared", vn(2026, 4, 9, 14)),
        ("opened", vn(2026, 4, 9, 15)),
        ("cleared", vn(2026, 4, 10, 16)),
    ]


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, []),  # a quiet commune going 0 -> 1
        (4, []),  # the statistics alone would open at ceil(0 + 4 * 1) = 4: min_count is 5
        (5, [("opened", vn(2026, 4, 8, 10)), ("cleared", vn(2026, 4, 9, 11))]),
    ],
)
def test_quiet_scope_needs_the_minimum_count(count: int, expected: list[tuple[str, int]]) -> None:
    # Baseline all zero: m = 0, MAD = 0, s = max(0, 0, 1) = 1, O = max(5, 4) = 5, C = 2.
    # The bucket Wed 10:00 stays in the window until Thu 09:00; Thu 10:00 holds 0, complete
    # at 11:00.
    series = {vn(2026, 4, 8, 10): count}
    _, trs = run_spike(series, hourly(vn(2026, 4, 8, 0), vn(2026, 4, 9, 23, 59)))
    assert brief(trs) == expected


def test_off_duty_hours_count_neither_in_the_baseline_nor_in_the_window() -> None:
    # 50 at hours where no dossier can fall due: 03:00, 07:00, 18:00, 19:00 of weekdays,
    # Saturday 10:00, Sunday 00:00 and Monday 00:00 (00:00 after a day off). Counted in the
    # baseline they would lift the median far above the spike; counted in the window,
    # Wed 07:00 would open at Wed 08:00. Neither: the same incident as without them.
    series = spike_series()
    for d in days(date(2026, 3, 2), date(2026, 4, 10)):
        if d.weekday() < 5:
            for hour in (3, 7, 18, 19):
                series[vn(d.year, d.month, d.day, hour)] = 50
            if d.weekday() == 0:
                series[vn(d.year, d.month, d.day)] = 50
        elif d.weekday() == 5:
            series[vn(d.year, d.month, d.day, 10)] = 50
        else:
            series[vn(d.year, d.month, d.day)] = 50
    _, trs = run_spike(series, WEEK)
    assert brief(trs) == [("opened", vn(2026, 4, 8, 11)), ("cleared", vn(2026, 4, 9, 14))]


def test_a_burst_at_midnight_opens_at_midnight_and_stays_one_working_day() -> None:
    # 20 dossiers whose appointment date was Wed 8 April fall due at Thu 00:00. Window at
    # Thu 00:00: Wed 08-17 (0) + 20 = 20 >= 5: opens at 00:00. It leaves the window at the
    # next closing bucket, Fri 00:00 (Thu 08-17 + Fri 00:00 = 1 <= 3), complete at 01:00.
    series = quiet_series()
    series[vn(2026, 4, 9)] = 20
    _, trs = run_spike(series, WEEK)
    assert brief(trs) == [("opened", vn(2026, 4, 9, 0)), ("cleared", vn(2026, 4, 10, 1))]


def test_a_busy_scope_is_judged_against_its_own_spread() -> None:
    # Every closing bucket holds 9: m = 9, MAD = 0, s = max(0, sqrt(9), 1) = 3,
    # O = max(5, 9 + 12) = 21, C = floor(9 + 6) = 15. Thu 00:00 with 20 stays below O.
    series = quiet_series(per_night=9)
    series[vn(2026, 4, 9)] = 20
    assert run_spike(series, WEEK)[1] == []
    series[vn(2026, 4, 9)] = 21  # window 21 >= 21: opens at 00:00, leaves at Fri 00:00
    _, trs = run_spike(series, WEEK)
    assert brief(trs) == [("opened", vn(2026, 4, 9, 0)), ("cleared", vn(2026, 4, 10, 1))]
    assert trs[0].baseline["open_level"] == 21 and trs[0].baseline["close_line"] == 15


def test_mad_spread_with_an_even_number_of_blocks() -> None:
    # Closing buckets alternate 2 and 6 (Mon, Wed, Fri: 2; Tue, Thu: 6, by the weekday of
    # the appointment date); a window always holds one closing bucket. The 20 blocks before
    # Wed 8 April 11:00 end on the closings of Mar 10 ... Apr 7 (block k holds the closing
    # of the k-th working day before Apr 7's): 20 working days Mar 10 - Apr 6, 8 Tuesdays
    # and Thursdays (6) and 12 others (2). Sorted: twelve 2s, eight 6s: m = (2 + 2) / 2 = 2,
    # |b - m|: twelve 0s, eight 4s: MAD = 0; s = max(0, sqrt(2), 1) = sqrt(2) ~ 1.414214,
    # O = max(5, ceil(2 + 5.656854)) = 8, C = floor(2 + 2.828427) = 4.
    series: dict[int, int] = {}
    for d in days(date(2026, 3, 2), date(2026, 4, 10)):
        if d.weekday() < 5:
            nxt = d + timedelta(days=1)
            series[vn(nxt.year, nxt.month, nxt.day)] = 6 if d.weekday() in (1, 3) else 2
    # Window at Wed 8 April h holds Wed 00:00 (Tue's closing: 6) plus Wed's own buckets.
    series[vn(2026, 4, 8, 9)] = 1  # 7 at 09:00: below 8
    series[vn(2026, 4, 8, 10)] = 1  # 8 at 10:00: opens
    _, trs = run_spike(series, hourly(vn(2026, 4, 8, 0), vn(2026, 4, 8, 12)))
    assert brief(trs) == [("opened", vn(2026, 4, 8, 10))]
    assert dict(trs[0].baseline) == {
        "blocks": 20,
        "median": "2.000000",
        "mad": "0.000000",
        "spread": "1.414214",
        "open_level": 8,
        "close_line": 4,
    }


@pytest.mark.parametrize(("min_days", "opens"), [(4, True), (5, False)])
def test_spike_waits_for_enough_baseline(min_days: int, opens: bool) -> None:
    # Known from Wed 1 April only: the window at Wed 8 April 11:00 starts Tue 7 April 12:00;
    # block k starts at 12:00 k working days earlier: Apr 6, 3, 2, 1 are covered, Mar 31
    # is not: 4 blocks.
    th = spike_thresholds(baseline_days=20, min_baseline_days=min_days)
    _, trs = run_spike(
        spike_series(),
        hourly(vn(2026, 4, 8, 0), vn(2026, 4, 8, 12)),
        thresholds=th,
        covers_from=vn(2026, 4, 1),
    )
    assert brief(trs) == ([("opened", vn(2026, 4, 8, 11))] if opens else [])


def test_default_baseline_needs_ten_covered_days() -> None:
    _, trs = run_spike(spike_series(), WEEK, covers_from=vn(2026, 4, 1))
    assert trs == []


# -- replay -------------------------------------------------------------------------------


def cooldown_series() -> dict[int, int]:
    series = spike_series()
    series[vn(2026, 4, 9, 15)] = 4
    return series


def test_replay_gives_identical_transitions_and_ids() -> None:
    first = run_spike(cooldown_series(), WEEK)
    second = run_spike(cooldown_series(), WEEK)
    assert first == second
    assert [tr.to_dict() for tr in first[1]] == [tr.to_dict() for tr in second[1]]


@pytest.mark.parametrize("split", [5, 30, 36, 37, 50])
def test_resuming_from_a_serialised_state_matches_an_uninterrupted_run(split: int) -> None:
    whole_state, whole = run_spike(cooldown_series(), WEEK)
    state, head = run_spike(cooldown_series(), WEEK[:split])
    text = json.dumps(state.to_dict())
    restored = AlertState.from_dict(json.loads(text))
    assert restored == state
    end_state, tail = run_spike(cooldown_series(), WEEK[split:], state=restored)
    assert head + tail == whole
    assert end_state == whole_state


@pytest.mark.parametrize("step", [60, 420, 3 * H, 7 * H])
def test_spike_instants_do_not_depend_on_how_often_it_is_evaluated(step: int) -> None:
    # Openings are stamped with their bucket start, clearings with the end of the first
    # complete bucket below the line: every cadence gives the hand-computed four.
    first, last = vn(2026, 4, 8, 0, 30), vn(2026, 4, 10, 23, 30)
    times = [*range(first, last, step), last]
    _, trs = run_spike(cooldown_series(), times)
    _, hourly_run = run_spike(cooldown_series(), WEEK)
    assert trs == hourly_run
    assert brief(trs) == [
        ("opened", vn(2026, 4, 8, 11)),
        ("cleared", vn(2026, 4, 9, 14)),
        ("opened", vn(2026, 4, 10, 0)),
        ("cleared", vn(2026, 4, 10, 16)),
    ]


def test_a_stale_clock_changes_nothing() -> None:
    state, _ = run_spike(spike_series(), WEEK[:20])
    again, trs = evaluate(state, WEEK[10], SpikeInput(spike_series(), COVERS), calendar=CAL)
    assert again is state and trs == []


# -- online target ------------------------------------------------------------------------


def run_target(
    steps: Iterable[tuple[int, int, int]], thresholds: AlertThresholds = DEFAULT_THRESHOLDS
) -> tuple[AlertState, list[Transition]]:
    state = AlertState.new(AlertKind.ONLINE_TARGET, "agency:SO-TC")
    out: list[Transition] = []
    for t, received, online in steps:
        state, trs = evaluate(state, t, TargetInput(received, online), thresholds=thresholds)
        out.extend(trs)
    return state, out


T0 = vn(2026, 4, 1, 9)
TARGET_STEPS = [
    (T0, 100, 79),  # 0.79 < 0.80: a streak starts at T0
    (T0 + 12 * H, 100, 79),  # 12 h < 24 h
    (T0 + 20 * H, 100, 80),  # exactly 0.80 is not below: the streak ends
    (T0 + 21 * H, 101, 80),  # 0.792: a new streak from T0 + 21 h
    (T0 + 44 * H, 110, 85),  # 23 h: not yet
    (T0 + 45 * H, 110, 85),  # 24 h below: opens
    (T0 + 46 * H, 100, 81),  # 0.81: between target and 0.82, stays open
    (T0 + 47 * H, 10, 10),  # 10 received < 30: unknown, changes nothing
    (T0 + 48 * H, 100, 82),  # 0.82 >= 0.80 + 0.02: clears
    (T0 + 49 * H, 100, 70),  # below again: a new streak, 0 h
]


def test_target_opens_after_the_duration_and_clears_once() -> None:
    state, trs = run_target(TARGET_STEPS)
    assert brief(trs) == [("opened", T0 + 45 * H), ("cleared", T0 + 48 * H)]
    opened, cleared = trs
    assert opened.severity is Severity.WARNING
    assert dict(opened.figures) == {
        "window": "qtd",
        "received": 110,
        "online": 85,
        "online_ratio": "0.772727",  # 85 / 110 = 0.7727272...
        "below_since": T0 + 21 * H,
    }
    assert dict(opened.baseline) == {
        "target": "0.800000",
        "clear_at": "0.820000",
        "min_received": 30,
        "duration_s": 86400,
    }
    assert cleared.figures["online_ratio"] == "0.820000"
    assert cleared.incident_id == opened.incident_id
    assert state.status is AlertStatus.CLOSED and state.below_since == T0 + 49 * H


def test_target_below_for_less_than_the_duration_does_not_open() -> None:
    assert run_target(TARGET_STEPS[:5])[1] == []


def test_target_ignores_a_tiny_denominator() -> None:
    steps = [(T0 + i * 6 * H, 29, 0) for i in range(20)]  # 0 % online, but 29 < 30 received
    assert run_target(steps)[1] == []


def test_target_unknown_ratio_breaks_the_streak() -> None:
    steps = [(T0, 100, 50), (T0 + 12 * H, 20, 0), (T0 + 25 * H, 100, 50), (T0 + 48 * H, 100, 50)]
    # the streak restarts at T0 + 25 h: 23 h at T0 + 48 h, not yet
    assert run_target(steps)[1] == []
    assert brief(run_target([*steps, (T0 + 49 * H, 100, 50)])[1]) == [("opened", T0 + 49 * H)]


# -- near-due backlog ---------------------------------------------------------------------


def run_near(
    steps: Iterable[tuple[int, int]],
    *,
    scope: str = "agency:11311",
    thresholds: AlertThresholds = DEFAULT_THRESHOLDS,
) -> list[Transition]:
    state = AlertState.new(AlertKind.NEAR_DUE_BACKLOG, scope)
    out: list[Transition] = []
    for t, n in steps:
        state, trs = evaluate(state, t, NearDueInput(n), thresholds=thresholds)
        out.extend(trs)
    return out


def test_near_due_hysteresis_and_cooldown() -> None:
    n0 = vn(2026, 4, 8)
    steps = [
        (n0, 19),  # below 20
        (n0 + 60, 20),  # opens
        (n0 + 120, 35),
        (n0 + 180, 11),  # above close_at 10: stays open
        (n0 + 240, 10),  # clears; cooldown to n0 + 240 + 3600
        (n0 + 300, 25),  # cooling down
        (n0 + 3839, 25),
        (n0 + 3840, 25),  # opens: a new incident
    ]
    trs = run_near(steps)
    assert brief(trs) == [("opened", n0 + 60), ("cleared", n0 + 240), ("opened", n0 + 3840)]
    assert trs[0].incident_id == trs[1].incident_id != trs[2].incident_id
    assert dict(trs[0].figures) == {"near_due_now": 20}
    assert dict(trs[0].baseline) == {"open_at": 20, "close_at": 10}


def test_near_due_uses_the_agency_override() -> None:
    th = parse_thresholds(
        '{"agencies": {"SO-XD": {"near_due_backlog": {"open_at": 60, "close_at": 40}}}}'
    )
    steps = [(T0, 50), (T0 + 60, 45)]
    assert run_near(steps, scope="agency:SO-XD", thresholds=th) == []
    assert brief(run_near(steps, scope="agency:11311", thresholds=th)) == [("opened", T0)]


# -- thresholds ---------------------------------------------------------------------------


def test_parse_thresholds_layers_defaults_then_agencies() -> None:
    th = parse_thresholds(
        json.dumps(
            {
                "defaults": {"overdue_spike": {"min_count": 8}, "online_target": {"target": 0.7}},
                "agencies": {"SO-YTE": {"overdue_spike": {"open_k": 5}}},
            }
        )
    )
    assert th.defaults.overdue_spike == SpikeThresholds(min_count=8)
    assert th.defaults.online_target == TargetThresholds(target=0.7)
    own = th.for_scope("agency:SO-YTE")
    assert own.overdue_spike == SpikeThresholds(min_count=8, open_k=5)
    assert own.online_target == TargetThresholds(target=0.7)
    assert th.for_scope("agency:11311") == th.defaults
    assert th.for_scope("level:city") == th.defaults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[", "not valid JSON"),
        ('{"limits": {}}', "unknown key(s) 'limits'"),
        ('{"defaults": {"spike": {}}}', "defaults: unknown kind(s) 'spike'"),
        (
            '{"agencies": {"X": {"near_due_backlog": {"open_at": "20"}}}}',
            "agencies.X.near_due_backlog.open_at: expected an integer",
        ),
        (
            '{"agencies": {"X": {"near_due_backlog": {"close_at": 25}}}}',
            "agencies.X.near_due_backlog: need 0 <= close_at < open_at",
        ),
        ('{"defaults": {"overdue_spike": {"close_k": 4}}}', "need 0 <= close_k < open_k"),
        ('{"defaults": {"online_target": {"window": "2d"}}}', "window must be one of"),
        ('{"defaults": {"online_target": {"target": 0.99}}}', "target + clear_margin <= 1"),
        ('{"defaults": {"overdue_spike": {"min_count": true}}}', "expected an integer"),
    ],
)
def test_parse_thresholds_names_the_bad_entry(text: str, message: str) -> None:
    with pytest.raises(AlertConfigError) as info:
        parse_thresholds(text)
    assert message in str(info.value)


def test_target_exactly_at_a_decimal_target_is_not_below() -> None:
    # 0.7 as a float is below 7/10; the setting means exactly 7/10.
    th = AlertThresholds(
        defaults=ScopeThresholds(online_target=TargetThresholds(target=0.7, duration_s=0))
    )
    assert run_target([(T0, 100, 70)], th)[1] == []
    assert brief(run_target([(T0, 100, 69)], th)[1]) == [("opened", T0)]


# -- state and inputs ---------------------------------------------------------------------


def test_state_round_trips_through_a_plain_dict() -> None:
    state = AlertState(
        kind=AlertKind.ONLINE_TARGET,
        scope="agency:SO-TC",
        status=AlertStatus.OPEN,
        opened_at=10,
        changed_at=10,
        cooldown_until=5,
        evaluated_at=12,
        below_since=3,
    )
    data = state.to_dict()
    assert data == {
        "v": 1,
        "kind": "online_target",
        "scope": "agency:SO-TC",
        "status": "open",
        "opened_at": 10,
        "changed_at": 10,
        "cooldown_until": 5,
        "evaluated_at": 12,
        "resume_at": None,
        "below_since": 3,
    }
    assert AlertState.from_dict(json.loads(json.dumps(data))) == state


@pytest.mark.parametrize(
    "patch",
    [
        {"v": 2},
        {"kind": "spike"},
        {"status": "opened"},
        {"opened_at": None},
        {"evaluated_at": "12"},
        {"extra": 1},
        {"scope": ""},
    ],
)
def test_bad_state_dicts_are_refused(patch: dict[str, object]) -> None:
    data = AlertState(
        kind=AlertKind.NEAR_DUE_BACKLOG, scope="city", status=AlertStatus.OPEN, opened_at=1
    ).to_dict()
    data.update(patch)
    with pytest.raises(AlertInputError):
        AlertState.from_dict(data)


def test_inputs_must_match_the_state_kind() -> None:
    state = AlertState.new(AlertKind.NEAR_DUE_BACKLOG, "city")
    with pytest.raises(AlertInputError, match="TargetInput given to a near_due_backlog"):
        evaluate(state, T0, TargetInput(10, 5))
    spike = AlertState.new(AlertKind.OVERDUE_SPIKE, "city")
    with pytest.raises(AlertInputError, match="needs the working calendar"):
        evaluate(spike, T0, SpikeInput({}, COVERS))


@pytest.mark.parametrize(
    "inputs",
    [
        NearDueInput(-1),
        TargetInput(10, 11),
        SpikeInput({T0: -1}, COVERS),
        SpikeInput({T0 + 1: 1}, COVERS),
    ],
)
def test_bad_figures_are_refused(inputs: NearDueInput | TargetInput | SpikeInput) -> None:
    kind = {
        NearDueInput: AlertKind.NEAR_DUE_BACKLOG,
        TargetInput: AlertKind.ONLINE_TARGET,
        SpikeInput: AlertKind.OVERDUE_SPIKE,
    }[type(inputs)]
    with pytest.raises(AlertInputError):
        evaluate(AlertState.new(kind, "city"), T0, inputs, calendar=CAL)


def test_transition_to_dict_is_plain_json() -> None:
    _, (opened, _) = run_spike(spike_series(), WEEK)
    data = json.loads(json.dumps(opened.to_dict()))
    assert data["action"] == AlertAction.OPENED.value == "opened"
    assert data["kind"] == "overdue_spike" and data["severity"] == "critical"
    assert data["at"] == data["opened_at"] == vn(2026, 4, 8, 11)
    assert data["figures"]["became_overdue"] == 5


def test_thresholds_reject_out_of_range_values() -> None:
    with pytest.raises(AlertConfigError):
        SpikeThresholds(min_baseline_days=21)
    with pytest.raises(AlertConfigError):
        NearDueThresholds(open_at=0)
    with pytest.raises(AlertConfigError):
        TargetThresholds(target=0)


# -- the examples in docs/alerts.md -------------------------------------------------------

DOC = Path(__file__).resolve().parents[3] / "docs" / "alerts.md"


def doc_json() -> list[str]:
    """The JSON examples of docs/alerts.md, in order."""
    return re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_doc_payload_example_is_what_the_rule_gives() -> None:
    _, (opened, _) = run_spike(spike_series(), WEEK)
    assert json.loads(doc_json()[0]) == opened.to_dict()


def test_doc_thresholds_example_parses() -> None:
    th = parse_thresholds(doc_json()[1])
    assert th.for_scope("agency:SO-XD").near_due_backlog == NearDueThresholds(60, 40)
    assert th.for_scope("agency:11311").overdue_spike == SpikeThresholds(min_count=8)
    assert th.for_scope("level:city") == ScopeThresholds()


@settings(max_examples=300, deadline=None)
@given(
    counts=st.lists(st.integers(0, 60), min_size=21, max_size=21),
    baseline_days=st.integers(1, 20),
    open_k=st.sampled_from([4.0, 3.5, 2.25]),
    close_k=st.sampled_from([0.0, 1.5, 2.0]),
)
def test_the_baseline_is_the_median_and_mad_of_the_blocks(
    counts: list[int], baseline_days: int, open_k: float, close_k: float
) -> None:
    """With a window of one bucket, block k is the count k buckets back. Stated with
    `statistics.median` over exact rationals (the rule, not the rule's arithmetic)."""
    th = SpikeThresholds(
        baseline_days=baseline_days, min_baseline_days=1, open_k=open_k, close_k=close_k
    )
    buckets = [h * 3600 for h in range(len(counts))]
    prefix = [0]
    for c in counts:
        prefix.append(prefix[-1] + c)
    i = len(counts) - 1
    judged = _judge(i, buckets, prefix, 1, 0, th)
    assert judged is not None
    x, level_open, line_close, (blocks, m, mad, spread) = judged
    recent = [Fraction(c) for c in counts[i - baseline_days : i]]
    want_m = Fraction(statistics.median(recent))
    want_mad = Fraction(statistics.median([abs(b - want_m) for b in recent]))
    root = Fraction(math.isqrt(want_m.numerator), math.isqrt(want_m.denominator))
    want_root = root if root * root == want_m else Fraction(math.sqrt(want_m))
    want_spread = max(Fraction("1.4826") * want_mad, want_root, Fraction(1))
    assert (x, blocks, m, mad, spread) == (counts[i], baseline_days, want_m, want_mad, want_spread)
    assert level_open == max(5, math.ceil(want_m + Fraction(str(open_k)) * want_spread))
    assert line_close == math.floor(want_m + Fraction(str(close_k)) * want_spread)
