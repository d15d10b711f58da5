"""The gateway's HTTP responses (pydantic models, rendered in its OpenAPI description)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class EventResult(BaseModel):
    """Where the broker wrote one event of the request."""

    index: int = Field(description="position of the event in the request, from 0")
    event_id: str
    dossier_id: str
    partition: int
    offset: int


class Accepted(BaseModel):
    """202: the broker acknowledged every event of the request (acks=all)."""

    agency: str
    count: int
    events: list[EventResult]


class Problem(BaseModel):
    """A refused request: one line naming the problem. Nothing of it was published."""

    error: str


class FieldProblem(BaseModel):
    """One field of one event that does not satisfy the contract."""

    field: str
    message: str
    value: str | None = Field(None, description="the value received, when it is safe to show")


class EventProblems(BaseModel):
    """Everything wrong with one event of the request."""

    index: int
    errors: list[FieldProblem]


class Invalid(BaseModel):
    """400: events that do not satisfy the contract (docs/event-contract.md), or a body that
    is no JSON. Nothing of the request was published."""

    error: str
    events: list[EventProblems] = Field(
        default_factory=list, description="each failing event by index, with its fields"
    )


class Forbidden(BaseModel):
    """403: events for an agency other than the token's. Nothing of the request was published."""

    error: str
    agency: str = Field(description="the agency of the token")
    indexes: list[int] = Field(description="indexes of the events that name another agency")


class RateLimited(BaseModel):
    """429: the agency's rate limit; retry after `retry_after_s` (also the Retry-After header)."""

    error: str
    retry_after_s: int


class DeliveryStatus(BaseModel):
    """What became of one event when the broker did not acknowledge them all."""

    index: int
    event_id: str
    dossier_id: str
    status: Literal["acknowledged", "not_acknowledged"]
    partition: int | None = None
    offset: int | None = None


class NotAcknowledged(BaseModel):
    """503: the broker did not acknowledge every event in time (or is unreachable), or the
    gateway cannot read its tokens. Events `not_acknowledged` may still be written: resend
    them with the same event ids (the worker ignores an identical resend)."""

    error: str
    events: list[DeliveryStatus] = Field(default_factory=list)


class Health(BaseModel):
    """Liveness: the process serves requests."""

    status: Literal["ok"] = "ok"
