"""Reads the dashboard's views from Redis, each in one MULTI/EXEC with the watermark."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis
from pydantic import ValidationError

from dashboard import rules
from schemas.alerts import AlertEvent
from schemas.registry import Agency, AgencyRegistry
from schemas.serving import (
    COUNT_METRICS,
    WINDOWS,
    AgencyResponse,
    AgencyRow,
    AlertsResponse,
    BelowTargetResponse,
    MetaResponse,
    OverviewResponse,
    RankingEntry,
    RankingResponse,
    ScopeReading,
    ScopeResponse,
    SeriesPoint,
    SeriesResponse,
    WorkerMeta,
    alerts_log_key,
    alerts_open_key,
    below_target_key,
    flagged_key,
    meta_key,
    rank_key,
    scope_key,
    series_key,
    stuck_key,
)

log = logging.getLogger(__name__)

RECENT_ALERTS = 20
RISING_FIELD = "hourly.became_overdue"


class Reader:
    """The dashboard's reads. Each view is one transaction holding `{prefix}:meta`, so the
    figures it returns are as of the `offsets` it returns (the time series excepted: the
    worker refreshes them every few seconds)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        registry: AgencyRegistry,
        online_target: float = 0.80,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.registry = registry
        self.online_target = online_target

    # -- views ---------------------------------------------------------------------------

    def overview(self, window: str | None = None) -> OverviewResponse:
        agencies = list(self.registry)
        p = self.client.pipeline(transaction=True)
        p.hgetall(meta_key(self.prefix))
        for scope in ("city", "level:city", "level:commune"):
            p.hgetall(scope_key(self.prefix, scope))
        p.smembers(below_target_key(self.prefix))
        p.hgetall(alerts_open_key(self.prefix))
        p.xrevrange(alerts_log_key(self.prefix), count=RECENT_ALERTS)
        p.hgetall(series_key(self.prefix, "city"))
        for a in agencies:
            p.hgetall(scope_key(self.prefix, f"agency:{a.code}"))
            p.hget(series_key(self.prefix, f"agency:{a.code}"), RISING_FIELD)
        out = p.execute()
        meta_raw, city, lcity, lcommune, below, open_raw, log_raw, city_series = out[:8]
        meta = _meta(meta_raw)
        alerts = AlertsResponse(open=_open_alerts(open_raw), recent=_logged_alerts(log_raw))
        rest = out[8:]
        rows = [
            self._row(a, rest[2 * i], rest[2 * i + 1], below, alerts, meta)
            for i, a in enumerate(agencies)
        ]
        return OverviewResponse(
            **_watermark(meta_raw),
            meta=meta,
            window=_window(window, meta),
            online_target=self.online_target,
            city=_reading(city),
            levels={"city": _reading(lcity), "commune": _reading(lcommune)},
            agencies=rows,
            series=_series("city", city_series),
            alerts=alerts,
        )

    def agency(self, code: str, window: str | None = None) -> AgencyResponse | None:
        agency = self.registry.get(code)
        if agency is None:
            return None
        scope = f"agency:{code}"
        p = self.client.pipeline(transaction=True)
        p.hgetall(meta_key(self.prefix))
        p.hgetall(scope_key(self.prefix, scope))
        p.hgetall(series_key(self.prefix, scope))
        p.sismember(below_target_key(self.prefix), code)
        p.hgetall(alerts_open_key(self.prefix))
        p.xrevrange(alerts_log_key(self.prefix), count=200)
        p.hgetall(stuck_key(self.prefix, code))
        p.hgetall(flagged_key(self.prefix, code))
        meta_raw, figures, series, below, open_raw, log_raw, stuck, flagged = p.execute()
        meta = _meta(meta_raw)
        mine = [a for a in _open_alerts(open_raw) if a.scope == scope]
        recent = [a for a in _logged_alerts(log_raw) if a.scope == scope][:RECENT_ALERTS]
        alerts = AlertsResponse(open=mine, recent=recent)
        below_set = {code} if below else set()
        row = self._row(agency, figures, series.get(RISING_FIELD), below_set, alerts, meta)
        return AgencyResponse(
            **_watermark(meta_raw),
            meta=meta,
            window=_window(window, meta),
            online_target=self.online_target,
            agency=row,
            series=_series(scope, series),
            stuck=dict(stuck),
            flagged=dict(flagged),
            alerts=alerts,
        )

    def meta(self) -> MetaResponse:
        raw = self.client.hgetall(meta_key(self.prefix))
        return MetaResponse(**_watermark(raw), meta=_meta(raw))  # type: ignore[arg-type]

    def scope(self, scope: str) -> ScopeResponse | None:
        p = self.client.pipeline(transaction=True)
        p.hgetall(meta_key(self.prefix))
        p.hgetall(scope_key(self.prefix, scope))
        meta_raw, figures = p.execute()
        reading = _reading(figures)
        if reading is None:
            return None
        return ScopeResponse(**_watermark(meta_raw), scope=scope, figures=reading)

    def series(self, scope: str) -> SeriesResponse:
        return _series(scope, self.client.hgetall(series_key(self.prefix, scope)))  # type: ignore[arg-type]

    def ranking(self, metric: str, level: str, limit: int | None = None) -> RankingResponse:
        p = self.client.pipeline(transaction=True)
        p.hgetall(meta_key(self.prefix))
        p.zrevrange(
            rank_key(self.prefix, metric, level),
            0,
            -1 if limit is None else limit - 1,
            withscores=True,
        )
        meta_raw, ranked = p.execute()
        return RankingResponse(
            **_watermark(meta_raw),
            metric=metric,
            level=level,
            entries=[RankingEntry(code=c, name=self._name(c), score=s) for c, s in ranked],
        )

    def below_target(self) -> BelowTargetResponse:
        p = self.client.pipeline(transaction=True)
        p.hgetall(meta_key(self.prefix))
        p.smembers(below_target_key(self.prefix))
        meta_raw, below = p.execute()
        window = meta_raw.get("target_window") or "qtd"
        q = self.client.pipeline(transaction=False)
        codes = sorted(below)
        for code in codes:
            q.hget(scope_key(self.prefix, f"agency:{code}"), f"{window}.online_ratio")
        ratios = q.execute() if codes else []
        return BelowTargetResponse(
            **_watermark(meta_raw),
            target_window=window,
            agencies=[
                RankingEntry(code=c, name=self._name(c), score=float(r) if r else 0.0)
                for c, r in zip(codes, ratios, strict=True)
            ],
        )

    def alerts(self, limit: int = RECENT_ALERTS) -> AlertsResponse:
        p = self.client.pipeline(transaction=True)
        p.hgetall(alerts_open_key(self.prefix))
        p.xrevrange(alerts_log_key(self.prefix), count=limit)
        open_raw, log_raw = p.execute()
        return AlertsResponse(open=_open_alerts(open_raw), recent=_logged_alerts(log_raw))

    # -- parts ---------------------------------------------------------------------------

    def _name(self, code: str) -> str:
        agency = self.registry.get(code)
        return agency.name if agency else code

    def _row(
        self,
        agency: Agency,
        figures: Mapping[str, str],
        hourly_text: str | None,
        below: set[str],
        alerts: AlertsResponse,
        meta: WorkerMeta | None,
    ) -> AgencyRow:
        hourly = rules.parse_series(hourly_text)
        recent, before = (
            rules.overdue_counts(hourly, int(meta.clock.timestamp()))
            if meta is not None and meta.clock is not None
            else (0, 0)
        )
        scope = f"agency:{agency.code}"
        return AgencyRow(
            code=agency.code,
            name=agency.name,
            name_en=agency.name_en,
            level=agency.level.value,
            figures=_reading(figures),
            below_target=agency.code in below,
            overdue_rising=recent > before,
            overdue_last_24h=recent,
            overdue_previous_24h=before,
            open_alerts=sum(1 for a in alerts.open if a.scope == scope),
        )


