"""The read contract: Redis key patterns and the models of what dashboards read there.

Every key starts with a prefix (default `ds:v1`, setting DOSSIER_REDIS_PREFIX); the
`v1` is the contract's version. docs/redis-contract.md describes every key and field.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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


def meta_key(prefix: str) -> str:
    """Hash: `updated_at`, `clock`, `clock_mode`, `target_window`, and the event counts."""
    return f"{prefix}:meta"


def updates_channel(prefix: str) -> str:
    """Pub/sub channel: one JSON message per flush naming the scopes that changed."""
    return f"{prefix}:updates"


class WorkerMeta(BaseModel):
    """`{prefix}:meta`: when the figures were last written and what the worker counted."""

    model_config = ConfigDict(extra="ignore")

    updated_at: datetime = Field(description="when the last flush was written (UTC)")
    clock: datetime | None = Field(None, description="the clock the figures are as of")
    clock_mode: str | None = Field(None, description="live or event")
    events_in: int = 0
    applied: int = 0
    duplicates: int = 0
    pending: int = 0
    dead_lettered: int = 0


class UpdateNotice(BaseModel):
    """The message published on the updates channel after each flush."""

    model_config = ConfigDict(extra="forbid")

    updated_at: datetime
    clock: datetime | None = None
    scopes: list[str]
