"""The dashboard's HTML: whole pages and the fragments the browser swaps in on each update.

Every figure is rendered with `data-scope`, `data-field` and `data-value` (the value as
Redis holds it), and each view's root carries `data-offsets`, the watermark it was read
at, so what a page shows can be checked against Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlencode

from dashboard import rules
from dashboard.format import DASH, vn_datetime, vn_number, vn_percent
from dashboard.labels import (
    FIELD_LABELS,
    LEVEL_LABELS,
    MARK_LABELS,
    SEVERITY_LABELS,
    WINDOW_LABELS,
    both,
)
from schemas.alerts import ACTION_LABELS, KIND_LABELS, AlertEvent
from schemas.serving import (
    WINDOWS,
    AgencyResponse,
    AgencyRow,
    AlertsResponse,
    OverviewResponse,
    ScopeReading,
    SeriesResponse,
    Watermarked,
    WorkerMeta,
)

TITLE = ("Hồ sơ thủ tục hành chính — Hải Phòng", "Administrative dossiers, live")
DAY_S = 86400
VN_OFFSET_S = 7 * 3600

# sort key -> (label key, field of the figures; `{w}` is the window)
SORT_COLUMNS: dict[str, tuple[str, str]] = {
    "name": ("name", ""),
    "received": ("received_total", "{w}.received_total"),
    "online": ("online_ratio", "{w}.online_ratio"),
    "full_online": ("full_online_ratio", "{w}.full_online_ratio"),
    "on_time": ("on_time_rate", "{w}.on_time_rate"),
    "overdue": ("overdue_now", "overdue_now"),
    "near_due": ("near_due_now", "near_due_now"),
    "open": ("open_now", "open_now"),
    "rising": ("rising", ""),
}
DEFAULT_SORT = "overdue"
STUCK_TITLE = ("Hồ sơ chờ số thứ tự còn thiếu", "stuck on a sequence gap")
FLAGGED_TITLE = ("Hồ sơ được gắn cờ", "flagged dossiers")
LEVELS = ("all", "city", "commune")


@dataclass(frozen=True)
class TableView:
    """How the agency table is shown: sort column, direction and level filter."""

    sort: str = DEFAULT_SORT
    descending: bool = True
    level: str = "all"

    @classmethod
    def parse(cls, sort: str | None, direction: str | None, level: str | None) -> TableView:
        """From query parameters; unknown values fall back to the defaults."""
        key = sort if sort in SORT_COLUMNS else DEFAULT_SORT
        descending = direction == "desc" if direction in ("asc", "desc") else key != "name"
        return cls(key, descending, level if level in LEVELS else "all")


def figure_value(figures: ScopeReading | None, field: str) -> float | int | None:
    """A figure by its Redis field name (`overdue_now`, `qtd.online_ratio`)."""
    if figures is None:
        return None
    if "." not in field:
        return int(getattr(figures, field))
    window, metric = field.split(".", 1)
    value = getattr(figures.windows[window], metric)
    return None if value is None else value


def sort_key_of(row: AgencyRow, sort: str, window: str) -> float | int | str | None:
    if sort == "name":
        return row.name.casefold()
    if sort == "rising":
        return row.overdue_last_24h - row.overdue_previous_24h if row.figures else None
    field = SORT_COLUMNS[sort][1].format(w=window)
    return figure_value(row.figures, field)


def table_rows(rows: Iterable[AgencyRow], view: TableView, window: str) -> list[AgencyRow]:
    """The agency table's rows: one level (or all), in the chosen order, ties by code."""
    shown = rules.filter_level(list(rows), view.level, lambda r: r.level)
    return rules.sort_rows(
        shown,
        lambda r: sort_key_of(r, view.sort, window),
        descending=view.descending,
        tiebreak=lambda r: r.code,
    )


# -- pieces ------------------------------------------------------------------------------


def _bi(pair: tuple[str, str]) -> str:
    return f'{escape(pair[0])} <span class="en">{escape(pair[1])}</span>'


def _raw(value: float | int | None) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _shown(value: float | int | None, field: str) -> str:
    if field.endswith("_ratio") or field.endswith("_rate"):
        return vn_percent(value)
    return vn_number(value)


def figure(scope: str, field: str, figures: ScopeReading | None, tag: str = "span") -> str:
    """One figure with its scope, field and raw value as attributes."""
    value = figure_value(figures, field)
    return (
        f'<{tag} class="fig" data-scope="{escape(scope)}" data-field="{escape(field)}" '
        f'data-value="{_raw(value)}">{_shown(value, field)}</{tag}>'
    )


