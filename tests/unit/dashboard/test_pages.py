"""What the pages show: figures with their Redis field and raw value, marks, alerts, order."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest

from dashboard.pages import TableView, agency_fragment, overview_fragment, table_rows
from schemas.alerts import AlertEvent
from schemas.serving import (
    COUNT_METRICS,
    GAUGES,
    RATIO_METRICS,
    WINDOWS,
    AgencyResponse,
    AgencyRow,
    AlertsResponse,
    OverviewResponse,
    ScopeReading,
    SeriesResponse,
    WorkerMeta,
)

CLOCK = datetime(2025, 10, 8, 1, 0, tzinfo=UTC)


def reading(**fields: str) -> ScopeReading:
    """A scope's figures from a Redis-like hash: zeros and empty ratios unless given."""
    base = {g: "0" for g in GAUGES}
    for w in WINDOWS:
        base |= {f"{w}.{m}": "0" for m in COUNT_METRICS}
        base |= {f"{w}.{r}": "" for r in RATIO_METRICS}
    return ScopeReading.from_redis_hash(base | fields)


def row(code: str, level: str, **kw: object) -> AgencyRow:
    defaults: dict[str, object] = {
        "name": f"Đơn vị {code}",
        "below_target": False,
        "overdue_rising": False,
    }
    return AgencyRow(code=code, level=level, **(defaults | kw))  # type: ignore[arg-type]


ALERT = AlertEvent(
    id="a-1",
    incident_id="i-1",
    kind="overdue_spike",
    scope="agency:SO-YTE",
    agency="SO-YTE",
    agency_name="Sở Y tế",
    severity="critical",
    action="opened",
    at=CLOCK,
    opened_at=CLOCK,
    figures={"became_overdue_1h": 12},
    baseline={"mean": 2},
)

ROWS = [
    # SO-YTE and 11311 tie on overdue: by code 11311 comes first, by name Sở Y tế would.
    row(
        "SO-YTE",
        "city",
        name="Sở Y tế",
        figures=reading(overdue_now="5", **{"qtd.online_ratio": "0.5"}),
        below_target=True,
        open_alerts=1,
    ),
    row("SO-XD", "city", figures=reading(overdue_now="9", **{"qtd.online_ratio": "0.91"})),
    row(
        "11311",
        "commune",
        name="Xã An Lão",
        figures=reading(overdue_now="5", **{"qtd.online_ratio": "0.8"}),
        overdue_rising=True,
        overdue_last_24h=4,
        overdue_previous_24h=1,
    ),
    row("11314", "commune"),  # no figures yet
]


def overview(alerts: AlertsResponse | None = None) -> OverviewResponse:
    return OverviewResponse(
        offsets={"0": 120, "1": 95},
        events_in=215,
        meta=WorkerMeta(updated_at=CLOCK, clock=CLOCK, events_in=215),
        window="qtd",
        online_target=0.8,
        city=reading(**{"qtd.received_total": "12345", "qtd.online_ratio": "0.834567"}),
        agencies=ROWS,
        series=SeriesResponse(scope="city"),
        alerts=alerts or AlertsResponse(),
    )


