"""A dossier's state as a JSON-ready document, for the changelog records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from sys import intern
from typing import Any

from domain.lifecycle import NO_FLAGS, ChannelKind, DossierState, Void
from schemas.enums import Status, TimeUnit
from schemas.events import DossierEvent

_TIMES = (
    "received_at",
    "appointment_at",
    "due_at",
    "paused_at",
    "apology_at",
    "resolved_at",
    "closed_at",
    "last_at",
)


def state_doc(state: DossierState) -> dict[str, Any]:
    """A document of a dossier's state for `orjson.dumps`.

    Times stay datetimes: orjson writes them as RFC 3339 text (as `isoformat` would,
    four times faster), which `state_from_doc` reads back. The channel and the limit's
    unit stay enum members too: orjson writes a member as its value, with no call of
    the Python-level `.value` property per record.
    """
    doc: dict[str, Any] = {
        "id": state.dossier_id,
        "agency": state.agency,
        "level": state.level,
        "field": state.field,
        "procedure": state.procedure,
        "channel": state.channel,
        "status": int(state.status) if state.status is not None else None,
        "seq": state.last_seq,
        "supplements": state.supplements,
        "limit": [state.limit_value, state.limit_unit] if state.limit_unit else None,
        "prints": state.prints.hex(),
        # The times of `_TIMES`, in its order, each read by name (compiled: a direct read,
        # where `getattr(state, name)` is a lookup by string).
        "received_at": state.received_at,
        "appointment_at": state.appointment_at,
        "due_at": state.due_at,
        "paused_at": state.paused_at,
        "apology_at": state.apology_at,
        "resolved_at": state.resolved_at,
        "closed_at": state.closed_at,
        "last_at": state.last_at,
    }
    if state.flags:
        doc["flags"] = sorted(state.flags)
    if state.pending:
        doc["pending"] = [
            {"void": w.sequence, "reason": w.reason} if isinstance(w, Void) else w.model_dump_json()
            for _, w in sorted(state.pending.items())
        ]
    return doc


# Enum members by value: a dict lookup, not an Enum call, for every restored record.
_CHANNELS = {c.value: c for c in ChannelKind}
_STATUSES = {int(s): s for s in Status}
_UNITS = {u.value: u for u in TimeUnit}


_ZONES: dict[timedelta | None, tzinfo] = {}


def _time(text: str) -> datetime:
    """An RFC 3339 time whose zone object is shared by every time with that offset (one
    parsed alone carries a zone object of its own, as large as the time itself)."""
    value = datetime.fromisoformat(text)
    offset = value.utcoffset()
    zone = _ZONES.get(offset)
    if zone is None:
        zone = _ZONES[offset] = value.tzinfo or UTC
    return value.replace(tzinfo=zone)


def state_from_doc(doc: dict[str, Any]) -> DossierState:
    """The state a `state_doc` document describes.

    Held for every dossier, so built small: the agency, level, field and procedure codes
    are interned (shared by every dossier that has them), and times written with the same
    text (the last event's time is often the receipt's or the resolution's) are one object.
    """
    limit = doc.get("limit")
    channel, status = doc["channel"], doc["status"]
    flags = doc.get("flags")
    state = DossierState(
        dossier_id=doc["id"],
        agency=intern(doc["agency"]),
        level=intern(doc["level"]),
        field=intern(doc["field"]),
        procedure=intern(doc.get("procedure", "")),
        channel=_CHANNELS[channel] if channel else None,
        status=_STATUSES[status] if status is not None else None,
        last_seq=doc["seq"],
        supplements=doc["supplements"],
        limit_value=limit[0] if limit else None,
        limit_unit=_UNITS[limit[1]] if limit else None,
        prints=bytes.fromhex(doc.get("prints", "")),
        flags=frozenset(flags) if flags else NO_FLAGS,
    )
    times: dict[str, datetime] = {}
    for name in _TIMES:
        text = doc.get(name)
        if text:
            value = times.get(text)
            if value is None:
                value = times[text] = _time(text)
            setattr(state, name, value)
    for item in doc.get("pending", ()):
        if isinstance(item, dict):
            state.wait(item["void"], Void(item["void"], item["reason"]))
        else:
            event = DossierEvent.model_validate_json(item)
            state.wait(event.sequence, event)
    return state
