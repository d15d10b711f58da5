"""The local three-broker cluster: its nodes' settings, its quorum, and how it is started."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from common import kafka_admin
from common.errors import EXIT_NOT_RUNNING, EXIT_USAGE
from dossier_stream import clusterstack, localstack
from dossier_stream.localstack import Service, StackPaths
from dossier_stream.settings import LocalStackSettings
from tests.cli import free_port, run_cli


@pytest.fixture
def local(tmp_path: Path) -> LocalStackSettings:
    return LocalStackSettings(stack_dir=tmp_path / "stack")


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


@pytest.mark.parametrize("node", clusterstack.NODE_IDS)
def test_every_node_is_broker_and_controller_of_one_static_quorum(
    local: LocalStackSettings, node: int
) -> None:
    props = properties(clusterstack.server_properties(local, node))
    assert props["node.id"] == str(node)
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:29293,2@127.0.0.1:29295,3@127.0.0.1:29297"
    )
    assert "controller.quorum.bootstrap.servers" not in props  # static, not dynamic
    client = 29292 + 2 * (node - 1)
    assert (
        props["listeners"] == f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{client + 1}"
    )
    assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{client}"
    assert props["log.dirs"].endswith(f"cluster/broker-{node}/kafka/data")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("default.replication.factor", "3"),
        ("min.insync.replicas", "2"),
        ("offsets.topic.replication.factor", "3"),
        ("transaction.state.log.replication.factor", "3"),
        ("transaction.state.log.min.isr", "2"),
        ("share.coordinator.state.topic.replication.factor", "3"),
        ("share.coordinator.state.topic.min.isr", "2"),
        ("auto.create.topics.enable", "false"),
    ],
)
def test_the_cluster_replicates_everything_three_times_two_in_sync(
    local: LocalStackSettings, key: str, value: str
) -> None:
    assert properties(clusterstack.server_properties(local, 2))[key] == value


def test_the_cluster_id_is_made_once_and_is_a_kafka_uuid(local: LocalStackSettings) -> None:
    made = clusterstack.cluster_id(local)
    assert clusterstack.cluster_id(local) == made
    assert len(base64.urlsafe_b64decode(made + "==")) == 16 and not made.startswith("-")
    assert (local.stack_dir / "cluster" / "cluster.id").read_text().strip() == made


def test_clients_get_every_broker_and_the_replication(local: LocalStackSettings) -> None:
    stack = clusterstack.stack_settings(local)
    assert stack.kafka_bootstrap == "127.0.0.1:29292,127.0.0.1:29294,127.0.0.1:29296"
    assert stack.redis_url == "redis://127.0.0.1:26391/0"
    assert (stack.replication_factor, stack.min_insync_replicas) == (3, 2)


def test_ports_come_from_the_environment_three_of_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSSIER_CLUSTER_KAFKA_PORTS", "39001,39003,39005")
    assert LocalStackSettings().cluster_kafka_ports == [39001, 39003, 39005]
    monkeypatch.setenv("DOSSIER_CLUSTER_KAFKA_PORTS", "39001,39003")
    with pytest.raises(ValidationError, match="three nodes"):
        LocalStackSettings()


def test_each_member_keeps_its_files_apart(local: LocalStackSettings) -> None:
    members = clusterstack.members(local)
    assert [m.name for m in members] == ["kafka-1", "kafka-2", "kafka-3", "redis"]
    pid_files = {m.paths.pid_file(m.service.name) for m in members}
    assert len(pid_files) == 4
    assert all(local.stack_dir / "cluster" in path.parents for path in pid_files)


def test_min_insync_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds the replication factor"):
        kafka_admin.ensure_topics(
            "127.0.0.1:1", {"t": 1}, replication_factor=1, min_insync_replicas=2
        )


def test_start_together_launches_every_member_before_waiting(tmp_path: Path) -> None:
    """Two services each ready only once the other runs, as two voters of a quorum."""
    settings = LocalStackSettings(stack_dir=tmp_path, start_timeout_s=10)
    lock = StackPaths.of(settings)
    paths = [StackPaths.of(settings, root=tmp_path / f"m{i}") for i in (1, 2)]
    seconds = f"3{time.time_ns() % 1000:03d}"  # tells our processes' command line apart

    def running(i: int) -> bool:
        return paths[i].pid_file("kafka").exists()

    services = [
        Service(
            name="kafka",
            label=f"member {i + 1}",
            port=free_port(),
            address="-",
            listens=(),
            cmdline_marker=seconds,
            answering=lambda: False,
            ready=lambda i=i: running(1 - i),
            prepare=lambda: ["sleep", seconds],
        )
        for i in (0, 1)
    ]
    results = localstack.start_together(settings, lock, list(zip(paths, services, strict=True)))
    try:
        assert [r.started for r in results] == [True, True]
    finally:
        localstack.stop_services(settings, paths[0], [services[0]])
        localstack.stop_services(settings, paths[1], [services[1]])
    assert not any(p.pid_file("kafka").exists() for p in paths)
    assert not any(localstack._alive(r.pid) for r in results)


def test_services_brokers_3_status_names_the_three_nodes(tmp_path: Path) -> None:
    env = {
        "DOSSIER_STACK_DIR": str(tmp_path / "stack"),
        "DOSSIER_CLUSTER_KAFKA_PORTS": ",".join(str(free_port()) for _ in range(3)),
        "DOSSIER_CLUSTER_CONTROLLER_PORTS": ",".join(str(free_port()) for _ in range(3)),
        "DOSSIER_CLUSTER_REDIS_PORT": str(free_port()),
    }
    result = run_cli("services", "status", "--brokers", "3", env=env)
    assert result.returncode == EXIT_NOT_RUNNING, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["kafka-1", "kafka-2", "kafka-3", "redis"]
    assert run_cli("services", "down", "--brokers", "3", env=env).returncode == 0


def test_services_help_shows_the_cluster_examples() -> None:
    result = run_cli("services", "--help")
    assert "dossier-stream services up --brokers 3" in result.stdout
    assert "--brokers" in result.stdout


@pytest.mark.parametrize("extra", [["--secure"], ["--only", "redis"]])
def test_brokers_3_with_secure_or_only_is_a_usage_error(extra: list[str]) -> None:
    result = run_cli("services", "status", "--brokers", "3", *extra)
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
