"""Properties of the alert rules on random figures: one incident at a time, cooldowns kept,
the same instants and ids whatever the evaluation cadence, and resumable state."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.alerts import (
    AlertAction,
    AlertKind,
    AlertState,
    AlertThresholds,
    NearDueInput,
    NearDueThresholds,
    ScopeThresholds,
    SpikeInput,
    SpikeThresholds,
    TargetInput,
    TargetThresholds,
    Transition,
    evaluate,
)
from domain.calendar import VN_TZ, WorkingCalendar

CAL = WorkingCalendar()
H = 3600
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=VN_TZ).timestamp())


# Mon 6 - Fri 10 April 2026 are working days; the series is known from 1 April.
DAY0 = vn(2026, 4, 6)
COVERS = vn(2026, 4, 1)
FIRST, LAST = vn(2026, 4, 7, 0, 30), vn(2026, 4, 11, 2, 0)

# Bursts: a few dossiers falling due at random seconds of one hour (often a duty hour).
instants = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.sampled_from([0, 0, 0, 3, 8, 9, 10, 11, 14, 16, 17, 18]),
        st.lists(st.integers(0, H - 1), min_size=1, max_size=6),
    ),
    max_size=20,
).map(lambda bursts: [DAY0 + d * 86400 + h * H + s for d, h, secs in bursts for s in secs])
spike_settings = st.builds(
    SpikeThresholds,
    min_count=st.integers(1, 4),
    open_k=st.sampled_from([1.5, 2.0, 4.0]),
    close_k=st.sampled_from([0.0, 0.5, 1.0]),
    baseline_days=st.just(2),
    min_baseline_days=st.integers(1, 2),
    cooldown_s=st.sampled_from([0, 1800, H, 6 * H]),
)
schedules = st.lists(st.integers(FIRST + 1, LAST - 1), max_size=40).map(
    lambda ts: [FIRST, *sorted(set(ts)), LAST]
)


def series_at(xs: Sequence[int], t: int) -> dict[int, int]:
    """The hourly became-overdue series at clock t: instants at or before t, by hour."""
    return dict(Counter(x // H * H for x in xs if x <= t))


def run_spike(
    xs: Sequence[int], times: Sequence[int], th: SpikeThresholds
) -> tuple[AlertState, list[Transition]]:
    thresholds = AlertThresholds(defaults=ScopeThresholds(overdue_spike=th))
    state = AlertState.new(AlertKind.OVERDUE_SPIKE, "agency:11311")
    out: list[Transition] = []
    for t in times:
        inputs = SpikeInput(series_at(xs, t), COVERS)
        state, trs = evaluate(state, t, inputs, thresholds=thresholds, calendar=CAL)
        out.extend(trs)
    return state, out


def key(trs: Sequence[Transition]) -> list[tuple[str, str, int, int]]:
    return [(tr.id, tr.action.value, tr.at, tr.opened_at) for tr in trs]


def check_lifecycle(trs: Sequence[Transition], cooldown_s: int) -> None:
    """Alternating opened / cleared, one incident at a time, cooldowns kept, unique ids."""
    last_clear: int | None = None
    opened: Transition | None = None
    for tr in trs:
        if tr.action is AlertAction.OPENED:
            assert opened is None
            assert tr.at == tr.opened_at
            if last_clear is not None:
                assert tr.at >= last_clear + cooldown_s
            opened = tr
        else:
            assert opened is not None
            assert tr.incident_id == opened.incident_id
            assert tr.opened_at == opened.at and tr.at >= opened.at
            last_clear, opened = tr.at, None
    assert len({tr.id for tr in trs}) == len(trs)


@PROFILE
@given(xs=instants, th=spike_settings, a=schedules, b=schedules)
def test_spike_instants_and_ids_do_not_depend_on_the_cadence(
    xs: list[int], th: SpikeThresholds, a: list[int], b: list[int]
) -> None:
    state_a, trs_a = run_spike(xs, a, th)
    state_b, trs_b = run_spike(xs, b, th)
    assert key(trs_a) == key(trs_b)
    assert state_a == state_b
    check_lifecycle(trs_a, th.cooldown_s)
    # Clearings are decided on complete buckets: the same figures whatever the cadence.
    clears_a = [tr for tr in trs_a if tr.action is AlertAction.CLEARED]
    clears_b = [tr for tr in trs_b if tr.action is AlertAction.CLEARED]
    assert clears_a == clears_b


@PROFILE
@given(xs=instants, th=spike_settings, times=schedules, data=st.data())
def test_spike_resumes_from_a_serialised_state(
    xs: list[int], th: SpikeThresholds, times: list[int], data: st.DataObject
) -> None:
    whole_state, whole = run_spike(xs, times, th)
    split = data.draw(st.integers(0, len(times)))
    thresholds = AlertThresholds(defaults=ScopeThresholds(overdue_spike=th))
    state = AlertState.new(AlertKind.OVERDUE_SPIKE, "agency:11311")
    out: list[Transition] = []
    for i, t in enumerate(times):
        if i == split:
            state = AlertState.from_dict(json.loads(json.dumps(state.to_dict())))
        state, trs = evaluate(
            state, t, SpikeInput(series_at(xs, t), COVERS), thresholds=thresholds, calendar=CAL
        )
        out.extend(trs)
    assert out == whole and state == whole_state


steps = st.lists(st.tuples(st.integers(0, 2 * H), st.integers(0, 40)), max_size=60)


@PROFILE
@given(
    steps=steps,
    th=st.builds(
        NearDueThresholds,
        open_at=st.integers(5, 30),
        close_at=st.integers(0, 4),
        cooldown_s=st.sampled_from([0, 600, H]),
    ),
    split=st.integers(0, 60),
)
def test_near_due_lifecycle_and_resume(
    steps: list[tuple[int, int]], th: NearDueThresholds, split: int
) -> None:
    thresholds = AlertThresholds(defaults=ScopeThresholds(near_due_backlog=th))

    def run(resume_at: int | None) -> list[Transition]:
        state = AlertState.new(AlertKind.NEAR_DUE_BACKLOG, "agency:SO-YTE")
        t = vn(2026, 4, 8)
        out: list[Transition] = []
        for i, (dt, n) in enumerate(steps):
            if i == resume_at:
                state = AlertState.from_dict(json.loads(json.dumps(state.to_dict())))
            t += dt
            state, trs = evaluate(state, t, NearDueInput(n), thresholds=thresholds)
            # the rule itself: opened at or above open_at, cleared at or below close_at
            for tr in trs:
                if tr.action is AlertAction.OPENED:
                    assert n >= th.open_at
                else:
                    assert n <= th.close_at
            out.extend(trs)
        return out

    whole = run(None)
    check_lifecycle(whole, th.cooldown_s)
    assert run(split) == whole


@PROFILE
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 12 * H), st.integers(0, 200), st.integers(0, 200)), max_size=60
    ),
    duration=st.sampled_from([0, 6 * H, 24 * H]),
    split=st.integers(0, 60),
)
def test_target_lifecycle_and_resume(
    steps: list[tuple[int, int, int]], duration: int, split: int
) -> None:
    th = TargetThresholds(duration_s=duration)
    thresholds = AlertThresholds(defaults=ScopeThresholds(online_target=th))

    def run(resume_at: int | None) -> list[Transition]:
        state = AlertState.new(AlertKind.ONLINE_TARGET, "agency:SO-TC")
        t = vn(2026, 4, 1)
        out: list[Transition] = []
        for i, (dt, a, b) in enumerate(steps):
            if i == resume_at:
                state = AlertState.from_dict(json.loads(json.dumps(state.to_dict())))
            t += dt
            received, online = max(a, b), min(a, b)
            state, trs = evaluate(state, t, TargetInput(received, online), thresholds=thresholds)
            for tr in trs:
                assert received >= th.min_received
                if tr.action is AlertAction.OPENED:
                    assert 100 * online < 80 * received  # below 0.80, exactly
                    below_since = tr.figures["below_since"]
                    assert isinstance(below_since, int) and t - below_since >= duration
                else:
                    assert 100 * online >= 82 * received
            out.extend(trs)
        return out

    whole = run(None)
    check_lifecycle(whole, th.cooldown_s)
    assert run(split) == whole
