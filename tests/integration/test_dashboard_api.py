"""The dashboard's JSON API against the real Redis: the contract's keys in, typed JSON out.

Each test writes the keys of docs/redis-contract.md under its own prefix, as the worker
would, and reads them back through the API; the expected values are the ones written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from schemas.alerts import AlertEvent
from schemas.serving import (
    COUNT_METRICS,
    GAUGES,
    RATIO_METRICS,
    WINDOWS,
    alerts_channel,
    alerts_log_key,
    alerts_open_key,
    below_target_key,
    meta_key,
    rank_key,
    scope_key,
    series_key,
)
from tests.cli import free_port

CLOCK = "2025-10-08T01:00:00+00:00"
OFFSETS = {"0": 1200, "1": 1187}


def scope_hash(**fields: str) -> dict[str, str]:
    base = {g: "0" for g in GAUGES}
    for w in WINDOWS:
        base |= {f"{w}.{m}": "0" for m in COUNT_METRICS}
        base |= {f"{w}.{r}": "" for r in RATIO_METRICS}
    return base | fields


def alert(n: int, scope: str = "agency:SO-YTE", action: str = "opened") -> AlertEvent:
    return AlertEvent(
        id=f"alert-{n}",
        incident_id=f"incident-{n}",
        kind="overdue_spike",
        scope=scope,
        agency=scope.removeprefix("agency:") if scope.startswith("agency:") else None,
        agency_name="Sở Y tế" if scope == "agency:SO-YTE" else None,
        severity="warning",
        action=action,  # type: ignore[arg-type]
        at=datetime(2025, 10, 8, n, 0, tzinfo=UTC),
        opened_at=datetime(2025, 10, 8, n, 0, tzinfo=UTC),
        figures={"became_overdue_1h": 10 + n},
        baseline={"mean": 2},
    )


@pytest.fixture
def written(redis_client: redis.Redis, names) -> str:  # type: ignore[no-untyped-def]
    """The keys a worker would have written, under this test's prefix."""
    p = names.redis_prefix
    r = redis_client
    r.hset(
        meta_key(p),
        mapping={
            "updated_at": CLOCK,
            "clock": CLOCK,
            "clock_mode": "event",
            "target_window": "qtd",
            "events_in": "2387",
            "applied": "2387",
            "offsets": json.dumps(OFFSETS),
        },
    )
    city = scope_hash(
        open_now="40",
        overdue_now="7",
        near_due_now="3",
        not_yet_due_now="33",
        **{"qtd.received_total": "1234", "qtd.online_ratio": "0.834567", "24h.received_total": "9"},
    )
    r.hset(scope_key(p, "city"), mapping=city)
    r.hset(
        scope_key(p, "agency:SO-YTE"),
        mapping=scope_hash(overdue_now="5", **{"qtd.online_ratio": "0.5"}),
    )
    r.hset(
        scope_key(p, "agency:SO-XD"),
        mapping=scope_hash(overdue_now="2", **{"qtd.online_ratio": "0.9"}),
    )
    r.zadd(rank_key(p, "overdue_now", "city"), {"SO-YTE": 5, "SO-XD": 2})
    r.zadd(rank_key(p, "online_ratio", "city"), {"SO-YTE": 0.5, "SO-XD": 0.9})
    r.sadd(below_target_key(p), "SO-YTE")
    r.hset(
        series_key(p, "city"),
        mapping={
            "hourly.received_total": '{"1759881600": 12, "1759885200": 9}',
            "daily.became_overdue": '{"1759856400": 4}',
        },
    )
    # SO-YTE: 6 became overdue in the last 24 hours, 2 in the 24 before: rising.
    clock = int(datetime.fromisoformat(CLOCK).timestamp())
    r.hset(
        series_key(p, "agency:SO-YTE"),
        "hourly.became_overdue",
        json.dumps({str(clock - 3600): 6, str(clock - 30 * 3600): 2}),
    )
    r.hset(alerts_open_key(p), "incident-2", alert(2).model_dump_json())
    for n in (1, 2, 3):
        event = alert(n, action="cleared" if n == 1 else "opened")
        r.xadd(alerts_log_key(p), {"id": event.id, "alert": event.model_dump_json()})
    return p


