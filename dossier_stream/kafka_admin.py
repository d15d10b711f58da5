"""Small Kafka administration helpers: readiness check, create and delete topics."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import kafka.errors as kafka_errors
from kafka import KafkaAdminClient

log = logging.getLogger(__name__)


class KafkaAdminError(RuntimeError):
    """A topic could not be created or deleted, or the broker did not answer."""


def _admin(bootstrap: str, timeout_s: float) -> KafkaAdminClient:
    timeout_ms = max(1000, int(timeout_s * 1000))
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="dossier-stream-admin",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


def describe_cluster(bootstrap: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """Cluster id, controller and brokers as the broker reports them; raises if unreachable."""
    admin = _admin(bootstrap, timeout_s)
    try:
        return dict(admin.describe_cluster())
    finally:
        admin.close()


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    compacted: Collection[str] = frozenset(),
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics of `topics` (name -> partitions) that do not exist yet.

    Replication factor 1 (one local broker); names in `compacted` get
    `cleanup.policy=compact`. Topics that already exist are left as they are, whatever
    their partition count. Returns the names created, after each one has a leader for
    every partition, so callers can produce to them at once.
    """
    unknown = set(compacted) - set(topics)
    if unknown:
        raise ValueError(f"compacted names are not in topics: {sorted(unknown)}")
    if not topics:
        return []
    timeout_ms = int(timeout_s * 1000)
    admin = _admin(bootstrap, timeout_s)
    try:
        existing = set(admin.list_topics())
        wanted = {name: parts for name, parts in topics.items() if name not in existing}
        if not wanted:
            return []
        request = {
            name: {
                "num_partitions": parts,
                "replication_factor": 1,
                "configs": {"cleanup.policy": "compact"} if name in compacted else {},
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


def delete_topics(bootstrap: str, names: Iterable[str], *, timeout_s: float = 30.0) -> list[str]:
    """Delete the named topics; names that do not exist are ignored. Returns those deleted."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    admin = _admin(bootstrap, timeout_s)
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
