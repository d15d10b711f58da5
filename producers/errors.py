"""Errors the publisher raises instead of losing events silently."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.errors import DossierStreamError, EventValidationError

__all__ = [
    "BrokerUnavailableError",
    "DeliveryError",
    "EventValidationError",
    "FailedDelivery",
    "PublishTimeoutError",
    "PublisherError",
]


class PublisherError(DossierStreamError):
    """Base of the publisher's errors."""


class BrokerUnavailableError(PublisherError):
    """No Kafka broker answered at the bootstrap address."""


class PublishTimeoutError(PublisherError):
    """The broker did not acknowledge in time; the events named were not delivered."""


@dataclass(frozen=True)
class FailedDelivery:
    """One event the broker did not acknowledge, and why."""

    dossier_id: str
    event_id: str
    error: str


class DeliveryError(PublisherError):
    """Some events were not acknowledged by the broker. `failed` lists each of them."""

    def __init__(self, failed: list[FailedDelivery]) -> None:
        self.failed = failed
        first = failed[0] if failed else None
        detail = (
            f": first {first.event_id} of dossier {first.dossier_id}: {first.error}"
            if first
            else ""
        )
        super().__init__(f"{len(failed)} event(s) not delivered{detail}")
