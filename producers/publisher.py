"""The publisher agencies embed: validated, keyed, acknowledged delivery of dossier events."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner.default import murmur2

from common.connections import kafka_options
from common.settings import StackSettings
from producers.errors import (
    BrokerUnavailableError,
    DeliveryError,
    FailedDelivery,
    PublishTimeoutError,
)
from schemas.events import DossierEvent, parse_event
from schemas.signing import sign

log = logging.getLogger(__name__)

HEADERS = [("content-type", b"application/json"), ("schema", b"dossier-event.v1")]

DeliveryCallback = Callable[[DossierEvent, Exception | None], None]

# kafka-python settings of the publisher (see BENCHMARKS.md, "Publisher"). Large batches
# and a short linger fill each produce request; lz4 and zstd need packages the project
# does not install, so gzip stays the default (`compression=None` sends uncompressed).
LINGER_MS = 50
BATCH_SIZE = 512 * 1024
COMPRESSION: str | None = None
# Ordering per dossier holds with idempotence for up to 5 requests in flight.
MAX_IN_FLIGHT = 5
# kafka-python 3 has no `buffer_memory`: its accumulator grows without bound, so the
# publisher itself blocks a caller that is this many events ahead of the acknowledgements.
MAX_PENDING = 100_000
# How often (in sends) the publisher collects the acknowledgements that came in.
_SWEEP_EVERY = 2048


def compression_codecs() -> list[str]:
    """The compression codecs kafka-python can use here (their libraries are installed)."""
    from kafka import codec

    found = {"gzip": codec.has_gzip(), "snappy": codec.has_snappy()}
    found |= {"lz4": codec.has_lz4(), "zstd": codec.has_zstd()}
    return [name for name, present in found.items() if present]


def pure_python_checksums() -> bool:
    """Whether kafka-python computes record-batch CRC-32C in pure Python (~6 MB/s).

    Install `kafka-python[crc32c]` (the `crc32c` package) to have it in C.
    """
    from kafka.record import util

    defaults: tuple[Any, ...] = util.calc_crc32c.__defaults__ or ()
    return any(getattr(d, "__module__", "") == "kafka.record._crc32c" for d in defaults)


@lru_cache(maxsize=1 << 18)
def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a key (murmur2, as Java and kafka-python compute it).

    Cached: an export has several events per dossier, and murmur2 is pure Python here.
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


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
    `DeliveryError` if any event was not acknowledged. With a signer and signing key in
    `settings` every record carries the signature headers of `schemas.signing`.

    Acknowledgements are collected in the caller's thread (while it sends, and at
    `flush`), not with a callback per event: `report` counts an event as acknowledged
    only once the broker has acknowledged it. Use one publisher from one thread at a
    time. A caller `max_pending` events ahead of the broker waits until it is half that
    (at most twice `max_pending` events await the broker at any time).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        registry: Any = None,
        linger_ms: int = LINGER_MS,
        batch_size: int = BATCH_SIZE,
        compression: str | None = COMPRESSION,
        connect_timeout_s: float = 10.0,
        delivery_timeout_s: float = 30.0,
        max_pending: int = MAX_PENDING,
        client_id: str = "dossier-publisher",
        on_delivery: DeliveryCallback | None = None,
        settings: StackSettings | None = None,
    ) -> None:
        self.topic = topic
        # Credentials, TLS and the signer come from `settings` (default: DOSSIER_* variables).
        security = StackSettings() if settings is None else settings
        self._signer = security.signer_pair
        self.registry = registry
        self._on_delivery = on_delivery
        self._lock = threading.Lock()
        # (future, what was sent): a DossierEvent from `publish`, the payload otherwise.
        self._pending: deque[tuple[Any, DossierEvent | bytes]] = deque()
        self._acked = 0
        self._failed: list[FailedDelivery] = []
        self._reported = 0
        self._partitions: int | None = None
        self._max_pending = max(1, max_pending)
        self._sweep_every = min(_SWEEP_EVERY, self._max_pending)
        self._until_sweep = self._sweep_every
        self._delivery_timeout_s = delivery_timeout_s
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
                max_request_size=max(1024 * 1024, 2 * batch_size),
                max_in_flight_requests_per_connection=MAX_IN_FLIGHT,
                bootstrap_timeout_ms=timeout_ms,
                max_block_ms=timeout_ms,
                request_timeout_ms=min(delivery_ms, 30_000),
                delivery_timeout_ms=max(delivery_ms, linger_ms + min(delivery_ms, 30_000)),
                allow_auto_create_topics=False,
                **kafka_options(security),
            )
        except KafkaError as exc:
            raise BrokerUnavailableError(
                f"no Kafka broker answered at {bootstrap} within {connect_timeout_s:g} s ({exc!r})"
            ) from exc
        if pure_python_checksums():
            log.warning(
                "kafka-python checksums record batches in pure Python, which slows publishing "
                "several-fold: install kafka-python[crc32c]"
            )

    # -- sending -------------------------------------------------------------------------
    def publish(self, event: DossierEvent | dict[str, Any] | bytes | str) -> DossierEvent:
        """Validate and send one event asynchronously; returns the validated event.

        JSON text is sent as given (it is what was validated); a mapping or a
        `DossierEvent` is sent as the model's JSON. Raises `EventValidationError`
        (nothing sent), `PublishTimeoutError` when the broker's metadata cannot be had
        in time.
        """
        if isinstance(event, DossierEvent):
            valid = (
                event if self.registry is None else parse_event(event.model_dump(), self.registry)
            )
            payload = valid.model_dump_json().encode("utf-8")
        elif isinstance(event, bytes | str):
            text = event.strip()
            valid = parse_event(text, self.registry)
            payload = text.encode("utf-8") if isinstance(text, str) else text
        else:
            valid = parse_event(event, self.registry)
            payload = valid.model_dump_json().encode("utf-8")
        key = valid.dossier_id.encode("utf-8")
        self._send(payload, key, None, valid)
        return valid

    def send_validated(self, payload: bytes, key: bytes, partition: int | None = None) -> None:
        """Send one event that the caller has already validated, as its JSON bytes.

        `key` must be the event's dossier id (UTF-8) and `partition`, when given,
        `partition_for(key, self.partitions())`. `on_delivery` is not called for these.
        Raises `PublishTimeoutError` when the broker's metadata cannot be had in time.
        """
        self._send(payload, key, partition, payload)

    def partitions(self) -> int:
        """The topic's partition count (waits for the broker's metadata)."""
        if self._partitions is None:
            try:
                found = self._producer.partitions_for(self.topic)
            except KafkaError as exc:
                raise PublishTimeoutError(
                    f"Kafka did not answer in time for topic {self.topic!r}: "
                    f"no event was sent ({exc})"
                ) from exc
            if not found:
                raise PublishTimeoutError(f"topic {self.topic!r} has no partitions")
            self._partitions = len(found)
        return self._partitions

    def _send(
        self, payload: bytes, key: bytes, partition: int | None, item: DossierEvent | bytes
    ) -> None:
        try:
            if partition is None:
                partition = partition_for(key, self.partitions())
            headers = HEADERS if self._signer is None else HEADERS + sign(*self._signer, payload)
            future = self._producer.send(
                self.topic, key=key, value=payload, headers=headers, partition=partition
            )
        except (KafkaError, PublishTimeoutError) as exc:
            ident = _ident(item)
            what = "Kafka did not answer in time" if _is_timeout(exc) else "Kafka refused it"
            raise PublishTimeoutError(
                f"{what} for topic {self.topic!r}: event {ident[1]} of dossier {ident[0]} "
                f"was not sent ({exc})"
            ) from exc
        self._pending.append((future, item))
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._until_sweep = self._sweep_every
            self._sweep()
            if len(self._pending) >= self._max_pending:
                self._wait_below(self._max_pending // 2)

    # -- delivery --------------------------------------------------------------------------
    def _sweep(self) -> None:
        """Count the acknowledgements (and failures) of the oldest sends that are done."""
        with self._lock:
            pending = self._pending
            on_delivery = self._on_delivery
            while pending:
                future, item = pending[0]
                if not future.is_done:
                    break
                pending.popleft()
                exc = future.exception
                if exc is None:
                    self._acked += 1
                else:
                    dossier_id, event_id = _ident(item)
                    self._failed.append(FailedDelivery(dossier_id, event_id, repr(exc)))
                    log.error("event %s of dossier %s not delivered: %r", event_id, dossier_id, exc)
                if on_delivery is not None and isinstance(item, DossierEvent):
                    on_delivery(item, exc)

    def _wait_below(self, limit: int) -> None:
        """Block until at most `limit` sends await the broker (the accumulator's bound)."""
        deadline = time.monotonic() + self._delivery_timeout_s + 30
        while len(self._pending) > limit:
            future = self._pending[0][0]
            try:
                future.get(timeout=1.0)
            except KafkaTimeoutError:
                if future.is_done:
                    pass
                elif time.monotonic() > deadline:
                    raise PublishTimeoutError(
                        f"{len(self._pending)} event(s) not acknowledged within "
                        f"{self._delivery_timeout_s + 30:g} s"
                    ) from None
            except Exception:  # a failed send: counted by the sweep
                pass
            self._sweep()

    @property
    def report(self) -> DeliveryReport:
        self._sweep()
        with self._lock:
            return DeliveryReport(self._acked, len(self._failed), len(self._pending))

    @property
    def failures(self) -> list[FailedDelivery]:
        self._sweep()
        with self._lock:
            return list(self._failed)

    def flush(self, timeout_s: float | None = None) -> DeliveryReport:
        """Wait until every sent event is acknowledged or failed.

        Raises `PublishTimeoutError` when events are still pending at the timeout, and
        `DeliveryError` for failures not yet raised by an earlier flush.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for _ in range(1000):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._producer.flush(timeout=remaining)
                break
            except KafkaTimeoutError as exc:
                report = self.report
                raise PublishTimeoutError(
                    f"{report.pending} event(s) not acknowledged within {timeout_s} s"
                ) from exc
            except KafkaError as exc:
                # kafka-python gives up waiting on a batch it split in two after the
                # broker found it too large; the halves are still on their way.
                log.debug("flushing again: %r", exc)
                if deadline is not None and time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
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
            try:
                self._producer.close(timeout=0 if self.report.pending == 0 else 1)
            except KafkaError as exc:  # unacknowledged events: counted, do not hide why
                log.warning("closing the Kafka producer: %r", exc)

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


def _ident(item: DossierEvent | bytes) -> tuple[str, str]:
    """(dossier id, event id) of what was sent; read from the payload only when needed."""
    if isinstance(item, DossierEvent):
        return item.dossier_id, str(item.event_id)
    try:
        doc = orjson.loads(item)
        return str(doc.get("dossier_id", "?")), str(doc.get("event_id", "?"))
    except (orjson.JSONDecodeError, AttributeError):
        return "?", "?"


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, KafkaTimeoutError | PublishTimeoutError)
