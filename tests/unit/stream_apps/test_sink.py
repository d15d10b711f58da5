"""The below-target rule of the rankings: strictly below the target, and only when known."""

from __future__ import annotations

import pytest

from stream_apps.sink import below_target


@pytest.mark.parametrize(
    ("ratio", "target", "below"),
    [
        ("0.799999", 0.80, True),
        ("0.800000", 0.80, False),  # at the target is not below it
        ("0.800001", 0.80, False),
        ("0.000000", 0.80, True),
        ("1.000000", 0.80, False),
        ("", 0.80, False),  # nothing received: no ratio, not below
        ("0.500000", 0.50, False),
        ("0.499999", 0.50, True),
    ],
)
def test_below_target_means_strictly_below(ratio: str, target: float, below: bool) -> None:
    assert below_target(ratio, target) is below
