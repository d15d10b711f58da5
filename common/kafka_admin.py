"""Small Kafka administration helpers: readiness check, create and delete topics."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import kafka.errors as kafka_errors
from kafka import KafkaAdminClient

from common.connections import kafka_options
from common.settings import StackSettings
from schemas.errors import DossierStreamError

log = logging.getLogger(__name__)


class KafkaAdminError(DossierStreamError, RuntimeError):
    """A topic could not be created or deleted, or the broker did not answer."""


class KafkaUnavailableError(KafkaAdminError):
    """No Kafka broker answered at the bootstrap address in time."""


def admin_client(
    bootstrap: str, timeout_s: float, options: Mapping[str, Any] | None = None
) -> KafkaAdminClient:
    """An admin client of `bootstrap`; `options` are security options (common.connections),
    by default those of the DOSSIER_* variables."""
    timeout_ms = max(1000, int(timeout_s * 1000))
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="dossier-stream-admin",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
            # Security options; None: from the DOSSIER_* variables (common.connections).
            **(kafka_options() if options is None else options),
        )
    except kafka_errors.KafkaError as exc:  # NoBrokersAvailable, KafkaTimeoutError, ...
        raise KafkaUnavailableError(
            f"no Kafka broker answered at {bootstrap} within {timeout_ms / 1000:g} s"
        ) from exc


def _timeout(timeout_s: float | None) -> float:
    """The caller's timeout, else DOSSIER_KAFKA_ADMIN_TIMEOUT_S."""
    return StackSettings().kafka_admin_timeout_s if timeout_s is None else timeout_s


def describe_cluster(
    bootstrap: str, *, timeout_s: float = 10.0, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Cluster id, controller and brokers as the broker reports them; raises if unreachable."""
    admin = admin_client(bootstrap, timeout_s, options)
    try:
        return dict(admin.describe_cluster())
    finally:
        admin.close()


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    compacted: Collection[str] = frozenset(),
    timeout_s: float | None = None,
    options: Mapping[str, Any] | None = None,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Create the topics of `topics` (name -> partitions) that do not exist yet.

    `replication_factor` and `min_insync_replicas` (the topic's `min.insync.replicas`)
    default to DOSSIER_REPLICATION_FACTOR and DOSSIER_MIN_INSYNC_REPLICAS (1 and 1, one
    local broker; 3 and 2 on a three-broker cluster); names in `compacted` get
    `cleanup.policy=compact`. Topics that already exist are left as they are, whatever
    their partition count. Returns the names created, after each one has a leader for
    every partition, so callers can produce to them at once. `timeout_s` defaults to
    DOSSIER_KAFKA_ADMIN_TIMEOUT_S; raises KafkaUnavailableError if no broker answers.
    `options` are the client's security options (default: from the DOSSIER_* variables).
    """
    unknown = set(compacted) - set(topics)
    if unknown:
        raise ValueError(f"compacted names are not in topics: {sorted(unknown)}")
    if not topics:
        return []
    timeout_s = _timeout(timeout_s)
    timeout_ms = int(timeout_s * 1000)
    if replication_factor is None or min_insync_replicas is None:
        defaults = StackSettings()
        if replication_factor is None:
            replication_factor = defaults.replication_factor
        if min_insync_replicas is None:
            min_insync_replicas = defaults.min_insync_replicas
    if min_insync_replicas > replication_factor:
        # Such a topic would refuse every acks=all write.
        raise ValueError(
            f"min.insync.replicas {min_insync_replicas} exceeds the replication factor "
            f"{replication_factor}"
        )
    admin = admin_client(bootstrap, timeout_s, options)
    try:
        existing = set(admin.list_topics())
        wanted = {name: parts for name, parts in topics.items() if name not in existing}
        if not wanted:
            return []
        request = {
            name: {
                "num_partitions": parts,
                "replication_factor": replication_factor,
                "configs": {"min.insync.replicas": str(min_insync_replicas)}
                | ({"cleanup.policy": "compact"} if name in compacted else {}),
            }
            for name, parts in wanted.items()
        }
        response = admin.create_topics(request, timeout_ms=timeout_ms, raise_errors=False)
        created: list[str] = []
        failures: list[str] = []
        for result in response["topics"]:
            error = kafka_errors.for_code(result["error_code"])
            if error is kafka_errors.NoError:
                created.append(result["name"])
            elif error is not kafka_errors.TopicAlreadyExistsError:
                # A concurrent creator is fine; anything else is not.
                failures.append(f"{result['name']}: {error.__name__} {result.get('error_message')}")
        if failures:
            raise KafkaAdminError("could not create topics: " + "; ".join(failures))
        admin.wait_for_topics(list(wanted), timeout_ms=timeout_ms)
        if created:
            log.info("created topics %s on %s", ", ".join(sorted(created)), bootstrap)
        return sorted(created)
    finally:
        admin.close()


def delete_topics(
    bootstrap: str,
    names: Iterable[str],
    *,
    timeout_s: float | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Delete the named topics; names that do not exist are ignored. Returns those deleted.

    `timeout_s` defaults to DOSSIER_KAFKA_ADMIN_TIMEOUT_S.
    """
    wanted = sorted(set(names))
    if not wanted:
        return []
    timeout_s = _timeout(timeout_s)
    admin = admin_client(bootstrap, timeout_s, options)
    try:
        existing = set(admin.list_topics())
        present = [name for name in wanted if name in existing]
        if not present:
            return []
        response = admin.delete_topics(
            present, timeout_ms=int(timeout_s * 1000), raise_errors=False
        )
        deleted: list[str] = []
        failures: list[str] = []
        for result in response["topics"]:
            error = kafka_errors.for_code(result["error_code"])
            if error is kafka_errors.NoError:
                deleted.append(result["name"])
            elif error is not kafka_errors.UnknownTopicOrPartitionError:
                failures.append(f"{result['name']}: {error.__name__}")
        if failures:
            raise KafkaAdminError("could not delete topics: " + "; ".join(failures))
        log.debug("deleted topics %s on %s", ", ".join(deleted), bootstrap)
        return sorted(deleted)
    finally:
        admin.close()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30) -> list[Any]:
    """Every record of a topic up to its end offsets at the time of the call."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        ends = consumer.end_offsets(parts)
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end in {timeout_s} s")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        return out
    finally:
        consumer.close()
