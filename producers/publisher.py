"""The publisher agencies embed: validated, keyed, acknowledged delivery of dossier events."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from producers.errors import (
    BrokerUnavailableError,
    DeliveryError,
    FailedDelivery,
    PublishTimeoutError,
)
from schemas.events import DossierEvent, parse_event

log = logging.getLogger(__name__)

HEADERS = [("content-type", b"application/json"), ("schema", b"dossier-event.v1")]

DeliveryCallback = Callable[[DossierEvent, Exception | None], None]


@dataclass(frozen=True)
class DeliveryReport:
    """What the broker acknowledged so far."""

    acked: int
    failed: int
    pending: int


class DossierPublisher:
    """Publishes dossier events to Kafka, one message per event, keyed by dossier id.

    Every event is validated first (a bad one raises `EventValidationError` naming the
    field and is not sent). Delivery uses acks=all with idempotence, so a retried send
    is written once. Use it as a context manager: leaving the block flushes and raises
    `DeliveryError` if any event was not acknowledged.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        registry: Any = None,
        linger_ms: int = 20,
        batch_size: int = 256 * 1024,
        compression: str | None = "gzip",
        connect_timeout_s: float = 10.0,
        delivery_timeout_s: float = 30.0,
        client_id: str = "dossier-publisher",
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        self.topic = topic
        self.registry = registry
        self._on_delivery = on_delivery
        self._lock = threading.Lock()
        self._acked = 0
        self._pending = 0
        self._failed: list[FailedDelivery] = []
        self._reported = 0
        timeout_ms = int(connect_timeout_s * 1000)
        delivery_ms = int(delivery_timeout_s * 1000)
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap.split(","),
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                retries=2**31 - 1,
                compression_type=compression,
                linger_ms=linger_ms,
                batch_size=batch_size,
                max_in_flight_requests_per_connection=5,
                bootstrap_timeout_ms=timeout_ms,
                max_block_ms=timeout_ms,
                request_timeout_ms=min(delivery_ms, 30_000),
                delivery_timeout_ms=max(delivery_ms, linger_ms + min(delivery_ms, 30_000)),
                allow_auto_create_topics=False,
            )
        except KafkaError as exc:
            raise BrokerUnavailableError(
                f"no Kafka broker answered at {bootstrap} within {connect_timeout_s:g} s ({exc!r})"
            ) from exc

    # -- sending -------------------------------------------------------------------------
    def publish(self, event: DossierEvent | dict[str, Any] | bytes | str) -> DossierEvent:
        """Validate and send one event asynchronously; returns the validated event.

        Raises `EventValidationError` (nothing sent), `PublishTimeoutError` when the
        broker's metadata cannot be had in time.
        """
        if isinstance(event, DossierEvent):
            valid = (
                event if self.registry is None else parse_event(event.model_dump(), self.registry)
            )
        else:
            valid = parse_event(event, self.registry)
        payload = valid.model_dump_json().encode("utf-8")
        key = valid.dossier_id.encode("utf-8")
        try:
            future = self._producer.send(self.topic, key=key, value=payload, headers=HEADERS)
        except KafkaTimeoutError as exc:
            raise PublishTimeoutError(
                f"Kafka did not answer in time for topic {self.topic!r}: event {valid.event_id} "
                f"of dossier {valid.dossier_id} was not sent ({exc})"
            ) from exc
        except KafkaError as exc:
            raise PublishTimeoutError(
                f"event {valid.event_id} of dossier {valid.dossier_id} was not sent: {exc}"
            ) from exc
        with self._lock:
            self._pending += 1
        future.add_callback(self._delivered, valid)
        future.add_errback(self._not_delivered, valid)
        return valid

    def _delivered(self, event: DossierEvent, _metadata: Any) -> None:
        with self._lock:
            self._pending -= 1
            self._acked += 1
        if self._on_delivery is not None:
            self._on_delivery(event, None)

    def _not_delivered(self, event: DossierEvent, exc: Exception) -> None:
        with self._lock:
            self._pending -= 1
            self._failed.append(FailedDelivery(event.dossier_id, str(event.event_id), repr(exc)))
        log.error("event %s of dossier %s not delivered: %r", event.event_id, event.dossier_id, exc)
        if self._on_delivery is not None:
            self._on_delivery(event, exc)

    # -- delivery --------------------------------------------------------------------------
    @property
    def report(self) -> DeliveryReport:
        with self._lock:
            return DeliveryReport(self._acked, len(self._failed), self._pending)

    @property
    def failures(self) -> list[FailedDelivery]:
        with self._lock:
            return list(self._failed)

    def flush(self, timeout_s: float | None = None) -> DeliveryReport:
        """Wait until every sent event is acknowledged or failed.

        Raises `PublishTimeoutError` when events are still pending at the timeout, and
        `DeliveryError` for failures not yet raised by an earlier flush.
        """
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError as exc:
            report = self.report
            raise PublishTimeoutError(
                f"{report.pending} event(s) not acknowledged within {timeout_s} s"
            ) from exc
        report = self.report
        if report.pending:
            raise PublishTimeoutError(f"{report.pending} event(s) not acknowledged after flush")
        with self._lock:
            new_failures = self._failed[self._reported :]
            self._reported = len(self._failed)
        if new_failures:
            raise DeliveryError(new_failures)
        return report

    def close(self, timeout_s: float | None = 30.0) -> DeliveryReport:
        """Flush, then close the connection. Raises like `flush`."""
        try:
            return self.flush(timeout_s)
        finally:
            self._producer.close(timeout=0 if self.report.pending == 0 else 1)

    def __enter__(self) -> DossierPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # do not hide the caller's error behind a delivery error
            try:
                self.close()
            except Exception:
                log.exception("while closing the publisher after an error")