def _root_attrs(data: Watermarked, view: str, window: str) -> str:
    offsets = json.dumps(data.offsets, sort_keys=True, separators=(",", ":"))
    return (
        f'id="snapshot" data-view="{view}" data-window="{window}" '
        f"data-offsets='{escape(offsets)}' data-events-in=\"{data.events_in}\""
    )


def _status(meta: WorkerMeta | None) -> str:
    if meta is None:
        return (
            '<p class="status">Chưa có số liệu: đang chờ bộ xử lý ghi lần đầu '
            '<span class="en">no figures yet: waiting for the worker\'s first flush</span></p>'
        )
    return (
        f'<p class="status">Số liệu lúc <span class="en">figures as of</span> '
        f'<time data-clock="{escape(meta.clock.isoformat() if meta.clock else "")}">'
        f"{vn_datetime(meta.clock)}</time> (giờ Việt Nam) · "
        f"{vn_number(meta.events_in)} sự kiện <span class='en'>events</span> · "
        f'<span id="live-state" class="live">● trực tiếp <span class="en">live</span></span></p>'
    )


def _query(base: Mapping[str, str], **changes: str) -> str:
    params = {k: v for k, v in {**base, **changes}.items() if v}
    return "?" + urlencode(params)


def _window_nav(path: str, window: str, params: Mapping[str, str]) -> str:
    links = []
    for w in WINDOWS:
        vi, en = WINDOW_LABELS[w]
        current = ' aria-current="true"' if w == window else ""
        links.append(
            f'<a data-nav data-window="{w}" href="{escape(path + _query(params, window=w))}"'
            f'{current} title="{escape(en)}">{escape(vi)}</a>'
        )
    return (
        '<nav class="windows" aria-label="Khoảng thời gian (window)">'
        f'<span class="lbl">Khoảng <span class="en">window</span></span>{"".join(links)}</nav>'
    )


def _cards(scope: str, figures: ScopeReading | None, window: str, target: float) -> str:
    ratio = figure_value(figures, f"{window}.online_ratio")
    below = ratio is not None and ratio < target
    width = 0 if ratio is None else max(0.0, min(100.0, float(ratio) * 100))
    online = (
        f'<div class="card{" bad" if below else ""}"><h3>{_bi(FIELD_LABELS["online_ratio"])}</h3>'
        f'<p class="big">{figure(scope, f"{window}.online_ratio", figures)}</p>'
        f'<div class="meter" title="chỉ tiêu (target) {vn_percent(target, 0)}">'
        f'<div class="fill" style="width:{width:.1f}%"></div>'
        f'<div class="target" style="left:{target * 100:.1f}%"></div></div>'
        f'<p class="note">chỉ tiêu <span class="en">target</span> ≥ {vn_percent(target, 0)}'
        f"{' · dưới chỉ tiêu <span class=en>below target</span>' if below else ''}</p></div>"
    )
    overdue = figure_value(figures, "overdue_now") or 0
    cards = [
        ("received_total", f"{window}.received_total", ""),
        None,
        ("full_online_ratio", f"{window}.full_online_ratio", ""),
        ("on_time_rate", f"{window}.on_time_rate", ""),
        ("overdue_now", "overdue_now", " bad" if overdue else ""),
        ("near_due_now", "near_due_now", ""),
    ]
    out = []
    for card in cards:
        if card is None:
            out.append(online)
            continue
        label, field, cls = card
        out.append(
            f'<div class="card{cls}"><h3>{_bi(FIELD_LABELS[label])}</h3>'
            f'<p class="big">{figure(scope, field, figures)}</p></div>'
        )
    return f'<section class="cards">{"".join(out)}</section>'


