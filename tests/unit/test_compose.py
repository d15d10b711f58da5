"""docker-compose.yml agrees with the settings and the Docker-free stack."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from common.settings import PROJECT_ROOT, StackSettings
from dossier_stream.settings import LocalStackSettings
from stream_apps.settings import WorkerSettings

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_PREFIX = "DOSSIER_"


def _default(model: type[StackSettings] | type[LocalStackSettings], field: str) -> Any:
    # Field defaults, not an instance: DOSSIER_* variables of the test run must not matter.
    return model.model_fields[field].default


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture
def services(compose: dict[str, Any]) -> dict[str, Any]:
    # A deep copy per test, so the tests that break it on purpose break only their own.
    return copy.deepcopy(compose["services"])


def host_ports(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port, from the short syntax "[ip:]host:container[/proto]"."""
    mapping: dict[int, int] = {}
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        if len(parts) < 2:
            raise ValueError(f"port {entry!r} publishes no fixed host port")
        mapping[int(parts[-2])] = int(parts[-1])
    return mapping


def image_tag(service: dict[str, Any]) -> str:
    return str(service["image"]).rsplit(":", 1)[1]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the ["NAME=value", ...] form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def unknown_dossier_variables(env: dict[str, str]) -> list[str]:
    """DOSSIER_* names that are not a setting of the worker (a typo it would ignore)."""
    fields = set(WorkerSettings.model_fields)
    return sorted(
        name
        for name in env
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :].lower() not in fields
    )


def conditions(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):  # short form: no condition, i.e. service_started
        return dict.fromkeys(depends, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends.items()}


def test_env_prefix_is_the_settings_prefix() -> None:
    assert StackSettings.model_config.get("env_prefix") == ENV_PREFIX


@pytest.mark.parametrize("name", ["kafka", "redis", "topics", "worker", "simulator"])
def test_service_exists(services: dict[str, Any], name: str) -> None:
    assert name in services


@pytest.mark.parametrize(
    ("name", "needle"),
    [("kafka", "/opt/kafka/bin/kafka-broker-api-versions.sh"), ("redis", "redis-cli")],
)
def test_healthcheck(services: dict[str, Any], name: str, needle: str) -> None:
    test = services[name]["healthcheck"]["test"]
    command = " ".join(test) if isinstance(test, list) else str(test)
    assert needle in command


def test_kafka_host_port_is_the_local_stack_port(services: dict[str, Any]) -> None:
    assert _default(LocalStackSettings, "kafka_port") in host_ports(services["kafka"])


def test_kafka_advertises_the_host_port(services: dict[str, Any]) -> None:
    port = _default(LocalStackSettings, "kafka_port")
    advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert any(entry.endswith(f"//127.0.0.1:{port}") for entry in advertised.split(","))
    assert host_ports(services["kafka"])[port] == port


def test_containers_reach_kafka_on_the_internal_listener(services: dict[str, Any]) -> None:
    advertised = environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    bootstrap = environment(services["worker"])["DOSSIER_KAFKA_BOOTSTRAP"]
    assert f"//{bootstrap}" in advertised


def test_redis_host_port_is_the_local_stack_port(services: dict[str, Any]) -> None:
    assert host_ports(services["redis"]) == {_default(LocalStackSettings, "redis_port"): 6379}


@pytest.mark.parametrize("name", ["kafka", "topics"])
def test_kafka_image_is_the_local_stack_version(services: dict[str, Any], name: str) -> None:
    assert image_tag(services[name]) == _default(LocalStackSettings, "kafka_version")


@pytest.mark.parametrize("name", ["worker", "simulator", "topics"])
def test_dossier_variables_are_settings_fields(services: dict[str, Any], name: str) -> None:
    env = environment(services[name])
    assert env, f"{name} gets no environment"
    assert unknown_dossier_variables(env) == []


def test_worker_gets_the_service_addresses(services: dict[str, Any]) -> None:
    env = environment(services["worker"])
    assert env["DOSSIER_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["DOSSIER_REDIS_URL"] == "redis://redis:6379/0"


@pytest.mark.parametrize("field", ["events_topic", "dead_letter_topic", "partitions"])
def test_topic_settings_are_the_defaults(services: dict[str, Any], field: str) -> None:
    # The topics one-shot creates what the worker and the simulator use.
    variable = ENV_PREFIX + field.upper()
    expected = str(_default(StackSettings, field))
    for name in ("topics", "worker", "simulator"):
        assert environment(services[name])[variable] == expected, name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("worker", {"kafka": "service_healthy", "redis": "service_healthy"}),
        ("simulator", {"worker": "service_started", "kafka": "service_healthy"}),
        ("topics", {"kafka": "service_healthy"}),
    ],
)
def test_depends_on_conditions(
    services: dict[str, Any], name: str, expected: dict[str, str]
) -> None:
    actual = conditions(services[name])
    assert {dep: actual.get(dep) for dep in expected} == expected


def test_worker_waits_for_the_topics(services: dict[str, Any]) -> None:
    assert conditions(services["worker"])["topics"] == "service_completed_successfully"


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("worker", ["dossier-stream", "worker"]),
        ("simulator", ["dossier-stream", "simulate", "--speed", "600"]),
    ],
)
def test_app_services_run_the_project_image(
    services: dict[str, Any], name: str, command: list[str]
) -> None:
    service = services[name]
    assert service["command"] == command
    assert service["build"]["context"] == "."
    assert (COMPOSE_FILE.parent / service["build"]["dockerfile"]).is_file()


def test_dockerfile_installs_the_project() -> None:
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "pip install ." in text


# The helpers above must be able to say "wrong": fed broken services, they do.


def test_host_ports_sees_a_changed_port(services: dict[str, Any]) -> None:
    services["redis"]["ports"] = ["127.0.0.1:6380:6379"]
    assert _default(LocalStackSettings, "redis_port") not in host_ports(services["redis"])


def test_host_ports_rejects_an_ephemeral_port(services: dict[str, Any]) -> None:
    services["redis"]["ports"] = ["6379"]
    with pytest.raises(ValueError, match="no fixed host port"):
        host_ports(services["redis"])


def test_unknown_dossier_variables_catches_a_typo(services: dict[str, Any]) -> None:
    env = environment(services["worker"])
    env["DOSSIER_KAFKA_BOOTSTRAP_SERVERS"] = env.pop("DOSSIER_KAFKA_BOOTSTRAP")
    env["KAFKA_BOOTSTRAP"] = "kafka:9092"
    assert unknown_dossier_variables(env) == ["DOSSIER_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP"]


def test_conditions_of_the_short_form_are_service_started(services: dict[str, Any]) -> None:
    services["worker"]["depends_on"] = ["kafka", "redis"]
    assert conditions(services["worker"]) == {
        "kafka": "service_started",
        "redis": "service_started",
    }


def test_environment_list_form(services: dict[str, Any]) -> None:
    services["worker"]["environment"] = ["DOSSIER_REDIS_URL=redis://redis:6379/0"]
    assert environment(services["worker"]) == {"DOSSIER_REDIS_URL": "redis://redis:6379/0"}


def test_the_image_copies_every_package_the_project_installs() -> None:
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert [p for p in packages if f"COPY {p} ./{p}\n" not in text] == []
