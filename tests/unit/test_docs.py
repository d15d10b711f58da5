"""The Redis key contract documents every field the worker writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.figures import COUNT_METRICS, GAUGES, RATIO_METRICS, WINDOWS
from schemas import serving

CONTRACT = (Path(__file__).resolve().parents[2] / "docs" / "redis-contract.md").read_text(
    encoding="utf-8"
)


@pytest.mark.parametrize("name", [*GAUGES, *COUNT_METRICS, *RATIO_METRICS])
def test_every_field_is_documented(name: str) -> None:
    assert f"`{name}`" in CONTRACT or f"`{{w}}.{name}`" in CONTRACT


@pytest.mark.parametrize("window", WINDOWS)
def test_every_window_is_documented(window: str) -> None:
    assert f"`{window}`" in CONTRACT


@pytest.mark.parametrize(
    "key",
    [
        serving.scope_key("ds:v1", "{scope}"),
        serving.series_key("ds:v1", "{scope}"),
        serving.rank_key("ds:v1", "online_ratio", "{level}"),
        serving.rank_key("ds:v1", "overdue_now", "{level}"),
        serving.below_target_key("ds:v1"),
        serving.meta_key("ds:v1"),
        serving.updates_channel("ds:v1"),
        serving.stuck_key("ds:v1", "{agency}"),
        serving.flagged_key("ds:v1", "{agency}"),
    ],
)
def test_every_key_pattern_is_documented(key: str) -> None:
    assert f"`{key}`" in CONTRACT


@pytest.mark.parametrize("name", list(serving.WorkerMeta.model_fields))
def test_every_meta_field_is_documented(name: str) -> None:
    assert f"`{name}`" in CONTRACT
