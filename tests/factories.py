"""Builders of valid contract documents for tests; override any field by keyword."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from domain.calendar import VN_TZ
from schemas.events import DossierEvent

T0 = datetime(2025, 10, 1, 8, 0, tzinfo=VN_TZ)

_STATUS = {
    "submitted": 1,
    "accepted": 2,
    "refused": 3,
    "processing": 4,
    "supplement_requested": 5,
    "supplement_received": 4,
    "fee_requested": 6,
    "fee_paid": 4,
    "withdrawn": 7,
    "stopped": 8,
    "resolved": 9,
    "returned": 10,
}


def event_doc(
    event_type: str = "accepted", *, at: datetime = T0, **overrides: Any
) -> dict[str, Any]:
    """A valid event document of the given type; keyword arguments replace fields."""
    doc: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "dossier_id": "HP-SO-YTE-2510-000001",
        "sequence": 1,
        "event_type": event_type,
        "status": _STATUS.get(event_type, 4),
        "occurred_at": at.isoformat(),
        "emitted_at": (at + timedelta(seconds=2)).isoformat(),
        "agency": {"code": "SO-YTE", "level": "city"},
        "procedure": {"code": "1.004616", "field": "health"},
        "channel": "online",
        "online_mode": "full",
    }
    if event_type == "accepted":
        doc["time_limit"] = {"value": 5, "unit": "working_days"}
        doc["appointment_at"] = (at + timedelta(days=7)).isoformat()
    if event_type == "supplement_requested":
        doc["clock"] = "pause"
    if event_type == "supplement_received":
        doc["clock"] = "resume"
    if event_type in ("refused", "withdrawn", "stopped"):
        doc["reason"] = "hồ sơ không hợp lệ"
    if event_type == "apology_issued":
        doc["apology_appointment_at"] = (at + timedelta(days=10)).isoformat()
    doc.update(overrides)
    return doc


def event(event_type: str = "accepted", **overrides: Any) -> DossierEvent:
    return DossierEvent.model_validate(event_doc(event_type, **overrides))


def lifecycle(
    dossier_id: str = "HP-SO-YTE-2510-000001",
    steps: tuple[str, ...] = ("accepted", "processing", "resolved", "returned"),
    *,
    start: datetime = T0,
    gap: timedelta = timedelta(hours=20),
    **common: Any,
) -> list[DossierEvent]:
    """Consecutive events of one dossier, one `gap` apart, sequence 1..n."""
    return [
        event(step, dossier_id=dossier_id, sequence=i + 1, at=start + i * gap, **common)
        for i, step in enumerate(steps)
    ]