def _chart_data(series: SeriesResponse, clock: datetime | None) -> tuple[str, str]:
    """The two charts' JSON (hourly: last 168 hours; daily: last 90 days), zeros filled
    by the browser from `end`, `step` and `count`."""
    t = int((clock or datetime.now(UTC)).timestamp())
    hour_end = rules.hour_start(t)
    day_end = t - (t + VN_OFFSET_S) % DAY_S

    def lines(grain: Mapping[str, list], metrics: tuple[tuple[str, str], ...]) -> list:
        return [
            {
                "label": both(FIELD_LABELS[m]),
                "cls": cls,
                "points": {str(p.t): p.value for p in grain.get(m, [])},
            }
            for m, cls in metrics
        ]

    hourly = {
        "title": "Theo giờ, 7 ngày qua (hourly, last 7 days)",
        "step": 3600,
        "end": hour_end,
        "count": 168,
        "lines": lines(series.hourly, (("received_total", "s1"), ("became_overdue", "s2"))),
    }
    daily = {
        "title": "Theo ngày, 90 ngày qua (daily, last 90 days)",
        "step": DAY_S,
        "end": day_end,
        "count": 90,
        "lines": lines(
            series.daily,
            (("received_total", "s1"), ("became_overdue", "s2"), ("resolved_late", "s3")),
        ),
    }
    return json.dumps(hourly), json.dumps(daily)


def _charts(series: SeriesResponse, clock: datetime | None) -> str:
    hourly, daily = _chart_data(series, clock)
    return (
        '<section class="charts"><h2>Xu hướng <span class="en">trends</span></h2>'
        f'<div class="chart" data-scope="{escape(series.scope)}" data-chart="hourly" '
        f"data-series='{escape(hourly)}'></div>"
        f'<div class="chart" data-scope="{escape(series.scope)}" data-chart="daily" '
        f"data-series='{escape(daily)}'></div></section>"
    )


def _alert_item(alert: AlertEvent) -> str:
    vi, en = KIND_LABELS.get(alert.kind, (alert.kind, alert.kind))
    act_vi, act_en = ACTION_LABELS.get(alert.action, (alert.action, alert.action))
    sev_vi, sev_en = SEVERITY_LABELS.get(alert.severity, (alert.severity, alert.severity))
    who = alert.agency_name or alert.scope
    figures = ", ".join(f"{escape(k)} {escape(_evidence(v))}" for k, v in alert.figures.items())
    return (
        f'<li class="alert {escape(alert.severity)} {escape(alert.action)}" '
        f'data-alert-id="{escape(alert.id)}" data-kind="{escape(alert.kind)}" '
        f'data-scope="{escape(alert.scope)}">'
        f'<span class="sev">{escape(sev_vi)} <span class="en">{escape(sev_en)}</span></span> '
        f"<strong>{escape(vi)}</strong> <span class='en'>{escape(en)}</span> — "
        f"{escape(who)} · {escape(act_vi)} <span class='en'>{escape(act_en)}</span> "
        f"<time>{vn_datetime(alert.at)}</time>"
        f"{f'<br><small>{figures}</small>' if figures else ''}</li>"
    )


def _evidence(value: int | str | None) -> str:
    return vn_number(value) if isinstance(value, int) else DASH if value is None else str(value)


def _alerts(alerts: AlertsResponse) -> str:
    empty = '<p class="empty">Không có cảnh báo <span class="en">No alerts</span></p>'
    opened = "".join(_alert_item(a) for a in alerts.open)
    recent = "".join(_alert_item(a) for a in alerts.recent)
    return (
        '<section class="alerts" id="alerts"><h2>Cảnh báo <span class="en">alerts</span></h2>'
        f'<h3>Đang mở <span class="en">open now</span> ({len(alerts.open)})</h3>'
        f"{f'<ul class=feed data-feed=open>{opened}</ul>' if opened else empty}"
        '<h3>Gần đây <span class="en">recent</span></h3>'
        f"{f'<ul class=feed data-feed=recent>{recent}</ul>' if recent else empty}"
        "</section>"
    )


def _marks(row: AgencyRow) -> str:
    marks = []
    if row.below_target:
        marks.append(("below", MARK_LABELS["below"]))
    if row.overdue_rising:
        marks.append(("rising", MARK_LABELS["rising"]))
    if row.open_alerts:
        marks.append(("alert", MARK_LABELS["alert"]))
    return "".join(
        f'<span class="mark {cls}" data-mark="{cls}" title="{escape(en)}">{escape(vi)}</span>'
        for cls, (vi, en) in marks
    )


