"""bench.pipeline's freshness figure: how far Redis trailed the dossier stage.

The expected values are computed by hand from the definition in `redis_lags`: for a
Redis sample (t, r), t minus the time the stage reached r events, interpolated
linearly between stage samples; 0 when r is 0.
"""

from __future__ import annotations

import pytest

from bench.pipeline import redis_lags, redis_max_lag

STAGE = [(0.0, 0), (1.0, 1000), (2.0, 2000)]


def lags_at(
    stage: list[tuple[float, int]], redis_timeline: list[tuple[float, int | None]]
) -> tuple[list[float], list[float]]:
    """The sample times and the lags of `redis_lags`, apart (approx compares flat lists)."""
    pairs = redis_lags(stage, redis_timeline)
    return [t for t, _ in pairs], [lag for _, lag in pairs]


def test_redis_half_a_second_behind() -> None:
    redis_timeline: list[tuple[float, int | None]] = [(0.5, 0), (1.5, 1000), (2.5, 2000)]
    # r=0 -> 0; r=1000 reached at 1.0 -> 1.5-1.0; r=2000 reached at 2.0 -> 2.5-2.0
    times, lags = lags_at(STAGE, redis_timeline)
    assert times == [0.5, 1.5, 2.5]
    assert lags == pytest.approx([0.0, 0.5, 0.5])
    assert redis_max_lag(STAGE, redis_timeline) == pytest.approx(0.5)


def test_interpolates_between_stage_samples() -> None:
    redis_timeline: list[tuple[float, int | None]] = [(1.0, 500), (3.0, 1500), (4.0, 2000)]
    # 500 is half way from (0, 0) to (1, 1000): reached at 0.5 -> lag 0.5
    # 1500 is half way from (1, 1000) to (2, 2000): reached at 1.5 -> lag 1.5
    # 2000 is reached at the sample (2, 2000) -> lag 2.0
    times, lags = lags_at(STAGE, redis_timeline)
    assert times == [1.0, 3.0, 4.0]
    assert lags == pytest.approx([0.5, 1.5, 2.0])
    assert redis_max_lag(STAGE, redis_timeline) == pytest.approx(2.0)


def test_interpolates_from_the_last_sample_below() -> None:
    # The stage stood at 1000 from t=1 to t=2, then reached 3000 at t=3: 2000 is half way
    # from (2, 1000) to (3, 3000), reached at 2.5 -> lag 3.5 - 2.5 = 1.0
    stage = [(0.0, 0), (1.0, 1000), (2.0, 1000), (3.0, 3000)]
    times, lags = lags_at(stage, [(3.5, 2000)])
    assert times == [3.5]
    assert lags == pytest.approx([1.0])


def test_missing_meta_and_unknown_stage_time_are_left_out() -> None:
    # None: no meta in Redis yet; 2500: more than the stage's last sample shows
    redis_timeline: list[tuple[float, int | None]] = [(0.2, None), (2.5, 2000), (3.0, 2500)]
    times, lags = lags_at(STAGE, redis_timeline)
    assert times == [2.5]
    assert lags == pytest.approx([0.5])
    assert redis_max_lag(STAGE, [(0.2, None), (0.7, None)]) is None
    assert redis_max_lag([], [(1.0, 10)]) is None


def test_redis_never_counts_as_ahead_of_the_stage() -> None:
    # 500 is reached at 1.0 on the line from (0, 0) to (2, 1000); Redis saw it at 0.5:
    # the stage was sampled too coarsely, and the lag counts as 0, not -0.5
    assert redis_lags([(0.0, 0), (2.0, 1000)], [(0.5, 500)]) == [(0.5, 0.0)]
