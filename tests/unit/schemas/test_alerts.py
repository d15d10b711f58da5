"""The webhook body (`alertmanager_payload`) against Prometheus Alertmanager's webhook format.

The expected documents are written out by hand from Alertmanager's documented webhook
body (version 4): `status` firing/resolved, `alerts[].labels.alertname`, `startsAt`,
`endsAt` ("0001-01-01T00:00:00Z", Go's zero time, while firing) and `fingerprint`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from schemas.alerts import AlertEvent, alertmanager_payload

OPENED_AT = datetime(2026, 4, 8, 4, 0, tzinfo=UTC)
CLEARED_AT = datetime(2026, 4, 9, 2, 0, tzinfo=UTC)
ALERT_ID = "013a67ed-da4e-5755-95d2-d41a259cb2be"
INCIDENT_ID = "f86da63d-a4d9-5d85-8d82-d6b827eb09af"


def spike(action: str = "opened", **changes: object) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "id": ALERT_ID,
            "incident_id": INCIDENT_ID,
            "kind": "overdue_spike",
            "scope": "agency:SO-YTE",
            "agency": "SO-YTE",
            "agency_name": "Sở Y tế",
            "severity": "critical",
            "action": action,
            "at": OPENED_AT if action == "opened" else CLEARED_AT,
            "opened_at": OPENED_AT,
            "figures": {"became_overdue": 14},
            "baseline": {"open_level": 5},
            **changes,
        }
    )


def test_an_opening_is_a_firing_alertmanager_webhook() -> None:
    labels = {
        "alertname": "overdue_spike",
        "scope": "agency:SO-YTE",
        "severity": "critical",
        "agency": "SO-YTE",
    }
    annotations = {
        "summary": "Tăng đột biến hồ sơ quá hạn (Overdue spike): Sở Y tế",
        "description": "Tăng đột biến hồ sơ quá hạn / Overdue spike; "
        "figures {'became_overdue': 14}; baseline {'open_level': 5}",
        "alert_id": ALERT_ID,
        "incident_id": INCIDENT_ID,
        "agency_name": "Sở Y tế",
    }
    assert alertmanager_payload(spike(), external_url="http://dash.example") == {
        "version": "4",
        "groupKey": '{}:{alertname="overdue_spike", scope="agency:SO-YTE"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "dossier-stream",
        "groupLabels": {"alertname": "overdue_spike", "scope": "agency:SO-YTE"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://dash.example",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": "2026-04-08T04:00:00+00:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://dash.example",
                "fingerprint": INCIDENT_ID,
            }
        ],
    }


def test_a_clearing_is_resolved_and_ends_at_its_instant() -> None:
    body = alertmanager_payload(spike("cleared", id="5d0c3bd6-0d5f-5b8e-9d0e-3c0b2b0a9f11"))
    assert body["version"] == "4"
    assert body["status"] == "resolved"
    (alert,) = body["alerts"]
    assert alert["status"] == "resolved"
    assert alert["labels"]["alertname"] == "overdue_spike"
    assert alert["startsAt"] == "2026-04-08T04:00:00+00:00"
    assert alert["endsAt"] == "2026-04-09T02:00:00+00:00"
    # The same incident: the same fingerprint; a different event: a different alert_id.
    assert alert["fingerprint"] == INCIDENT_ID
    assert alert["annotations"]["alert_id"] == "5d0c3bd6-0d5f-5b8e-9d0e-3c0b2b0a9f11"


def test_a_city_wide_alert_has_no_agency_label_or_name() -> None:
    body = alertmanager_payload(
        spike(kind="online_target", scope="city", agency=None, agency_name=None, severity="warning")
    )
    (alert,) = body["alerts"]
    assert alert["labels"] == {
        "alertname": "online_target",
        "scope": "city",
        "severity": "warning",
    }
    assert "agency_name" not in alert["annotations"]
    assert (
        alert["annotations"]["summary"]
        == "Tỷ lệ trực tuyến dưới chỉ tiêu (Online ratio below target): city"
    )


DOC = (Path(__file__).resolve().parents[3] / "docs" / "alerts-operations.md").read_text(
    encoding="utf-8"
)


def doc_example(name: str) -> str:
    """The fenced block that follows `<!-- example: NAME -->` in docs/alerts-operations.md."""
    after = DOC.split(f"<!-- example: {name} -->", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


def test_the_documented_webhook_body_is_what_the_documented_event_sends() -> None:
    event = AlertEvent.model_validate_json(doc_example("alert-event"))
    assert alertmanager_payload(event) == json.loads(doc_example("webhook-body"))