def client_for(prefix: str, redis_url: str) -> TestClient:
    settings = DashboardSettings(redis_url=redis_url, redis_prefix=prefix)
    return TestClient(create_app(settings))


@pytest.fixture
def api(stack, written: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with client_for(written, stack.redis_url) as client:
        yield client


def test_a_scope_reads_as_typed_figures_with_the_watermark(api: TestClient) -> None:
    body = api.get("/api/v1/scopes/city").json()
    assert body["offsets"] == OFFSETS and body["events_in"] == 2387
    figures = body["figures"]
    assert (figures["open_now"], figures["overdue_now"], figures["near_due_now"]) == (40, 7, 3)
    assert figures["windows"]["qtd"]["received_total"] == 1234
    assert figures["windows"]["qtd"]["online_ratio"] == 0.834567
    assert figures["windows"]["qtd"]["full_online_ratio"] is None  # "" in Redis: nothing received
    assert figures["windows"]["24h"]["received_total"] == 9


def test_a_scope_never_written_is_a_404_with_a_message(api: TestClient) -> None:
    response = api.get("/api/v1/scopes/agency:NOPE")
    assert response.status_code == 404
    assert response.json() == {"error": "no figures for scope 'agency:NOPE'"}


def test_meta_rankings_and_below_target(api: TestClient) -> None:
    meta = api.get("/api/v1/meta").json()
    assert meta["offsets"] == OFFSETS and meta["meta"]["target_window"] == "qtd"
    assert meta["meta"]["clock"].startswith("2025-10-08T01:00:00")
    ranked = api.get("/api/v1/rankings/overdue_now/city").json()
    assert [(e["code"], e["score"]) for e in ranked["entries"]] == [("SO-YTE", 5.0), ("SO-XD", 2.0)]
    assert ranked["entries"][0]["name"] == "Sở Y tế"
    assert len(api.get("/api/v1/rankings/overdue_now/city?limit=1").json()["entries"]) == 1
    below = api.get("/api/v1/below-target").json()
    assert below["agencies"] == [{"code": "SO-YTE", "name": "Sở Y tế", "score": 0.5}]
    assert api.get("/api/v1/rankings/overdue_now/province").status_code == 422


def test_series_are_points_per_metric_ascending(api: TestClient) -> None:
    body = api.get("/api/v1/series/city").json()
    assert body["hourly"]["received_total"] == [
        {"t": 1759881600, "value": 12},
        {"t": 1759885200, "value": 9},
    ]
    assert body["daily"]["became_overdue"] == [{"t": 1759856400, "value": 4}]
    assert body["hourly"]["resolved_late"] == []


def test_alerts_open_and_recent_newest_first(api: TestClient) -> None:
    body = api.get("/api/v1/alerts").json()
    assert [a["id"] for a in body["open"]] == ["alert-2"]
    assert [a["id"] for a in body["recent"]] == ["alert-3", "alert-2", "alert-1"]
    assert body["recent"][2]["action"] == "cleared"
    assert [a["id"] for a in api.get("/api/v1/alerts?limit=1").json()["recent"]] == ["alert-3"]


def test_no_alerts_at_all_is_an_empty_feed_not_an_error(
    api: TestClient, redis_client, written
) -> None:  # type: ignore[no-untyped-def]
    redis_client.delete(alerts_open_key(written), alerts_log_key(written))
    response = api.get("/api/v1/alerts")
    assert response.status_code == 200 and response.json() == {"open": [], "recent": []}
    page = api.get("/")
    assert page.status_code == 200 and "Không có cảnh báo" in page.text


def test_the_overview_marks_agencies_and_defaults_to_the_target_window(api: TestClient) -> None:
    body = api.get("/api/v1/overview").json()
    assert body["window"] == "qtd" and body["offsets"] == OFFSETS
    rows = {r["code"]: r for r in body["agencies"]}
    yte, xd = rows["SO-YTE"], rows["SO-XD"]
    assert (yte["below_target"], yte["overdue_rising"], yte["open_alerts"]) == (True, True, 1)
    assert (yte["overdue_last_24h"], yte["overdue_previous_24h"]) == (6, 2)
    assert (xd["below_target"], xd["overdue_rising"], xd["open_alerts"]) == (False, False, 0)
    assert rows["11311"]["figures"] is None  # in the registry, no figures yet
    assert api.get("/api/v1/overview?window=24h").json()["window"] == "24h"
    assert api.get("/api/v1/overview?window=week").status_code == 422


def test_the_agency_view_has_its_feeds(api: TestClient, redis_client, written) -> None:  # type: ignore[no-untyped-def]
    redis_client.hset(f"{written}:stuck:SO-YTE", "D-9", "2025-10-08T00:00:00+00:00")
    redis_client.hset(f"{written}:flagged:SO-YTE", "D-8", "gap_released")
    body = api.get("/api/v1/agencies/SO-YTE").json()
    assert body["agency"]["name"] == "Sở Y tế" and body["agency"]["figures"]["overdue_now"] == 5
    assert body["stuck"] == {"D-9": "2025-10-08T00:00:00+00:00"}
    assert body["flagged"] == {"D-8": "gap_released"}
    assert [a["id"] for a in body["alerts"]["open"]] == ["alert-2"]
    assert api.get("/api/v1/agencies/NOPE").status_code == 404
    page = api.get("/agency/SO-YTE")
    assert page.status_code == 200 and "D-9" in page.text and "gap_released" in page.text


def test_the_openapi_description_names_every_route_and_model(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    for path in (
        "/api/v1/meta",
        "/api/v1/overview",
        "/api/v1/scopes/{scope}",
        "/api/v1/series/{scope}",
        "/api/v1/rankings/{metric}/{level}",
        "/api/v1/below-target",
        "/api/v1/alerts",
        "/api/v1/agencies/{code}",
    ):
        assert path in doc["paths"], path
        assert "503" in doc["paths"][path]["get"]["responses"], path
    for model in ("ScopeReading", "WorkerMeta", "AlertEvent", "OverviewResponse", "ErrorResponse"):
        assert model in doc["components"]["schemas"], model


def test_the_page_serves_its_own_scripts_and_no_external_asset(api: TestClient) -> None:
    page = api.get("/").text
    assert 'src="/static/dashboard.js"' in page and 'href="/static/dashboard.css"' in page
    assert external_urls(page) == []
    for asset in ("/static/dashboard.js", "/static/charts.js", "/static/dashboard.css"):
        response = api.get(asset)
        assert response.status_code == 200, asset
        assert external_urls(response.text) == [], asset


def external_urls(text: str) -> list[str]:
    """Addresses a browser would fetch; the SVG namespace name is not fetched."""
    return [
        u
        for u in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text)
        if u != "http://www.w3.org/2000/svg"
    ]


def test_server_sent_events_relay_the_alerts_channel(stack, written: str, redis_client) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    with client_for(written, stack.redis_url) as api, api.stream("GET", "/api/v1/events") as events:
        lines = events.iter_lines()
        assert next(lines) == "event: hello"

        def publish() -> None:
            time.sleep(0.5)
            redis_client.publish(alerts_channel(written), alert(4).model_dump_json())

        threading.Thread(target=publish, daemon=True).start()
        seen: list[str] = []
        for line in lines:
            seen.append(line)
            if line.startswith("data:") and "alert-4" in line:
                break
        assert "event: alert" in seen
        assert (
            AlertEvent.model_validate_json(seen[-1].removeprefix("data:").strip()).id == "alert-4"
        )


@pytest.mark.parametrize(
    "path", ["/api/v1/overview", "/api/v1/scopes/city", "/api/v1/alerts", "/api/v1/health"]
)
def test_redis_down_is_a_503_naming_it_never_a_stack_trace(path: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with client_for("ds:v1", url) as api:
        response = api.get(path)
    assert response.status_code == 503
    body = response.json()
    assert list(body) == ["error"]
    assert "redis unreachable" in body["error"].lower() and url in body["error"]
    assert "Traceback" not in response.text


def test_redis_down_shows_the_page_with_the_same_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with client_for("ds:v1", url) as api:
        response = api.get("/")
    assert response.status_code == 503
    assert "Redis unreachable" in response.text and "Không đọc được số liệu" in response.text
