"""The dashboard in a real browser (Debian's headless chromium) while a real worker runs.

A simulated workload goes through Kafka and the stream worker into Redis; the dashboard
runs as `dossier-stream dashboard` in its own process. Every figure the page shows is
compared with Redis at the watermark the page says it rendered (`data-offsets`), read
in one transaction; an update must arrive without a reload; the level filter and the
sorting must give the order computed here from Redis. Screenshots go to the test's
tmp dir, and to DOSSIER_DASHBOARD_SCREENSHOTS when set (`make dashboard-screenshots`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page, sync_playwright

from common import kafka_admin
from dossier_stream.browser import ensure_chromium
from dossier_stream.localstack import LocalStackError
from schemas.alerts import AlertEvent
from schemas.registry import AgencyRegistry
from schemas.serving import (
    alerts_channel,
    alerts_log_key,
    alerts_open_key,
    below_target_key,
    meta_key,
    rank_key,
    scope_key,
)
from tests.conftest import Names
from tests.integration.pipeline import events_of, publish_raw, simulate
from tests.integration.workers import WorkerProcess, free_port, wait_for, worker_env

REGISTRY = AgencyRegistry.default()
SCREENSHOTS = os.environ.get("DOSSIER_DASHBOARD_SCREENSHOTS")
# The figures the page shows for a scope: every `[data-scope][data-field]` element.
FIGURES_JS = """(scope) => Array.from(
    document.querySelectorAll(`#snapshot [data-scope="${scope}"][data-field]`)
).map(e => [e.dataset.field, e.dataset.value, e.textContent.trim()])"""


@dataclass
class Live:
    """The running pipeline, the dashboard's address and a browser."""

    names: Names
    client: redis.Redis
    url: str
    browser: Browser
    worker: WorkerProcess
    later: list[bytes]
    later_keys: list[bytes]
    bootstrap: str
    tmp: Path


# -- what Redis says, restated here ------------------------------------------------------


def redis_view(client: redis.Redis, prefix: str, scopes: list[str]) -> tuple[dict, dict]:
    """(offsets, {scope: hash}) read in one MULTI/EXEC, as the contract says to read them."""
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(meta_key(prefix))
    for scope in scopes:
        pipe.hgetall(scope_key(prefix, scope))
    meta, *hashes = pipe.execute()
    return json.loads(meta.get("offsets", "{}")), dict(zip(scopes, hashes, strict=True))


def vn_text(field: str, raw: str | None) -> str:
    """How a Vietnamese reader writes the Redis value: 1.234 and 83,5%; a dash for none."""
    if raw is None or raw == "":
        return "–"
    if field.endswith(("_ratio", "_rate")):
        return f"{float(raw) * 100:.1f}".replace(".", ",") + "%"
    return f"{int(raw):,}".replace(",", ".")


def check_figures(page: Page, client: redis.Redis, prefix: str, scopes: list[str]) -> int:
    """Every figure shown for `scopes` equals Redis at the page's watermark; returns how many
    were compared."""
    shown_offsets = json.loads(page.get_attribute("#snapshot", "data-offsets") or "{}")
    offsets, hashes = redis_view(client, prefix, scopes)
    assert shown_offsets == offsets, "the page is not at Redis's watermark"
    compared = 0
    for scope in scopes:
        shown = page.evaluate(FIGURES_JS, scope)
        assert shown, f"the page shows no figure of {scope}"
        for field, value, text in shown:
            expected = hashes[scope].get(field) if hashes[scope] else None
            if expected in (None, ""):
                assert value == "", (scope, field, value)
            elif field.endswith(("_ratio", "_rate")):
                assert float(value) == float(expected), (scope, field, value, expected)
            else:
                assert value == expected, (scope, field, value, expected)
            assert text == vn_text(field, expected), (scope, field, text, expected)
            compared += 1
    return compared


