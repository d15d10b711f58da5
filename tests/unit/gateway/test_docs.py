"""docs/gateway.md: every setting, route and status is there, and its examples are true."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from gateway.app import RESPONSES, create_app
from gateway.settings import GatewaySettings
from gateway.tokens import TokenBook, issue
from tests.unit.gateway.test_app import FakeSender

DOC = (Path(__file__).resolve().parents[3] / "docs" / "gateway.md").read_text(encoding="utf-8")
JSON_BLOCKS = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", DOC, re.S)]
TOKEN, ENTRY = issue("SO-XD", "docs", datetime(2026, 12, 1, tzinfo=UTC))
APP = create_app(GatewaySettings(), FakeSender(), lambda: TokenBook().add(ENTRY))


def block(**keys: Any) -> dict[str, Any]:
    """The doc's JSON example that has these keys with these values (or just these keys)."""
    for doc in JSON_BLOCKS:
        if all(k in doc and (v is None or doc[k] == v) for k, v in keys.items()):
            return doc
    raise AssertionError(f"no example with {keys}")


def post(body: object) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return TestClient(APP).post("/v1/events", content=orjson.dumps(body), headers=headers)


@pytest.mark.parametrize("field", [f for f in GatewaySettings.model_fields if "gateway" in f])
def test_every_gateway_setting_is_in_the_settings_table(field: str) -> None:
    assert f"| `DOSSIER_{field.upper()}` |" in DOC


@pytest.mark.parametrize("status", sorted(RESPONSES))
def test_every_status_is_in_the_table(status: int) -> None:
    assert f"| `{status}` |" in DOC


def test_every_route_is_in_the_table() -> None:
    routes = {
        f"{sorted(r.methods)[0]} {r.path}"
        for r in APP.routes
        if isinstance(r, APIRoute) and r.path.startswith("/v1/")
    }
    assert routes == set(re.findall(r"\| `((?:GET|POST) /v1/[a-z]+)` \|", DOC))


def test_the_example_event_gets_the_documented_202() -> None:
    event = block(schema_version=1)
    response = post(event)
    assert response.status_code == 202
    assert response.json() == block(count=1)


def test_the_documented_400_and_403() -> None:
    event = block(schema_version=1)
    fax = event | {"event_id": "5a1d2c3b-0000-4000-8000-000000000002", "channel": "fax"}
    assert post([event, fax]).json() == block(events=None, error=None)
    yte = event | {"event_id": "5a1d2c3b-0000-4000-8000-000000000003"}
    yte["agency"] = {"code": "SO-YTE", "level": "city"}
    assert post([event, yte]).json() == block(indexes=None)
