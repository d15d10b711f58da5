"""Vietnamese number and date formats for what a person reads (1.234,5; 31/12/2025 23:59).

Vietnamese writes `.` between thousands and `,` before decimals; dates are day/month/year
and times are Vietnam time (UTC+7, no daylight saving).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

VN_TZ = timezone(timedelta(hours=7), "ICT")
DASH = "–"


def vn_number(value: float | int | None, decimals: int = 0) -> str:
    """`1234.5` -> `1.234,5` (with `decimals` digits after the comma); None -> `–`."""
    if value is None:
        return DASH
    text = f"{value:,.{decimals}f}"  # 1,234.5 in the English convention
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def vn_percent(ratio: float | None, decimals: int = 1) -> str:
    """A ratio as a percentage: `0.8345` -> `83,5%`; None (nothing to divide) -> `–`."""
    if ratio is None:
        return DASH
    return f"{vn_number(ratio * 100, decimals)}%"


def vn_datetime(moment: datetime | None, *, seconds: bool = False) -> str:
    """An instant in Vietnam time, `dd/mm/yyyy HH:MM`; a naive instant is taken as UTC."""
    if moment is None:
        return DASH
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M" + (":%S" if seconds else ""))


def vn_date(moment: datetime) -> str:
    """The Vietnam calendar day of an instant, `dd/mm/yyyy`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VN_TZ).strftime("%d/%m/%Y")
