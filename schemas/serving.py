"""The read contract: Redis key patterns and the models of what dashboards read there.

Every key starts with a prefix (default `ds:v1`, setting DOSSIER_REDIS_PREFIX); the
`v1` is the contract's version. docs/redis-contract.md describes every key and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.alerts import AlertEvent

# Field names of a scope's figures hash: gauges at the clock, then `{window}.{metric}`.
GAUGES = ("open_now", "overdue_now", "near_due_now", "not_yet_due_now")
WINDOWS = ("1h", "24h", "7d", "30d", "mtd", "qtd", "ytd")
COUNT_METRICS = (
    "received_total",
    "received_in_person",
    "received_online_full",
    "received_online_partial",
    "received_post",
    "resolved_on_time",
    "resolved_late",
    "became_overdue",
)
RATIO_METRICS = ("online_ratio", "full_online_ratio", "on_time_rate")


def scope_key(prefix: str, scope: str) -> str:
    """Hash of one scope's figures: `{prefix}:scope:city`, `{prefix}:scope:agency:{code}`,
    `{prefix}:scope:level:{city|commune}`, `{prefix}:scope:field:{field}`."""
    return f"{prefix}:scope:{scope}"


def series_key(prefix: str, scope: str) -> str:
    """Hash of one scope's time series: fields `hourly.{metric}` / `daily.{metric}` (JSON)."""
    return f"{prefix}:series:{scope}"


def rank_key(prefix: str, metric: str, level: str) -> str:
    """Sorted set of agency codes of one level scored by `online_ratio` or `overdue_now`."""
    return f"{prefix}:rank:{metric}:{level}"


def below_target_key(prefix: str) -> str:
    """Set of city-level agency codes whose online ratio is below the target."""
    return f"{prefix}:below_target"


def stuck_key(prefix: str, agency: str) -> str:
    """Hash of an agency's dossiers waiting on a sequence gap: dossier id -> waiting since."""
    return f"{prefix}:stuck:{agency}"


def flagged_key(prefix: str, agency: str) -> str:
    """Hash of an agency's flagged dossiers: dossier id -> flags (gap_released, time_clamped)."""
    return f"{prefix}:flagged:{agency}"


def meta_key(prefix: str) -> str:
    """Hash: `updated_at`, `clock`, `clock_mode`, `target_window`, and the event counts."""
    return f"{prefix}:meta"


def updates_channel(prefix: str) -> str:
    """Pub/sub channel: one JSON message per flush naming the scopes that changed."""
    return f"{prefix}:updates"


def alerts_open_key(prefix: str) -> str:
    """Hash of the alerts open now: incident id -> the opening `AlertEvent` (JSON)."""
    return f"{prefix}:alerts:open"


def alerts_log_key(prefix: str) -> str:
    """Stream (capped, `XADD MAXLEN ~`) of every alert event, each once: fields `id`, `alert`
    (the `AlertEvent` JSON)."""
    return f"{prefix}:alerts:log"


def alerts_channel(prefix: str) -> str:
    """Pub/sub channel: each alert event (JSON) as it is stored."""
    return f"{prefix}:alerts"


def alerts_state_key(prefix: str) -> str:
    """Hash the worker keeps its alert rules' state in: `{kind}|{scope}` -> JSON. Internal:
    written in the same transaction as the alerts, so an alert is stored exactly once."""
    return f"{prefix}:alerts:state"


class WindowReading(BaseModel):
    """One window's figures of a scope, as read from `{prefix}:scope:{scope}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    received_total: int
    received_in_person: int
    received_online_full: int
    received_online_partial: int
    received_post: int
    resolved_on_time: int
    resolved_late: int
    became_overdue: int
    online_ratio: float | None = Field(description="online / received; None if none received")
    full_online_ratio: float | None
    on_time_rate: float | None = Field(description="the 766 method's on-time rate")


class ScopeReading(BaseModel):
    """A scope's figures as a dashboard reads them: gauges and every window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    open_now: int
    overdue_now: int
    near_due_now: int
    not_yet_due_now: int
    windows: dict[str, WindowReading]

    @classmethod
    def from_redis_hash(cls, fields: Mapping[str, str]) -> ScopeReading:
        """Parse the hash (`HGETALL {prefix}:scope:{scope}`, decoded to str).

        A missing field raises KeyError naming it.
        """
        gauges = {g: int(fields[g]) for g in GAUGES}
        windows = {}
        for w in WINDOWS:
            values: dict[str, int | float | None] = {
                m: int(fields[f"{w}.{m}"]) for m in COUNT_METRICS
            }
            for r in RATIO_METRICS:
                text = fields[f"{w}.{r}"]
                values[r] = float(text) if text else None
            windows[w] = WindowReading.model_validate(values)
        return cls.model_validate({**gauges, "windows": windows})