def check_open_alerts(page: Page, client: redis.Redis, prefix: str) -> None:
    """The open-alerts feed lists exactly the alerts of `{prefix}:alerts:open` (the worker may
    open some of its own on this workload); with none, it says so."""

    def both() -> tuple[list[str], list[str]]:
        stored = [
            AlertEvent.model_validate_json(v).id for v in client.hvals(alerts_open_key(prefix))
        ]
        shown = page.eval_on_selector_all(
            '[data-feed="open"] [data-alert-id]', "items => items.map(i => i.dataset.alertId)"
        )
        return sorted(shown), sorted(stored)

    # An alert the worker opens meanwhile reaches the page on its next refresh.
    wait_for(lambda: (lambda sh, st: sh == st)(*both()), 10, 0.2)
    shown, stored = both()
    assert shown == stored
    if not stored:
        opened = page.locator("#alerts h3").first.evaluate("h => h.nextElementSibling.textContent")
        assert "Không có cảnh báo" in opened and "No alerts" in opened


def wait_for_watermark(page: Page, client: redis.Redis, prefix: str, timeout_s: float) -> str:
    """Wait until the page shows Redis's current watermark; returns it."""
    deadline = time.monotonic() + timeout_s
    while True:
        want = client.hget(meta_key(prefix), "offsets") or "{}"
        got = page.get_attribute("#snapshot", "data-offsets") or "{}"
        if json.loads(got) == json.loads(want):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"the page stayed at {got}, Redis is at {want}")
        time.sleep(0.2)


def expected_order(
    client: redis.Redis, prefix: str, level: str, field: str, descending: bool
) -> list[str]:
    """The agency table's order restated: the level's agencies by `field` from their Redis
    hash, those without a value last, ties by agency code."""
    codes = [a.code for a in REGISTRY if a.level.value == level]
    pipe = client.pipeline(transaction=True)
    for code in codes:
        pipe.hget(scope_key(prefix, f"agency:{code}"), field)
    values = dict(zip(codes, pipe.execute(), strict=True))
    present = sorted((c for c in codes if values[c] not in (None, "")), key=str)
    present.sort(key=lambda c: float(values[c]), reverse=descending)
    missing = sorted(c for c in codes if values[c] in (None, ""))
    return present + missing


def shown_codes(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "#agency-table tbody tr", "rows => rows.map(r => r.dataset.code)"
    )


def wait_rows(page: Page, order: list[str], timeout_s: float = 15) -> list[str]:
    got = wait_for(lambda: shown_codes(page) == order and order, timeout_s, 0.2)
    return order if got else shown_codes(page)


def screenshot(page: Page, tmp: Path, name: str, *, full_page: bool = False) -> Path:
    path = tmp / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENSHOTS) / path.name)
    return path


