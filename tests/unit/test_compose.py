"""The compose files agree with the settings and the Docker-free stacks.

docker-compose.yml is the secured default and mirrors `services up --secure`;
docker-compose.plain.yml is the plaintext variant and mirrors `services up`.
"""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.settings import PROJECT_ROOT, StackSettings
from dossier_stream import clusterstack, securestack
from dossier_stream.credentials import Material
from dossier_stream.settings import LocalStackSettings
from gateway.settings import GatewaySettings
from stream_apps.settings import WorkerSettings

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.plain.yml"
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


# ---------------------------------------------------------------- the secured default

SECURE_FILE = PROJECT_ROOT / "docker-compose.yml"
SECRETS = Path("/secrets")
# compose service -> the principal of the Docker-free secured stack it logs in as.
PRINCIPAL_OF = {
    "worker": securestack.WORKER,
    "simulator": securestack.GATEWAY,
    "acls": securestack.ADMIN,
    "gateway": securestack.GATEWAY,
    "dashboard": securestack.READER,
}


@pytest.fixture(scope="module")
def secure_compose() -> dict[str, Any]:
    data = yaml.safe_load(SECURE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture
def secured(secure_compose: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(secure_compose["services"])


def local_env(principal: str) -> dict[str, str]:
    """The env file of `principal` in the Docker-free secured stack, secrets under /local."""
    policy = securestack.Policy.from_settings(LocalStackSettings(), WorkerSettings())
    return securestack.env_for(LocalStackSettings(), Material(LOCAL_ROOT), policy, principal)


LOCAL_ROOT = Path("/local")


def entrypoint_script() -> str:
    return (PROJECT_ROOT / "services" / "kafka" / "secure-entrypoint.sh").read_text()


def inline_secrets(env: dict[str, str]) -> list[str]:
    """Variables that would carry a secret itself rather than the path of its file."""
    words = ("PASSWORD", "KEY", "SECRET", "TOKEN")
    return sorted(
        name
        for name in env
        if any(word in name for word in words) and not name.endswith(("_FILE", "_DIR"))
    )


@pytest.mark.parametrize(
    "name", ["secrets", "kafka", "redis", "acls", "worker", "simulator", "gateway", "dashboard"]
)
def test_secure_service_exists(secured: dict[str, Any], name: str) -> None:
    assert name in secured


def test_plain_variant_is_the_other_file_and_says_so() -> None:
    header = SECURE_FILE.read_text().split("\nx-", 1)[0]
    assert "docker-compose.plain.yml" in header and "Secured by default" in header
    assert "plaintext variant" in COMPOSE_FILE.read_text().split("\nx-", 1)[0]


@pytest.mark.parametrize("name", ["worker", "simulator", "acls", "gateway", "dashboard"])
def test_clients_use_sasl_ssl_and_tls_redis(secured: dict[str, Any], name: str) -> None:
    env = environment(secured[name])
    assert env["DOSSIER_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["DOSSIER_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["DOSSIER_REDIS_URL"].startswith("rediss://")
    assert env["DOSSIER_KAFKA_CA_FILE"] == env["DOSSIER_REDIS_CA_FILE"] == "/secrets/tls/ca.crt"


def test_no_inline_secret_anywhere(secured: dict[str, Any]) -> None:
    for name, service in secured.items():
        env = environment(service)
        assert inline_secrets(env) == [], name
        for variable, value in env.items():
            # The gateway's tokens file holds hashes only, and the gateway writes it.
            if variable.endswith("_FILE") and variable != "DOSSIER_GATEWAY_TOKENS_FILE":
                assert Path(value).is_relative_to(SECRETS), (name, variable)
    text = SECURE_FILE.read_text() + entrypoint_script()
    # Passwords only as references: $password is `${dir:...}` (read by the broker from
    # the file), %s is filled by printf from the file; `password="${dir:` defines it.
    literal = re.findall(r'password=(?!\\"\$password\\"|%s\]|"\\\$\{dir:)\S*', text)
    assert literal == []


def test_inline_secrets_catches_a_password(secured: dict[str, Any]) -> None:
    env = environment(secured["worker"])
    env["DOSSIER_KAFKA_PASSWORD"] = "hunter2"
    assert inline_secrets(env) == ["DOSSIER_KAFKA_PASSWORD"]


@pytest.mark.parametrize(("service", "principal"), sorted(PRINCIPAL_OF.items()))
def test_principals_get_the_variables_of_their_local_env_file(
    secured: dict[str, Any], service: str, principal: str
) -> None:
    env = environment(secured[service])
    local = local_env(principal)
    if service == "acls":  # Kafka only: the admin's Redis variables are not needed there
        local = {k: v for k, v in local.items() if "REDIS_USERNAME" not in k}
        local = {k: v for k, v in local.items() if "REDIS_PASSWORD" not in k}
    assert set(local) <= set(env), sorted(set(local) - set(env))
    for variable, value in local.items():
        if variable.endswith("_FILE"):
            # The same file of the same layout, in the volume instead of .local/secure/.
            assert Path(env[variable]).relative_to(SECRETS) == Path(value).relative_to(
                LOCAL_ROOT
            ), variable
        elif variable not in ("DOSSIER_KAFKA_BOOTSTRAP", "DOSSIER_REDIS_URL"):
            assert env[variable] == value, variable


@pytest.mark.parametrize("name", ["worker", "simulator", "acls", "secrets", "gateway", "dashboard"])
def test_secure_dossier_variables_are_settings_fields(secured: dict[str, Any], name: str) -> None:
    env = environment(secured[name])
    other_fields = {
        f"DOSSIER_{f.upper()}"
        for f in (*LocalStackSettings.model_fields, *GatewaySettings.model_fields)
    }
    assert set(unknown_dossier_variables(env)) - other_fields == set()


def test_secure_host_ports_are_the_secured_local_stack_ports(secured: dict[str, Any]) -> None:
    kafka_port = _default(LocalStackSettings, "secure_kafka_port")
    assert host_ports(secured["kafka"]) == {kafka_port: kafka_port}
    assert environment(secured["kafka"])["HOST_LISTENER"] == f"127.0.0.1:{kafka_port}"
    redis_port = _default(LocalStackSettings, "secure_redis_port")
    assert host_ports(secured["redis"]) == {redis_port: 6379}


def test_secure_kafka_runs_the_entrypoint_script(secured: dict[str, Any]) -> None:
    kafka = secured["kafka"]
    assert image_tag(kafka) == _default(LocalStackSettings, "kafka_version")
    script = kafka["entrypoint"][-1]
    mounts = dict(v.split(":")[1::-1] for v in kafka["volumes"] if v.startswith("./"))
    assert (PROJECT_ROOT / mounts[script]).resolve() == (
        PROJECT_ROOT / "services" / "kafka" / "secure-entrypoint.sh"
    )
    assert "--add-scram" in entrypoint_script()


def test_entrypoint_has_the_security_properties_of_the_local_stack(tmp_path: Path) -> None:
    local = LocalStackSettings(stack_dir=tmp_path)
    paths = securestack.SecurePaths.of(local)
    props = securestack.server_properties(local, paths.stack, Material(LOCAL_ROOT))
    script = entrypoint_script()
    keys = [
        "sasl.enabled.mechanisms",
        "sasl.mechanism.inter.broker.protocol",
        "listener.name.controller.sasl.enabled.mechanisms",
        "sasl.mechanism.controller.protocol",
        "config.providers",
        "config.providers.dir.class",
        "ssl.keystore.type",
        "ssl.truststore.type",
        "ssl.client.auth",
        "authorizer.class.name",
        "allow.everyone.if.no.acl.found",
        "super.users",
        "auto.create.topics.enable",
    ]
    for line in props.splitlines():
        key = line.split("=", 1)[0]
        if key in keys:
            assert f"\n{line}\n" in script, line
    assert "CONTROLLER:SASL_SSL" in script and ":PLAINTEXT" not in script
    assert "ssl.keystore.location=$SECRETS/tls/kafka.keystore.pem" in script
    assert Material(LOCAL_ROOT).kafka_keystore == LOCAL_ROOT / "tls" / "kafka.keystore.pem"


def test_secure_redis_is_tls_only_with_the_acl_file(secured: dict[str, Any]) -> None:
    command = secured["redis"]["command"]
    option = {command[i]: command[i + 1] for i in range(1, len(command) - 1, 2)}
    assert option["--port"] == "0"
    assert option["--tls-auth-clients"] == "no"
    material = Material(LOCAL_ROOT)
    for flag, local in [
        ("--aclfile", securestack.redis_acl_file(material)),
        ("--tls-cert-file", material.server_cert("redis")),
        ("--tls-key-file", material.server_key("redis")),
        ("--tls-ca-cert-file", material.ca_cert),
    ]:
        assert Path(option[flag]).relative_to(SECRETS) == local.relative_to(LOCAL_ROOT), flag
    test = " ".join(secured["redis"]["healthcheck"]["test"])
    assert "redis-cli --tls" in test


def test_secrets_are_generated_by_the_project_command(secured: dict[str, Any]) -> None:
    script = secured["secrets"]["command"][0]
    assert "dossier-stream services secrets --dir /secrets --host kafka --host redis" in script
    assert "secrets:/secrets" in secured["secrets"]["volumes"]
    for name in ("kafka", "redis", "acls", "worker", "simulator"):
        assert "secrets:/secrets:ro" in secured[name]["volumes"], name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kafka", {"secrets": "service_completed_successfully"}),
        ("redis", {"secrets": "service_completed_successfully"}),
        ("acls", {"kafka": "service_healthy"}),
        (
            "worker",
            {
                "kafka": "service_healthy",
                "redis": "service_healthy",
                "acls": "service_completed_successfully",
            },
        ),
        ("simulator", {"acls": "service_completed_successfully"}),
    ],
)
def test_secure_depends_on_conditions(
    secured: dict[str, Any], name: str, expected: dict[str, str]
) -> None:
    actual = conditions(secured[name])
    assert {dep: actual.get(dep) for dep in expected} == expected


def test_acls_run_as_the_super_user(secured: dict[str, Any]) -> None:
    assert secured["acls"]["command"] == ["dossier-stream", "services", "acls"]
    assert environment(secured["acls"])["DOSSIER_KAFKA_USERNAME"] == securestack.ADMIN


def test_agencies_of_secrets_and_acls_agree(secured: dict[str, Any]) -> None:
    agencies = {environment(secured[n])["DOSSIER_SECURE_AGENCIES"] for n in ("secrets", "acls")}
    assert agencies == {",".join(_default_factory(LocalStackSettings, "secure_agencies"))}


def _default_factory(model: type[LocalStackSettings], field: str) -> Any:
    factory = model.model_fields[field].default_factory
    assert factory is not None
    return factory()  # type: ignore[call-arg]


def test_secrets_go_to_the_users_the_images_run_as(secured: dict[str, Any]) -> None:
    script = secured["secrets"]["command"][0]
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "--uid 10001 --gid 10001 dossier" in dockerfile
    assert "chown 1000:10001 /secrets/kafka/*.password" in script  # broker, then commands
    assert "chown 1000:10001 /secrets/kafka\n" in script  # the broker lists *.password
    assert "chown 999 /secrets/tls/redis.crt" in script
    assert "chown 10001 /secrets/redis/*.password /secrets/signing/*" in script


def test_the_image_copies_every_package_the_project_installs() -> None:
    import tomllib

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert [p for p in packages if f"COPY {p} ./{p}\n" not in text] == []


# -- docker-compose.cluster.yml: the three-broker variant of the plain file ------------

CLUSTER_FILE = PROJECT_ROOT / "docker-compose.cluster.yml"
BROKERS = ("kafka-1", "kafka-2", "kafka-3")


@pytest.fixture(scope="module")
def cluster_compose() -> dict[str, Any]:
    data = yaml.safe_load(CLUSTER_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture
def cluster(cluster_compose: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(cluster_compose["services"])


def kafka_properties(env: dict[str, str]) -> dict[str, str]:
    """KAFKA_* variables of the apache/kafka image as the broker properties they set."""
    return {
        name.removeprefix("KAFKA_").lower().replace("_", "."): value
        for name, value in env.items()
        if name.startswith("KAFKA_")
    }


def voters(value: str) -> dict[int, str]:
    """controller.quorum.voters, "id@host:port,...", as id -> host."""
    found: dict[int, str] = {}
    for entry in value.split(","):
        node, _, address = entry.partition("@")
        found[int(node)] = address.rsplit(":", 1)[0]
    return found


def test_cluster_has_three_brokers_and_the_rest(cluster: dict[str, Any]) -> None:
    kafkas = sorted(name for name, svc in cluster.items() if "kafka:" in str(svc.get("image")))
    assert kafkas == [*BROKERS, "topics"]
    assert {"redis", "worker", "simulator"} <= set(cluster)


def test_cluster_nodes_form_one_quorum_of_three_voters(cluster: dict[str, Any]) -> None:
    envs = [environment(cluster[name]) for name in BROKERS]
    assert [int(env["KAFKA_NODE_ID"]) for env in envs] == [1, 2, 3]
    assert {env["KAFKA_PROCESS_ROLES"] for env in envs} == {"broker,controller"}
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    cluster_id = envs[0]["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # a Kafka Uuid
    for env in envs:
        assert voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]) == dict(
            zip([1, 2, 3], BROKERS, strict=True)
        )


def test_cluster_brokers_have_the_local_cluster_settings(cluster: dict[str, Any]) -> None:
    for name in BROKERS:
        props = kafka_properties(environment(cluster[name]))
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        for key, value in clusterstack.CLUSTER_PROPERTIES.items():
            assert props.get(key) == value, (name, key)


def test_cluster_host_ports_are_the_local_cluster_ports(cluster: dict[str, Any]) -> None:
    ports = _default_list("cluster_kafka_ports")
    for name, port in zip(BROKERS, ports, strict=True):
        assert host_ports(cluster[name]) == {port: port}
        advertised = environment(cluster[name])["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert f"HOST://127.0.0.1:{port}" in advertised
        assert f"INTERNAL://{name}:9092" in advertised
    redis_port = _default(LocalStackSettings, "cluster_redis_port")
    assert redis_port in host_ports(cluster["redis"])


def test_cluster_clients_know_every_broker_and_the_replication(cluster: dict[str, Any]) -> None:
    for name in ("worker", "simulator", "topics"):
        env = environment(cluster[name])
        assert unknown_dossier_variables(env) == [], name
        assert env["DOSSIER_KAFKA_BOOTSTRAP"].split(",") == [f"{b}:9092" for b in BROKERS]
        assert (env["DOSSIER_REPLICATION_FACTOR"], env["DOSSIER_MIN_INSYNC_REPLICAS"]) == (
            "3",
            "2",
        )
    script = " ".join(cluster["topics"]["command"])
    assert '--replication-factor "$$DOSSIER_REPLICATION_FACTOR"' in script
    assert 'min.insync.replicas="$$DOSSIER_MIN_INSYNC_REPLICAS"' in script


def test_cluster_topics_wait_for_every_broker(cluster: dict[str, Any]) -> None:
    assert conditions(cluster["topics"]) == dict.fromkeys(BROKERS, "service_healthy")
    assert conditions(cluster["worker"])["topics"] == "service_completed_successfully"


def test_voters_sees_a_missing_voter(cluster: dict[str, Any]) -> None:
    env = environment(cluster["kafka-3"])
    env["KAFKA_CONTROLLER_QUORUM_VOTERS"] = "1@kafka-1:9093,2@kafka-2:9093"
    assert len(voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])) == 2


def _default_list(field: str) -> list[int]:
    factory = LocalStackSettings.model_fields[field].default_factory
    assert factory is not None
    return list(factory())  # type: ignore[call-arg]
