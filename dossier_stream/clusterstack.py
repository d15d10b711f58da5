"""A local three-broker KRaft cluster and its own Redis, from the plain stack's Kafka jars.

Three JVMs, each `broker,controller` (node ids 1, 2 and 3), form a static quorum of three
voters; all three are formatted with one cluster id, kept in `<stack_dir>/cluster/cluster.id`.
Topics default to replication factor 3 and at least 2 replicas in sync (the internal
topics too), so the cluster accepts writes and serves reads with any one broker down.
Each node keeps its data, logs and PID file under `<stack_dir>/cluster/broker-<id>/`;
the cluster's Redis (not the plain stack's, so that `down --brokers 3` never stops what
the plain stack runs) under `<stack_dir>/cluster/`. Everything listens on 127.0.0.1 and
is stopped by its recorded PID, as in `localstack`.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from common.settings import StackSettings
from dossier_stream import localstack
from dossier_stream.localstack import (
    HOST,
    ONE_NODE_PROPERTIES,
    Service,
    ServiceStatus,
    StackPaths,
    StartResult,
    StopResult,
)
from dossier_stream.settings import LocalStackSettings

NODE_IDS = (1, 2, 3)
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2

# The one-node settings, with every replication raised to the cluster's.
CLUSTER_PROPERTIES = ONE_NODE_PROPERTIES | {
    "default.replication.factor": str(REPLICATION_FACTOR),
    "min.insync.replicas": str(MIN_INSYNC_REPLICAS),
    "offsets.topic.replication.factor": str(REPLICATION_FACTOR),
    "transaction.state.log.replication.factor": str(REPLICATION_FACTOR),
    "transaction.state.log.min.isr": str(MIN_INSYNC_REPLICAS),
    "share.coordinator.state.topic.replication.factor": str(REPLICATION_FACTOR),
    "share.coordinator.state.topic.min.isr": str(MIN_INSYNC_REPLICAS),
}


@dataclass(frozen=True)
class Member:
    """One process of the cluster profile: a broker (`kafka-<id>`) or its Redis."""

    name: str
    paths: StackPaths
    service: Service


def root_of(settings: LocalStackSettings) -> Path:
    return settings.stack_dir / "cluster"


def lock_paths(settings: LocalStackSettings) -> StackPaths:
    """The cluster's own stack: its lock, and the files of its Redis."""
    return StackPaths.of(settings, root=root_of(settings))


def broker_paths(settings: LocalStackSettings, node_id: int) -> StackPaths:
    return StackPaths.of(settings, root=root_of(settings) / f"broker-{node_id}")


def kafka_bootstrap(settings: LocalStackSettings) -> str:
    """The bootstrap list of the cluster: every broker, host:port,host:port,host:port."""
    return ",".join(f"{HOST}:{port}" for port in settings.cluster_kafka_ports)


def broker_address(settings: LocalStackSettings, node_id: int) -> str:
    return f"{HOST}:{settings.cluster_kafka_ports[node_id - 1]}"


def redis_url(settings: LocalStackSettings) -> str:
    return f"redis://{HOST}:{settings.cluster_redis_port}/0"


def stack_settings(settings: LocalStackSettings) -> StackSettings:
    """StackSettings pointed at the cluster: its bootstrap list, its Redis, RF 3, min ISR 2."""
    return StackSettings(
        kafka_bootstrap=kafka_bootstrap(settings),
        redis_url=redis_url(settings),
        replication_factor=REPLICATION_FACTOR,
        min_insync_replicas=MIN_INSYNC_REPLICAS,
    )


def quorum_voters(settings: LocalStackSettings) -> str:
    return ",".join(
        f"{node}@{HOST}:{port}"
        for node, port in zip(NODE_IDS, settings.cluster_controller_ports, strict=True)
    )


def server_properties(settings: LocalStackSettings, node_id: int) -> str:
    """server.properties of node `node_id` (1, 2 or 3)."""
    paths = broker_paths(settings, node_id)
    client = broker_address(settings, node_id)
    controller = f"{HOST}:{settings.cluster_controller_ports[node_id - 1]}"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "listeners": f"PLAINTEXT://{client},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{client}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        # A static quorum: the three voters are fixed here, not added at run time.
        "controller.quorum.voters": quorum_voters(settings),
        "log.dirs": str(paths.kafka_data),
        **CLUSTER_PROPERTIES,
    }
    header = "# Written by dossier_stream/clusterstack.py at every start; edits are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def cluster_id(settings: LocalStackSettings) -> str:
    """The cluster's id, made once: every node is formatted with it."""
    path = root_of(settings) / "cluster.id"
    try:
        found = path.read_text().strip()
    except OSError:
        found = ""
    if found:
        return found
    # Kafka's Uuid text: 16 random bytes, URL-safe base64 without padding, never a leading "-".
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(made + "\n")
    return made