def _reading(fields: Mapping[str, str]) -> ScopeReading | None:
    if not fields:
        return None
    try:
        return ScopeReading.from_redis_hash(fields)
    except (KeyError, ValueError) as exc:
        log.warning("a scope hash does not follow the contract (%s); shown as missing", exc)
        return None


def _meta(raw: Mapping[str, str]) -> WorkerMeta | None:
    if not raw or "updated_at" not in raw:
        return None
    try:
        return WorkerMeta.model_validate(raw)
    except ValidationError as exc:
        log.warning("the meta hash does not follow the contract: %s", exc)
        return None


def _watermark(raw: Mapping[str, str]) -> dict[str, Any]:
    try:
        offsets = {str(k): int(v) for k, v in json.loads(raw.get("offsets") or "{}").items()}
    except (ValueError, AttributeError):
        offsets = {}
    events_in = raw.get("events_in", "0")
    return {"offsets": offsets, "events_in": int(events_in) if events_in.isdigit() else 0}


def _window(window: str | None, meta: WorkerMeta | None) -> str:
    if window in WINDOWS:
        return window
    target = meta.target_window if meta is not None else None
    return target if target in WINDOWS else "qtd"


def _series(scope: str, fields: Mapping[str, str]) -> SeriesResponse:
    out: dict[str, dict[str, list[SeriesPoint]]] = {"hourly": {}, "daily": {}}
    for grain in out:
        for metric in COUNT_METRICS:
            points = rules.parse_series(fields.get(f"{grain}.{metric}"))
            out[grain][metric] = [SeriesPoint(t=t, value=n) for t, n in sorted(points.items())]
    return SeriesResponse(scope=scope, **out)


def _alert(text: str) -> AlertEvent | None:
    try:
        return AlertEvent.model_validate_json(text)
    except ValidationError as exc:
        log.warning("an alert does not follow the contract: %s", exc)
        return None


def _open_alerts(raw: Mapping[str, str]) -> list[AlertEvent]:
    found = [a for a in map(_alert, raw.values()) if a is not None]
    return sorted(found, key=lambda a: a.opened_at, reverse=True)


def _logged_alerts(entries: list[tuple[str, Mapping[str, str]]]) -> list[AlertEvent]:
    found = (_alert(fields.get("alert", "")) for _, fields in entries)
    return [a for a in found if a is not None]


def clock_of(meta: WorkerMeta | None) -> datetime | None:
    return None if meta is None else meta.clock
