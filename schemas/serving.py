"""The read contract: Redis key patterns and the models of what dashboards read there.

Every key starts with a prefix (default `ds:v1`, setting DOSSIER_REDIS_PREFIX); the
`v1` is the contract's version. See docs/redis-contract.md.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


def scope_key(prefix: str, scope: str) -> str:
    """Hash of one scope's figures: `{prefix}:city`, `{prefix}:agency:{code}`,
    `{prefix}:level:{city|commune}`, `{prefix}:field:{field}`."""
    return f"{prefix}:{scope}"


def meta_key(prefix: str) -> str:
    """Hash: `updated_at` (ISO time of the last flush) and the worker's event counts."""
    return f"{prefix}:meta"


def updates_channel(prefix: str) -> str:
    """Pub/sub channel: one JSON message per flush naming the scopes that changed."""
    return f"{prefix}:updates"


class ScopeFigures(BaseModel):
    """The figures of one scope (an agency, a level, a field, or the city)."""

    model_config = ConfigDict(extra="forbid")

    received_total: int = Field(description="dossiers received (accepted, status 2)")
    received_in_person: int
    received_online_full: int
    received_online_partial: int
    received_post: int
    resolved_on_time: int
    resolved_late: int
    open: int = Field(description="received and not yet resolved, refused, withdrawn or stopped")

    @property
    def online_ratio(self) -> float | None:
        online = self.received_online_full + self.received_online_partial
        return online / self.received_total if self.received_total else None


class WorkerMeta(BaseModel):
    """`{prefix}:meta`: when the figures were last written and what the worker counted."""

    model_config = ConfigDict(extra="ignore")

    updated_at: datetime
    events_in: int = 0
    applied: int = 0
    duplicates: int = 0
    pending: int = 0
    dead_lettered: int = 0


class UpdateNotice(BaseModel):
    """The message published on the updates channel after each flush."""

    model_config = ConfigDict(extra="forbid")

    updated_at: datetime
    scopes: list[str]
