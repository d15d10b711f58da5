"""Writes a request's records to Kafka and waits for the broker's acknowledgement of each.

A thin kafka-python producer of its own (acks=all, idempotence, credentials and TLS from
`common.connections.kafka_options`), shared by every request: kafka-python's producer is
thread-safe, and each request waits only on its own records' futures. Records of one
request go out in their order, so a dossier's events keep theirs on its partition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from common.connections import kafka_options
from gateway.batch import Record
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """Where the broker wrote a record, or None for each field when it did not say in time."""

    partition: int | None
    offset: int | None

    @property
    def acknowledged(self) -> bool:
        return self.offset is not None


class Sender(Protocol):
    """What the app needs from Kafka (a fake in unit tests)."""

    def partitions(self) -> int: ...

    def send(self, records: Sequence[Record], timeout_s: float) -> list[Delivery]: ...

    def close(self) -> None: ...


class SenderUnavailable(Exception):
    """The broker's metadata could not be had: nothing was sent."""


class KafkaSender:
    """The Kafka side of the gateway: one idempotent producer for the events topic."""

    def __init__(self, settings: GatewaySettings, *, client_id: str = "dossier-gateway") -> None:
        self.topic = settings.events_topic
        ack_ms = int(settings.gateway_ack_timeout_s * 1000)
        self._timeout_s = settings.gateway_ack_timeout_s
        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            retries=2**31 - 1,
            linger_ms=2,
            batch_size=256 * 1024,
            max_request_size=max(1024 * 1024, settings.gateway_max_body_bytes + 65536),
            max_in_flight_requests_per_connection=5,
            bootstrap_timeout_ms=ack_ms,
            max_block_ms=ack_ms,
            request_timeout_ms=min(ack_ms, 30_000),
            # A record the broker has not acknowledged by then is given up on, so that one
            # reported `not_acknowledged` does not linger for long in the producer.
            delivery_timeout_ms=ack_ms + 2_000 + min(ack_ms, 30_000),
            allow_auto_create_topics=False,
            **kafka_options(settings),
        )
        self._partitions: int | None = None
        self._lock = threading.Lock()

    def partitions(self) -> int:
        if self._partitions is None:
            with self._lock:
                try:
                    found = self._producer.partitions_for(self.topic)
                except KafkaError as exc:
                    raise SenderUnavailable(
                        f"Kafka did not give the partitions of {self.topic!r} in time ({exc!r})"
                    ) from None
                if not found:
                    raise SenderUnavailable(f"topic {self.topic!r} has no partitions")
                self._partitions = len(found)
        return self._partitions

    def send(self, records: Sequence[Record], timeout_s: float) -> list[Delivery]:
        """Send the records in order and wait up to `timeout_s` for every acknowledgement."""
        deadline = time.monotonic() + timeout_s
        futures: list[Any] = []
        for record in records:
            try:
                futures.append(
                    self._producer.send(
                        self.topic,
                        key=record.key,
                        value=record.value,
                        headers=record.headers,
                        partition=record.partition,
                    )
                )
            except Exception as exc:  # KafkaError, or any refusal: reported, never a 500
                log.warning("event %d not handed to the producer: %r", record.index, exc)
                futures.append(None)
        out = []
        for future in futures:
            out.append(_wait(future, deadline))
        return out

    def close(self) -> None:
        try:
            self._producer.close(timeout=self._timeout_s)
        except KafkaError as exc:
            log.warning("closing the Kafka producer: %r", exc)


def _wait(future: Any, deadline: float) -> Delivery:
    if future is None:
        return Delivery(None, None)
    try:
        meta = future.get(timeout=max(0.0, deadline - time.monotonic()))
    except Exception as exc:  # KafkaTimeoutError, or the broker's refusal of the record
        log.debug("no acknowledgement: %r", exc)
        return Delivery(None, None)
    return Delivery(int(meta.partition), int(meta.offset))