# -- the running pipeline ------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(stack, run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("dashboard")
    base = f"t.{run_id}.dash"
    names = Names(
        run_id=run_id,
        index=0,
        test="dashboard",
        events_topic=f"{base}.dossier.events",
        dead_letter_topic=f"{base}.dossier.dlq",
        group_id=f"{base}.group",
        redis_prefix=f"t:{run_id}:dash:ds:v1",
    )
    try:
        chromium = ensure_chromium()
    except LocalStackError as exc:
        pytest.fail(f"the browser cannot be installed: {exc}", pytrace=False)
    # Ten simulated days: the clock ends mid-September, the quarter holds all of them, and
    # the last tenth of the events comes later, as an update while the page is open.
    lines = simulate(
        tmp / "workload.jsonl", "--start", "2025-09-01", "--days", "10", "--scale", "0.03",
        "--seed", "7",
    )  # fmt: skip
    keys = [e.dossier_id.encode() for e in events_of(lines)]
    cut = len(lines) * 9 // 10
    topics = {names.events_topic: 2, names.dead_letter_topic: 1}
    kafka_admin.ensure_topics(stack.kafka_bootstrap, topics)
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    publish_raw(stack.kafka_bootstrap, names.events_topic, lines[:cut], keys[:cut])
    env = worker_env(stack, names, tmp) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_SERIES_INTERVAL_S": "1",
    }
    worker = WorkerProcess(env, tmp / "worker.log").start()
    dashboard: subprocess.Popen[bytes] | None = None
    try:
        done = wait_for(
            lambda: client.hget(meta_key(names.redis_prefix), "events_in") == str(cut), 60
        )
        assert done, worker.log_tail()
        port = free_port()
        with open(tmp / "dashboard.log", "ab") as log:
            dashboard = subprocess.Popen(
                [sys.executable, "-m", "dossier_stream.cli", "dashboard", "--port", str(port),
                 "--redis-url", stack.redis_url, "--redis-prefix", names.redis_prefix],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/health", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        assert wait_for(healthy, 30), (tmp / "dashboard.log").read_text()
        with sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(
                    executable_path=chromium, headless=True, args=["--no-sandbox"]
                )
            except Exception as exc:  # the test fails, never skips, without a browser
                pytest.fail(f"chromium did not start: {exc}", pytrace=False)
            yield Live(
                names, client, url, browser, worker, lines[cut:], keys[cut:],
                stack.kafka_bootstrap, tmp,
            )  # fmt: skip
            browser.close()
    finally:
        if dashboard is not None and dashboard.poll() is None:
            dashboard.terminate()
            dashboard.wait(15)
        worker.stop()
        kafka_admin.delete_topics(stack.kafka_bootstrap, list(topics))
        keys_left = list(client.scan_iter(match=f"{names.redis_prefix}*", count=500))
        if keys_left:
            client.delete(*keys_left)
        client.close()


def three_agencies(client: redis.Redis, prefix: str) -> list[str]:
    """The commune with most overdue now, a department below target, and the department
    with most overdue now (another one when they coincide)."""
    commune = client.zrevrange(rank_key(prefix, "overdue_now", "commune"), 0, 0)[0]
    below = sorted(client.smembers(below_target_key(prefix)))
    departments = client.zrevrange(rank_key(prefix, "overdue_now", "city"), 0, 2)
    chosen = [commune, below[0]]
    chosen.append(next(d for d in departments if d not in chosen))
    return chosen


# -- the tests ----------------------------------------------------------------------------


def test_the_page_shows_redis_and_follows_it_live(live: Live) -> None:
    prefix = live.names.redis_prefix
    page = live.browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live.url + "/")
    page.wait_for_selector("#snapshot[data-offsets]")
    wait_for_watermark(page, live.client, prefix, 15)
    agencies = three_agencies(live.client, prefix)
    scopes = ["city"] + [f"agency:{code}" for code in agencies]
    compared = check_figures(page, live.client, prefix, scopes)
    assert compared == 6 + 3 * 7  # six city cards; seven figure columns for each agency
    # The marks: the below-target set from Redis, as the table marks it.
    below = live.client.smembers(below_target_key(prefix))
    assert below, "the workload has no agency below target: nothing to check"
    marked = set(page.eval_on_selector_all("tr.below", "rows => rows.map(r => r.dataset.code)"))
    assert marked == below
    check_open_alerts(page, live.client, prefix)

    # An update without a reload: the rest of the workload goes in; the page follows.
    page.evaluate("window.__sameDocument = true")
    before = page.get_attribute(
        '#snapshot [data-scope="city"][data-field$=".received_total"]', "data-value"
    )
    publish_raw(live.bootstrap, live.names.events_topic, live.later, live.later_keys)
    total = str(int(live.client.hget(meta_key(prefix), "events_in")) + len(live.later))
    assert wait_for(lambda: live.client.hget(meta_key(prefix), "events_in") == total, 60)
    wait_for_watermark(page, live.client, prefix, 20)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    check_figures(page, live.client, prefix, scopes)
    after = page.get_attribute(
        '#snapshot [data-scope="city"][data-field$=".received_total"]', "data-value"
    )
    assert after != before, "the update changed nothing the test could see"

    # A live alert: stored and published as the worker does; it shows without a reload.
    event = AlertEvent(
        id="browser-alert-1", incident_id="browser-incident-1", kind="overdue_spike",
        scope=f"agency:{agencies[0]}", agency=agencies[0],
        agency_name=REGISTRY.get(agencies[0]).name,  # type: ignore[union-attr]
        severity="critical", action="opened", at="2025-09-10T03:00:00Z",
        opened_at="2025-09-10T03:00:00Z", figures={"became_overdue_1h": 9}, baseline={"mean": 1},
    )  # fmt: skip
    live.client.hset(alerts_open_key(prefix), event.incident_id, event.model_dump_json())
    live.client.xadd(alerts_log_key(prefix), {"id": event.id, "alert": event.model_dump_json()})
    live.client.publish(alerts_channel(prefix), event.model_dump_json())
    page.wait_for_selector('[data-feed="open"] [data-alert-id="browser-alert-1"]', timeout=10_000)
    item = page.locator('[data-feed="open"] [data-alert-id="browser-alert-1"]').inner_text()
    assert "Tăng đột biến hồ sơ quá hạn" in item and REGISTRY.get(agencies[0]).name in item  # type: ignore[union-attr]
    assert page.locator(f'tr[data-code="{agencies[0]}"] [data-mark="alert"]').count() == 1
    check_open_alerts(page, live.client, prefix)
    assert page.evaluate("window.__sameDocument === true")
    assert errors == []