def figures_of(html: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(scope, field) -> (data-value, text shown) of every figure in the HTML."""
    found = re.findall(
        r'data-scope="([^"]+)" data-field="([^"]+)" data-value="([^"]*)">([^<]*)<', html
    )
    return {(s, f): (v, unescape(t)) for s, f, v, t in found}


def test_each_figure_carries_its_scope_field_raw_value_and_a_vietnamese_text() -> None:
    html = overview_fragment(overview(), TableView())
    shown = figures_of(html)
    assert shown[("city", "qtd.received_total")] == ("12345", "12.345")
    assert shown[("city", "qtd.online_ratio")] == ("0.834567", "83,5%")
    assert shown[("agency:SO-XD", "overdue_now")] == ("9", "9")
    assert shown[("agency:11314", "overdue_now")] == ("", "–")  # no figures: a dash, no zero
    assert "data-offsets='{&quot;0&quot;:120,&quot;1&quot;:95}'" in html
    assert 'data-events-in="215"' in html and 'data-window="qtd"' in html
    assert "08/10/2025 08:00" in html  # the clock in Vietnam time, day first


def test_marks_name_the_agencies_below_target_rising_or_alerting() -> None:
    html = overview_fragment(overview(), TableView())
    marks = dict(re.findall(r'<tr data-code="([^"]+)"[^>]*class="([^"]*)"', html))
    assert marks == {"SO-YTE": "below alerting", "SO-XD": "", "11311": "rising", "11314": ""}
    assert "Sở Y tế" in html.split("dưới chỉ tiêu trực tuyến")[1].split("</p>")[0]


@pytest.mark.parametrize(
    ("view", "order"),
    [
        (TableView("overdue", True, "all"), ["SO-XD", "11311", "SO-YTE", "11314"]),
        (TableView("overdue", False, "all"), ["11311", "SO-YTE", "SO-XD", "11314"]),
        (TableView("online", False, "all"), ["SO-YTE", "11311", "SO-XD", "11314"]),
        (TableView("overdue", True, "commune"), ["11311", "11314"]),
        (TableView("overdue", True, "city"), ["SO-XD", "SO-YTE"]),
        (TableView("rising", True, "all"), ["11311", "SO-XD", "SO-YTE", "11314"]),
    ],
)
def test_the_table_is_filtered_by_level_and_sorted_with_ties_by_code(
    view: TableView, order: list[str]
) -> None:
    assert [r.code for r in table_rows(ROWS, view, "qtd")] == order
    html = overview_fragment(overview(), view)
    assert re.findall(r'<tr data-code="([^"]+)"', html) == order


def test_query_parameters_fall_back_to_the_defaults() -> None:
    assert TableView.parse(None, None, None) == TableView("overdue", True, "all")
    assert TableView.parse("name", None, "commune") == TableView("name", False, "commune")
    assert TableView.parse("online", "asc", "x") == TableView("online", False, "all")
    assert TableView.parse("nope", "sideways", "city") == TableView("overdue", True, "city")


def test_no_alerts_is_an_empty_feed_and_an_alert_is_labelled_in_both_languages() -> None:
    assert "Không có cảnh báo" in overview_fragment(overview(), TableView())
    html = overview_fragment(overview(AlertsResponse(open=[ALERT], recent=[ALERT])), TableView())
    item = re.search(r'<li class="alert critical opened"[^>]*>.*?</li>', html)
    assert item is not None
    text = unescape(re.sub(r"<[^>]+>", "", item.group(0)))
    assert "Tăng đột biến hồ sơ quá hạn" in text and "Overdue spike" in text
    assert "Sở Y tế" in text and "Nghiêm trọng" in text and "08/10/2025 08:00" in text


def test_names_are_escaped() -> None:
    rows = [row("X1", "city", name="<script>alert(1)</script>", figures=reading())]
    html = overview_fragment(overview().model_copy(update={"agencies": rows}), TableView())
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_the_agency_page_shows_its_gauges_and_feed_problems() -> None:
    data = AgencyResponse(
        offsets={"0": 1},
        meta=WorkerMeta(updated_at=CLOCK, clock=CLOCK),
        window="24h",
        online_target=0.8,
        agency=row(
            "SO-YTE",
            "city",
            name="Sở Y tế",
            figures=reading(open_now="10", overdue_now="3", near_due_now="2", not_yet_due_now="7"),
        ),
        series=SeriesResponse(scope="agency:SO-YTE"),
        stuck={"D-1": "2025-10-08T00:00:00+00:00"},
        flagged={"D-2": "gap_released"},
        alerts=AlertsResponse(),
    )
    html = agency_fragment(data)
    shown = figures_of(html)
    for field, value in (("open_now", "10"), ("overdue_now", "3"), ("not_yet_due_now", "7")):
        assert shown[("agency:SO-YTE", field)] == (value, value)
    assert "Sở Y tế" in html and "D-1" in html and "gap_released" in html
    assert "08/10/2025 07:00" in html  # the stuck dossier's wait, in Vietnam time