def _table(rows: list[AgencyRow], view: TableView, window: str, target: float) -> str:
    params = {"window": window, "level": view.level if view.level != "all" else ""}
    heads = []
    for key, (label, _) in SORT_COLUMNS.items():
        current = key == view.sort
        direction = ("asc" if view.descending else "desc") if current else None
        href = escape("/" + _query(params, sort=key, dir=direction or ""))
        arrow = (" ▼" if view.descending else " ▲") if current else ""
        aria = f' aria-sort="{"descending" if view.descending else "ascending"}"' if current else ""
        heads.append(
            f'<th data-sort="{key}"{aria}><a data-nav href="{href}">'
            f"{_bi(FIELD_LABELS[label])}{arrow}</a></th>"
        )
    body = []
    for row in rows:
        scope = f"agency:{row.code}"
        cls = " ".join(
            c
            for c, on in (
                ("below", row.below_target),
                ("rising", row.overdue_rising),
                ("alerting", bool(row.open_alerts)),
            )
            if on
        )
        f = row.figures
        rising = (
            f'<td class="num" data-value="{row.overdue_last_24h - row.overdue_previous_24h}">'
            f"{vn_number(row.overdue_last_24h)} / {vn_number(row.overdue_previous_24h)}</td>"
            if f is not None
            else f'<td class="num" data-value="">{DASH}</td>'
        )
        body.append(
            f'<tr data-code="{escape(row.code)}" data-level="{row.level}" '
            f'data-scope="{escape(scope)}" class="{cls}">'
            f'<td class="name"><a href="/agency/{escape(row.code)}?window={window}">'
            f"{escape(row.name)}</a>{_marks(row)}</td>"
            + "".join(
                figure(scope, SORT_COLUMNS[k][1].format(w=window), f, "td")
                for k in ("received", "online", "full_online", "on_time")
            )
            + "".join(
                figure(scope, k, f, "td") for k in ("overdue_now", "near_due_now", "open_now")
            )
            + rising
            + "</tr>"
        )
    options = "".join(
        f'<option value="{lv}"{" selected" if lv == view.level else ""}>'
        f"{escape(both(LEVEL_LABELS[lv]))}</option>"
        for lv in LEVELS
    )
    legend = (
        '<p class="legend">'
        f'<span class="mark below">{escape(MARK_LABELS["below"][0])}</span> trực tuyến dưới '
        f'{vn_percent(target, 0)} <span class="en">online below target</span> · '
        f'<span class="mark rising">{escape(MARK_LABELS["rising"][0])}</span> 24 giờ qua nhiều '
        'hơn 24 giờ trước <span class="en">more became overdue in the last 24 h than the 24 h '
        "before</span> · "
        f'<span class="mark alert">{escape(MARK_LABELS["alert"][0])}</span>'
        ' <span class="en">open alert</span></p>'
    )
    return (
        '<section class="agencies"><h2>Đơn vị <span class="en">agencies</span> '
        f'<small id="row-count">({len(rows)})</small></h2>'
        '<label class="filter">Cấp <span class="en">level</span> '
        f'<select id="level-filter" name="level">{options}</select></label>{legend}'
        '<div class="scroll"><table id="agency-table"><thead><tr>'
        f"{''.join(heads)}</tr></thead><tbody>{''.join(body)}</tbody></table></div></section>"
    )


# -- views -------------------------------------------------------------------------------


def overview_fragment(data: OverviewResponse, view: TableView) -> str:
    """The city page's content, as swapped in on every update."""
    window = data.window
    rows = table_rows(data.agencies, view, window)
    params = {
        "sort": view.sort if view.sort != DEFAULT_SORT else "",
        "dir": ""
        if view == TableView.parse(view.sort, None, view.level)
        else ("desc" if view.descending else "asc"),
        "level": view.level if view.level != "all" else "",
    }
    below = [r for r in data.agencies if r.below_target]
    rising = [r for r in data.agencies if r.overdue_rising]
    summary = (
        '<section class="summary">'
        f"<p><strong>{len(below)}</strong> đơn vị dưới chỉ tiêu trực tuyến "
        f'<span class="en">agencies below the online target</span>: '
        f"{escape(', '.join(r.name for r in below)) or DASH}</p>"
        f"<p><strong>{len(rising)}</strong> đơn vị có quá hạn tăng "
        f'<span class="en">agencies with overdue rising</span>: '
        f"{escape(', '.join(r.name for r in rising[:12])) or DASH}"
        f"{' …' if len(rising) > 12 else ''}</p></section>"
    )
    return (
        f"<div {_root_attrs(data, 'overview', window)}>"
        f"{_status(data.meta)}{_window_nav('/', window, params)}"
        f'<h2>Toàn thành phố <span class="en">city-wide</span> · '
        f"{_bi(WINDOW_LABELS[window])}</h2>"
        f"{_cards('city', data.city, window, data.online_target)}"
        f"{summary}"
        f'<div class="two">{_charts(data.series, data.meta.clock if data.meta else None)}'
        f"{_alerts(data.alerts)}</div>"
        f"{_table(rows, view, window, data.online_target)}</div>"
    )


