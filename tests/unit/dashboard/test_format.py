"""Vietnamese number and date formats: `.` between thousands, `,` before decimals, dd/mm/yyyy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboard.format import vn_date, vn_datetime, vn_number, vn_percent


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (0, 0, "0"),
        (7, 0, "7"),
        (999, 0, "999"),
        (1000, 0, "1.000"),
        (1234.5, 1, "1.234,5"),
        (140000, 0, "140.000"),
        (1234567.891, 2, "1.234.567,89"),
        (-1234, 0, "-1.234"),
        (0.5, 1, "0,5"),
        (None, 0, "–"),
    ],
)
def test_numbers_have_dots_between_thousands_and_a_decimal_comma(
    value: float | None, decimals: int, text: str
) -> None:
    assert vn_number(value, decimals) == text


@pytest.mark.parametrize(
    ("ratio", "text"),
    [(0.8, "80,0%"), (0.834567, "83,5%"), (1.0, "100,0%"), (0.0, "0,0%"), (None, "–")],
)
def test_ratios_are_percentages_with_a_decimal_comma(ratio: float | None, text: str) -> None:
    assert vn_percent(ratio) == text


def test_instants_are_shown_in_vietnam_time_day_first() -> None:
    # 17:30 UTC on 31 December is 00:30 on 1 January in Vietnam (UTC+7).
    moment = datetime(2025, 12, 31, 17, 30, 5, tzinfo=UTC)
    assert vn_datetime(moment) == "01/01/2026 00:30"
    assert vn_datetime(moment, seconds=True) == "01/01/2026 00:30:05"
    assert vn_date(moment) == "01/01/2026"
    assert vn_datetime(moment.replace(tzinfo=None)) == "01/01/2026 00:30"  # naive = UTC
    paris = timezone(timedelta(hours=1))
    assert vn_datetime(datetime(2025, 3, 4, 2, 0, tzinfo=paris)) == "04/03/2025 08:00"
    assert vn_datetime(None) == "–"