def test_the_agency_filter_and_sorting_follow_redis(live: Live) -> None:
    prefix = live.names.redis_prefix
    page = live.browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live.url + "/")
    page.wait_for_selector("#agency-table")
    window = page.get_attribute("#snapshot", "data-window")
    page.evaluate("window.__sameDocument = true")
    page.select_option("#level-filter", "commune")
    want = expected_order(live.client, prefix, "commune", "overdue_now", True)
    assert wait_rows(page, want) == want
    page.click('th[data-sort="received"] a')
    want = expected_order(live.client, prefix, "commune", f"{window}.received_total", True)
    assert wait_rows(page, want) == want
    page.click('th[data-sort="received"] a')  # again: ascending
    want = expected_order(live.client, prefix, "commune", f"{window}.received_total", False)
    assert wait_rows(page, want) == want
    page.select_option("#level-filter", "city")  # the sort stays: received, ascending
    want = expected_order(live.client, prefix, "city", f"{window}.received_total", False)
    assert wait_rows(page, want) == want
    page.click('th[data-sort="online"] a')
    want = expected_order(live.client, prefix, "city", f"{window}.online_ratio", True)
    assert wait_rows(page, want) == want
    assert page.evaluate("window.__sameDocument === true")
    assert "level=city" in page.url and "sort=online" in page.url  # a link others can open
    # The departments, lowest online share first: who is below target, where overdue rises.
    page.click('th[data-sort="online"] a')
    want = expected_order(live.client, prefix, "city", f"{window}.online_ratio", False)
    assert wait_rows(page, want) == want
    screenshot(page, live.tmp, "default", full_page=True)


def test_an_agency_page_shows_its_figures_and_gauges(live: Live) -> None:
    prefix = live.names.redis_prefix
    code = three_agencies(live.client, prefix)[0]
    page = live.browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live.url}/")
    page.click(f'tr[data-code="{code}"] td.name a')
    page.wait_for_selector(f'#snapshot[data-code="{code}"]')
    wait_for_watermark(page, live.client, prefix, 15)
    check_figures(page, live.client, prefix, [f"agency:{code}"])
    fields = {f for f, _, _ in page.evaluate(FIGURES_JS, f"agency:{code}")}
    assert {"open_now", "overdue_now", "near_due_now", "not_yet_due_now"} <= fields
    assert REGISTRY.get(code).name in page.locator("h2.agency-name").inner_text()  # type: ignore[union-attr]
    assert page.locator(".chart svg path").count() >= 4  # two charts, their lines drawn


@pytest.mark.parametrize(("name", "width", "height"), [("phone", 390, 844), ("wall", 1920, 1080)])
def test_the_page_fits_a_phone_and_a_wall_display(
    live: Live, name: str, width: int, height: int
) -> None:
    page = live.browser.new_page(viewport={"width": width, "height": height})
    page.goto(live.url + "/")
    page.wait_for_selector(".chart svg")
    # No sideways scrolling of the page itself (the agency table scrolls in its own box).
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a {width}px screen"
    box = page.locator(".cards").bounding_box()
    assert box is not None and box["width"] <= width
    path = screenshot(page, live.tmp, name)
    assert path.stat().st_size > 10_000