def _gauges(scope: str, figures: ScopeReading | None) -> str:
    open_now = figure_value(figures, "open_now") or 0
    parts = []
    for field, cls in (
        ("open_now", "g0"),
        ("overdue_now", "g2"),
        ("near_due_now", "g3"),
        ("not_yet_due_now", "g1"),
    ):
        value = figure_value(figures, field) or 0
        share = 100.0 if field == "open_now" else (100.0 * value / open_now if open_now else 0.0)
        parts.append(
            f'<div class="gauge {cls}"><span class="gl">{_bi(FIELD_LABELS[field])}</span>'
            f'<span class="bar"><span style="width:{share:.1f}%"></span></span>'
            f"{figure(scope, field, figures)}</div>"
        )
    return (
        '<section class="gauges"><h2>Hồ sơ đang xử lý theo trạng thái '
        f'<span class="en">open dossiers by state</span></h2>{"".join(parts)}</section>'
    )


def _feed_table(title: tuple[str, str], rows: Mapping[str, str], kind: str) -> str:
    if not rows:
        return (
            f'<section class="feed-problems" data-feed="{kind}"><h3>{_bi(title)}</h3>'
            '<p class="empty">Không có <span class="en">none</span></p></section>'
        )
    items = "".join(
        f"<tr><td>{escape(d)}</td><td>{escape(_when(v) if kind == 'stuck' else v)}</td></tr>"
        for d, v in sorted(rows.items())[:200]
    )
    return (
        f'<section class="feed-problems" data-feed="{kind}"><h3>{_bi(title)} ({len(rows)})</h3>'
        f'<div class="scroll"><table>{items}</table></div></section>'
    )


def _when(text: str) -> str:
    try:
        return vn_datetime(datetime.fromisoformat(text))
    except ValueError:
        return text


def agency_fragment(data: AgencyResponse) -> str:
    """One agency's page content."""
    row = data.agency
    scope = f"agency:{row.code}"
    level = LEVEL_LABELS.get(row.level, (row.level, row.level))
    return (
        f'<div {_root_attrs(data, "agency", data.window)} data-code="{escape(row.code)}">'
        f'<p class="crumbs"><a href="/?window={data.window}">← Toàn thành phố '
        '<span class="en">city overview</span></a></p>'
        f'<h2 class="agency-name">{escape(row.name)}'
        f"{f' <span class=en>{escape(row.name_en)}</span>' if row.name_en else ''}"
        f" {_marks(row)}</h2>"
        f'<p class="sub">{_bi(level)} · mã <span class="en">code</span> {escape(row.code)}</p>'
        f"{_status(data.meta)}{_window_nav(f'/agency/{row.code}', data.window, {})}"
        f"{_cards(scope, row.figures, data.window, data.online_target)}"
        f"{_gauges(scope, row.figures)}"
        f'<div class="two">{_charts(data.series, data.meta.clock if data.meta else None)}'
        f"{_alerts(data.alerts)}</div>"
        '<div class="two">'
        f"{_feed_table(STUCK_TITLE, data.stuck, 'stuck')}"
        f"{_feed_table(FLAGGED_TITLE, data.flagged, 'flagged')}"
        "</div></div>"
    )


def page(body: str, title: str = "") -> str:
    """A whole page around a view's fragment; the scripts keep it live."""
    heading = f"{escape(title)} — " if title else ""
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{heading}{escape(TITLE[0])}</title>"
        '<link rel="stylesheet" href="/static/dashboard.css"></head><body>'
        f'<header><h1>{escape(TITLE[0])} <span class="en">{escape(TITLE[1])}</span></h1>'
        '<p class="api"><a href="/docs">API</a></p></header>'
        f'<main id="view">{body}</main>'
        '<script src="/static/charts.js"></script><script src="/static/dashboard.js"></script>'
        "</body></html>"
    )


def error_page(message: str) -> str:
    """What the page shows when it cannot read the figures."""
    return page(
        '<div id="snapshot" data-view="error"><section class="error">'
        "<h2>Không đọc được số liệu <span class='en'>the figures cannot be read</span></h2>"
        f"<p>{escape(message)}</p><p>Trang sẽ thử lại <span class='en'>retrying</span>…</p>"
        "</section></div>"
    )
