"""One zone object per UTC offset, shared by every date-time the worker holds.

Two aware datetimes with the *same* zone object compare and subtract as plain clock
readings. With different zone objects, each comparison asks both for `utcoffset()`, and
the zone objects pydantic-core gives parsed times answer through Python: a comparison
costs ten times as much, and the worker compares and converts an event's times many
times over. So every time an event carries is given the zone object shared by its offset:
`VN_TZ` for +07:00, `UTC` for Z, one `timezone` per other offset. The instant, the offset
and every text written of the time are unchanged.

`VN_TZ` is Vietnam's zone as a fixed offset: Vietnam has kept UTC+7, with no daylight
saving, since 1975, and the contract takes only years 2000-2100 (`schemas.rules`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Final

VN_TZ: Final = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
# The event fields that hold a date-time.
TIME_FIELDS: Final = ("occurred_at", "emitted_at", "appointment_at", "apology_appointment_at")

_ZONES: dict[timedelta, tzinfo] = {timedelta(hours=7): VN_TZ, timedelta(0): UTC}


def shared_zone(offset: timedelta) -> tzinfo:
    """The zone object of this UTC offset (the same object every time)."""
    zone = _ZONES.get(offset)
    if zone is None:
        zone = _ZONES[offset] = timezone(offset)
    return zone


def shared_time(value: datetime) -> datetime:
    """The same instant at the same offset, with that offset's shared zone object
    (a naive time is returned as it is)."""
    offset = value.utcoffset()
    if offset is None:
        return value
    zone = shared_zone(offset)
    if value.tzinfo is zone:
        return value
    # The constructor, not `replace(tzinfo=...)`: a third of the cost (keywords are
    # parsed in Python's way). A fixed offset has no fold to keep.
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        zone,
    )


def share_zones(fields: dict[str, Any]) -> None:
    """Give the date-times of an event's fields (its `__dict__`) their shared zones."""
    for name in TIME_FIELDS:
        value = fields[name]
        if value is not None:
            fields[name] = shared_time(value)