class WorkerMeta(BaseModel):
    """`{prefix}:meta`: when the figures were last written and what the worker counted."""

    model_config = ConfigDict(extra="forbid")

    updated_at: datetime = Field(description="when the last flush was written (UTC)")
    clock: datetime | None = Field(None, description="the clock the figures are as of")
    clock_mode: str | None = Field(None, description="live or event")
    target_window: str | None = Field(None, description="window of rankings and the target set")
    events_in: int = 0
    applied: int = 0
    duplicates: int = 0
    pending: int = 0
    dead_lettered: int = 0
    offsets: str | None = Field(
        None,
        description="the watermark: JSON object input partition -> next input offset; the "
        "counts and every figure in the same read cover exactly the messages before it",
    )
    stuck_dossiers: int = Field(0, description="dossiers waiting on a sequence gap now")
    flagged_dossiers: int = Field(0, description="dossiers with a flag for their agency")


class UpdateNotice(BaseModel):
    """The message published on the updates channel after each flush."""

    model_config = ConfigDict(extra="forbid")

    updated_at: datetime
    clock: datetime | None = None
    scopes: list[str]


# -- the dashboard's HTTP API (docs/dashboard.md): what it answers, read from the keys above --


class Watermarked(BaseModel):
    """A read made in one Redis transaction with `{prefix}:meta`: `offsets` is its watermark."""

    offsets: dict[str, int] = Field(
        default_factory=dict,
        description="input partition -> next input offset: every figure in this response "
        "covers exactly the messages before it (empty before the worker's first flush)",
    )
    events_in: int = Field(0, description="input messages the figures cover")


class AgencyRow(BaseModel):
    """One agency as the dashboard lists it: registry entry, figures and marks."""

    code: str
    name: str = Field(description="Vietnamese name from the agency registry, with diacritics")
    name_en: str | None = None
    level: str = Field(description="`city` (departments) or `commune` (communes and wards)")
    figures: ScopeReading | None = Field(None, description="None before it has any dossier")
    below_target: bool = Field(description="in `{prefix}:below_target`")
    overdue_rising: bool = Field(
        description="more dossiers became overdue in the last 24 hours than in the 24 before"
    )
    overdue_last_24h: int = Field(0, description="became overdue in the last 24 hour buckets")
    overdue_previous_24h: int = Field(0, description="... in the 24 hour buckets before")
    open_alerts: int = Field(0, description="alerts open now for this agency")


class SeriesPoint(BaseModel):
    """One bucket of a time series: its start (epoch seconds, UTC) and its count."""

    t: int
    value: int


class SeriesResponse(BaseModel):
    """`{prefix}:series:{scope}`: metric -> points, ascending, zero buckets left out."""

    scope: str
    hourly: dict[str, list[SeriesPoint]] = Field(default_factory=dict)
    daily: dict[str, list[SeriesPoint]] = Field(default_factory=dict)


class MetaResponse(Watermarked):
    """`{prefix}:meta`, parsed; `meta` is None before the worker's first flush."""

    meta: WorkerMeta | None = None


class ScopeResponse(Watermarked):
    """One scope's figures (`{prefix}:scope:{scope}`) at the watermark."""

    scope: str
    figures: ScopeReading


class RankingEntry(BaseModel):
    code: str
    name: str
    score: float


class RankingResponse(Watermarked):
    """`{prefix}:rank:{metric}:{level}`, highest score first."""

    metric: str
    level: str
    entries: list[RankingEntry]


class BelowTargetResponse(Watermarked):
    """`{prefix}:below_target`: city bodies under the online target over the target window."""

    target_window: str | None = None
    agencies: list[RankingEntry] = Field(
        default_factory=list, description="score: the online ratio over the target window"
    )


class AlertsResponse(BaseModel):
    """Alerts open now (`{prefix}:alerts:open`) and the latest logged (`{prefix}:alerts:log`)."""

    open: list[AlertEvent] = Field(default_factory=list)
    recent: list[AlertEvent] = Field(default_factory=list, description="newest first")


class OverviewResponse(Watermarked):
    """Everything the dashboard's city page shows, read in one transaction."""

    meta: WorkerMeta | None = None
    window: str
    online_target: float
    city: ScopeReading | None = None
    levels: dict[str, ScopeReading | None] = Field(
        default_factory=dict, description="`city` and `commune` level totals"
    )
    agencies: list[AgencyRow] = Field(default_factory=list)
    series: SeriesResponse
    alerts: AlertsResponse


class AgencyResponse(Watermarked):
    """Everything the dashboard's page of one agency shows, read in one transaction."""

    meta: WorkerMeta | None = None
    window: str
    online_target: float
    agency: AgencyRow
    series: SeriesResponse
    stuck: dict[str, str] = Field(default_factory=dict, description="dossier id -> waiting since")
    flagged: dict[str, str] = Field(default_factory=dict, description="dossier id -> flags")
    alerts: AlertsResponse


class ErrorResponse(BaseModel):
    """What the API answers when it cannot: one line naming the problem."""

    error: str
