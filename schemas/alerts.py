"""The alert contract: the alert event (Kafka `dossier.alerts.v1`, Redis, pub/sub, webhooks).

An alert event is one transition of one incident: `opened` or `cleared`. `id` is the
same on every replay of the same history (UUIDv5 of kind, scope, opening instant and
action), so a receiver drops repeats by `id`; `incident_id` ties an opening to its
clearing. `at` and `opened_at` are event time: the instant the figures crossed the line,
not when the worker noticed. docs/alerts.md gives the rules; docs/redis-contract.md the
Redis keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ALERT_KINDS = ("overdue_spike", "online_target", "near_due_backlog")
AlertKindName = Literal["overdue_spike", "online_target", "near_due_backlog"]

# What a person reads: Vietnamese with English beside it.
KIND_LABELS: dict[str, tuple[str, str]] = {
    "overdue_spike": ("Tăng đột biến hồ sơ quá hạn", "Overdue spike"),
    "online_target": ("Tỷ lệ trực tuyến dưới chỉ tiêu", "Online ratio below target"),
    "near_due_backlog": ("Tồn đọng hồ sơ sắp trễ", "Near-due backlog"),
}
ACTION_LABELS: dict[str, tuple[str, str]] = {
    "opened": ("Mở", "opened"),
    "cleared": ("Đã hết", "cleared"),
}

Evidence = dict[str, int | str | None]


class AlertEvent(BaseModel):
    """One alert opening or clearing, as published and stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    id: str = Field(
        description="UUIDv5 of kind, scope, opening instant and action: the same "
        "on every replay; receivers deduplicate by it"
    )
    incident_id: str = Field(description="UUIDv5 of kind, scope and opening instant")
    kind: AlertKindName
    scope: str = Field(description="`city`, `level:{level}` or `agency:{code}`")
    agency: str | None = Field(None, description="agency code when the scope is an agency")
    agency_name: str | None = Field(None, description="its Vietnamese name, with diacritics")
    severity: Literal["warning", "critical"]
    action: Literal["opened", "cleared"]
    at: datetime = Field(description="event-time instant of this transition (UTC)")
    opened_at: datetime = Field(description="event-time instant the incident opened (UTC)")
    figures: Evidence = Field(description="the figures that triggered the transition")
    baseline: Evidence = Field(description="what they were compared with")

    @property
    def open(self) -> bool:
        return self.action == "opened"

    def summary(self) -> str:
        """One line a person reads: kind, scope, what crossed which line."""
        vi, en = KIND_LABELS[self.kind]
        who = self.agency_name or self.scope
        return f"{vi} ({en}): {who}"


def epoch_utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def alertmanager_payload(
    event: AlertEvent, *, external_url: str = "", receiver: str = "dossier-stream"
) -> dict[str, Any]:
    """The webhook body, shaped like Prometheus Alertmanager's (version 4).

    Receivers written for Alertmanager read `status`, `alerts[].labels`, `startsAt`,
    `endsAt` and `fingerprint` (the incident id); `alerts[].annotations.alert_id` is
    the event's `id`, which tells a repeat from a new event.
    """
    status = "firing" if event.open else "resolved"
    labels = {
        "alertname": event.kind,
        "scope": event.scope,
        "severity": event.severity,
        **({"agency": event.agency} if event.agency else {}),
    }
    vi, en = KIND_LABELS[event.kind]
    annotations = {
        "summary": event.summary(),
        "description": f"{vi} / {en}; figures {event.figures}; baseline {event.baseline}",
        "alert_id": event.id,
        "incident_id": event.incident_id,
        **({"agency_name": event.agency_name} if event.agency_name else {}),
    }
    alert = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": event.opened_at.isoformat(),
        "endsAt": event.at.isoformat() if not event.open else "0001-01-01T00:00:00Z",
        "generatorURL": external_url,
        "fingerprint": event.incident_id,
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{event.kind}", scope="{event.scope}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": event.kind, "scope": event.scope},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [alert],
    }