def members(settings: LocalStackSettings, redis: bool = True) -> list[Member]:
    """The three brokers, then (with `redis`) the cluster's Redis."""
    found = [_broker(settings, node) for node in NODE_IDS]
    if redis:
        paths = lock_paths(settings)
        port = settings.cluster_redis_port
        found.append(
            Member(
                "redis",
                paths,
                Service(
                    name="redis",
                    label="Redis (cluster)",
                    port=port,
                    address=redis_url(settings),
                    listens=((port, "DOSSIER_CLUSTER_REDIS_PORT"),),
                    cmdline_marker="redis-server",
                    answering=lambda: localstack.redis_answers(redis_url(settings)),
                    ready=lambda: localstack.redis_answers(redis_url(settings)),
                    prepare=lambda: localstack.prepare_redis(
                        settings, paths, ["--port", str(port)]
                    ),
                ),
            )
        )
    return found


def _broker(settings: LocalStackSettings, node_id: int) -> Member:
    paths = broker_paths(settings, node_id)
    port = settings.cluster_kafka_ports[node_id - 1]
    address = broker_address(settings, node_id)
    heap = settings.model_copy(update={"kafka_heap": settings.cluster_kafka_heap})

    def prepare() -> list[str]:
        return localstack.prepare_kafka(
            heap, paths, server_properties(settings, node_id), cluster_id=cluster_id(settings)
        )

    return Member(
        f"kafka-{node_id}",
        paths,
        Service(
            name="kafka",
            label=f"Kafka node {node_id}",
            port=port,
            address=address,
            listens=(
                (port, "DOSSIER_CLUSTER_KAFKA_PORTS"),
                (
                    settings.cluster_controller_ports[node_id - 1],
                    "DOSSIER_CLUSTER_CONTROLLER_PORTS",
                ),
            ),
            cmdline_marker="kafka.Kafka",
            answering=lambda: localstack.port_open(port),
            ready=lambda: localstack.port_open(port) and localstack._kafka_answers(address),
            prepare=prepare,
        ),
    )


def up(settings: LocalStackSettings, redis: bool = True) -> list[tuple[str, StartResult]]:
    """Start what is not running: all three brokers at once, then wait; then the Redis.

    A broker alone never becomes ready (no quorum), so all are launched before any is
    awaited. Raises LocalStackError, quoting the logs, if one cannot start; the brokers
    this call launched are then stopped again.
    """
    found = members(settings, redis)
    brokers = [m for m in found if m.name != "redis"]
    results = localstack.start_together(
        settings, lock_paths(settings), [(m.paths, m.service) for m in brokers]
    )
    named = [(m.name, r) for m, r in zip(brokers, results, strict=True)]
    if redis:
        redis_member = found[-1]
        (result,) = localstack.start_services(settings, redis_member.paths, [redis_member.service])
        named.append((redis_member.name, result))
    return named


def down(
    settings: LocalStackSettings, only: Collection[str] | None = None
) -> list[tuple[str, StopResult]]:
    """Stop the cluster's processes (or those named in `only`), by their recorded PID only.

    All at once: a broker stopping cleanly asks the controller quorum to move its
    leaderships away, and the last of three stopped one by one has no quorum left to ask.
    """
    chosen = [m for m in members(settings) if only is None or m.name in only]

    def stop(member: Member) -> tuple[str, StopResult]:
        (result,) = localstack.stop_services(settings, member.paths, [member.service])
        return member.name, result

    if not chosen:
        return []
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        return list(pool.map(stop, chosen))


def status(settings: LocalStackSettings) -> list[tuple[str, ServiceStatus]]:
    return [
        (m.name, localstack.service_statuses(m.paths, [m.service])[0]) for m in members(settings)
    ]


def log_files(settings: LocalStackSettings) -> list[tuple[str, list[Path]]]:
    return [
        (m.name, localstack.log_files(settings, m.service.name, m.paths)) for m in members(settings)
    ]


def broker_pids(settings: LocalStackSettings) -> dict[int, int]:
    """node id -> PID of each broker running now (by its PID file)."""
    found: dict[int, int] = {}
    for node_id, (_name, st) in zip(NODE_IDS, status(settings)[:3], strict=True):
        if st.pid is not None:
            found[node_id] = st.pid
    return found


def start_broker(settings: LocalStackSettings, node_id: int) -> StartResult:
    """Start one broker again (after a crash) and wait until it serves."""
    member = _broker(settings, node_id)
    (result,) = localstack.start_together(
        settings, lock_paths(settings), [(member.paths, member.service)]
    )
    return result
