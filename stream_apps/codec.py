"""A dossier's state as a JSON-ready document, for the changelog records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.lifecycle import ChannelKind, DossierState, Void
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
    four times faster), which `state_from_doc` reads back.
    """
    doc: dict[str, Any] = {
        "id": state.dossier_id,
        "agency": state.agency,
        "level": state.level,
        "field": state.field,
        "procedure": state.procedure,
        "channel": state.channel.value if state.channel else None,
        "status": int(state.status) if state.status is not None else None,
        "seq": state.last_seq,
        "supplements": state.supplements,
        "limit": [state.limit_value, state.limit_unit.value] if state.limit_unit else None,
        "prints": state.prints.hex(),
    }
    for name in _TIMES:
        doc[name] = getattr(state, name)
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


def state_from_doc(doc: dict[str, Any]) -> DossierState:
    limit = doc.get("limit")
    channel, status = doc["channel"], doc["status"]
    state = DossierState(
        dossier_id=doc["id"],
        agency=doc["agency"],
        level=doc["level"],
        field=doc["field"],
        procedure=doc.get("procedure", ""),
        channel=_CHANNELS[channel] if channel else None,
        status=_STATUSES[status] if status is not None else None,
        last_seq=doc["seq"],
        supplements=doc["supplements"],
        limit_value=limit[0] if limit else None,
        limit_unit=_UNITS[limit[1]] if limit else None,
        prints=bytes.fromhex(doc.get("prints", "")),
        flags=frozenset(doc.get("flags", ())),
    )
    for name in _TIMES:
        value = doc.get(name)
        setattr(state, name, datetime.fromisoformat(value) if value else None)
    for item in doc.get("pending", ()):
        if isinstance(item, dict):
            state.pending[item["void"]] = Void(item["void"], item["reason"])
        else:
            event = DossierEvent.model_validate_json(item)
            state.pending[event.sequence] = event
    return state
