"""The secured stack's policy, configuration and env files, without starting anything."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from common.settings import StackSettings
from dossier_stream import securestack
from dossier_stream.credentials import Material
from dossier_stream.securestack import (
    ADMIN,
    GATEWAY,
    READER,
    WORKER,
    AclRule,
    Policy,
    agency_principal,
)
from dossier_stream.settings import LocalStackSettings
from stream_apps.settings import WorkerSettings
from tests.cli import run_cli

POLICY = Policy(
    events_topic="dossier.events.v1",
    dead_letter_topic="dossier.events.dlq.v1",
    partitions=4,
    app_id="dossier-stream",
    alerts_topic="dossier.alerts.v1",
    alerts_undelivered_topic="dossier.alerts.undelivered.v1",
    redis_prefix="ds:v1",
    agencies=("SO-XD", "SO-TC"),
)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    material, _ = securestack.write_material(tmp_path_factory.mktemp("secure"), POLICY)
    return material


@pytest.fixture
def local(tmp_path: Path) -> LocalStackSettings:
    # The defaults, whatever DOSSIER_* variables the test run has.
    return LocalStackSettings(
        stack_dir=tmp_path,
        secure_kafka_port=29192,
        secure_kafka_controller_port=29193,
        secure_redis_port=26390,
    )


def rules_of(principal: str) -> set[tuple[str, str, str, bool]]:
    return {
        (r.resource, r.name, r.operation, r.prefixed)
        for r in POLICY.kafka_acls()
        if r.principal == principal
    }


def test_secure_ports_and_agencies_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("KAFKA_PORT", "REDIS_PORT", "AGENCIES"):
        monkeypatch.delenv(f"DOSSIER_SECURE_{name}", raising=False)
    default = LocalStackSettings()
    assert (default.secure_kafka_port, default.secure_redis_port) == (29192, 26390)
    assert default.secure_agencies == ["SO-XD", "SO-TC"]
    monkeypatch.setenv("DOSSIER_SECURE_AGENCIES", " SO-YTE, BHXH ,")
    assert LocalStackSettings().secure_agencies == ["SO-YTE", "BHXH"]


def test_the_default_agencies_are_real_agency_codes() -> None:
    from schemas.registry import AgencyRegistry

    registry = AgencyRegistry.default()
    assert all(registry.get(code) for code in LocalStackSettings().secure_agencies)


def test_the_policy_follows_the_worker_settings() -> None:
    policy = Policy.from_settings(LocalStackSettings(), WorkerSettings(app_id="ds-a"))
    assert policy.app_id == "ds-a"
    assert ("topic", "ds-a-", "CREATE", True) in {
        (r.resource, r.name, r.operation, r.prefixed) for r in policy.kafka_acls()
    }


def test_publishers_may_only_write_and_describe_the_events_topic() -> None:
    expected = {
        ("topic", POLICY.events_topic, "WRITE", False),
        ("topic", POLICY.events_topic, "DESCRIBE", False),
        ("cluster", "kafka-cluster", "IDEMPOTENT_WRITE", False),
    }
    for principal in (GATEWAY, agency_principal("SO-XD"), agency_principal("SO-TC")):
        assert rules_of(principal) == expected, principal


def test_the_worker_reads_events_writes_dead_letters_and_owns_its_prefix() -> None:
    worker = rules_of(WORKER)
    assert ("topic", POLICY.events_topic, "READ", False) in worker
    assert ("topic", POLICY.events_topic, "WRITE", False) not in worker
    assert ("topic", POLICY.dead_letter_topic, "WRITE", False) in worker
    assert ("topic", POLICY.dead_letter_topic, "READ", False) not in worker
    for topic in (POLICY.alerts_topic, POLICY.alerts_undelivered_topic):
        assert ("topic", topic, "WRITE", False) in worker
    assert ("topic", "dossier-stream-", "CREATE", True) in worker
    assert ("group", "dossier-stream", "READ", False) in worker
    assert ("group", "dossier-stream-", "READ", True) in worker
    # Nothing on the whole cluster beyond idempotent writes, and no ALL anywhere.
    assert {r for r in worker if r[0] == "cluster"} == {
        ("cluster", "kafka-cluster", "IDEMPOTENT_WRITE", False)
    }
    assert all(r.operation != "ALL" for r in POLICY.kafka_acls())


def test_the_admin_needs_no_acl_and_every_rule_is_a_valid_kafka_acl() -> None:
    assert rules_of(ADMIN) == set()
    for rule in POLICY.kafka_acls():
        assert rule.to_acl().principal == f"User:{rule.principal}"


def test_an_acl_rule_of_a_prefix_is_prefixed() -> None:
    acl = AclRule(WORKER, "group", "dossier-stream-", "READ", prefixed=True).to_acl()
    assert acl.resource_pattern.pattern_type.name == "PREFIXED"


def test_redis_acl_turns_the_default_user_off_and_hashes_passwords(material: Material) -> None:
    text = securestack.redis_acl_file(material).read_text()
    lines = {line.split()[1]: line for line in text.splitlines()}
    assert set(lines) == {"default", ADMIN, WORKER, READER}
    assert " off " in lines["default"] and " on " not in lines["default"]
    for user in (ADMIN, WORKER, READER):
        password = material.read(material.redis_password_file(user))
        assert password not in text
        assert " #" in lines[user]
    assert "~ds:v1:* &ds:v1:*" in lines[WORKER] and "~ds:v1:* &ds:v1:*" in lines[READER]
    assert "+@all" not in lines[WORKER] and "+@all" not in lines[READER]
    assert "+@write" not in lines[READER] and "+publish" not in lines[READER]
    for user in (WORKER, READER):
        assert lines[user].index("-@all") < lines[user].index("-@dangerous")


def test_server_properties_name_the_admin_password_file_not_the_password(
    material: Material, local: LocalStackSettings
) -> None:
    paths = securestack.SecurePaths.of(local).stack
    text = securestack.server_properties(local, paths, material)
    props = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert material.read(material.kafka_password_file(ADMIN)) not in text
    assert "${dir:" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL"
    assert all("127.0.0.1:" in entry for entry in props["listeners"].split(","))


def test_redis_has_no_plaintext_port(material: Material, local: LocalStackSettings) -> None:
    options = securestack.redis_options_of(local, material)
    assert options[options.index("--port") + 1] == "0"
    assert options[options.index("--tls-port") + 1] == str(local.secure_redis_port)


def test_scram_format_arguments_cover_every_principal(material: Material) -> None:
    args = securestack.scram_format_args(material, POLICY)
    names = [a.split("name=")[1].split(",")[0] for a in args if a.startswith("SCRAM-SHA-512=")]
    assert names == POLICY.kafka_principals


@pytest.mark.parametrize(
    ("principal", "kafka_user", "redis_user", "signer"),
    [
        (ADMIN, "admin", "admin", None),
        (WORKER, "worker", "worker", None),
        (GATEWAY, "gateway", None, "gateway"),
        (READER, None, "reader", None),
        ("agency.SO-XD", "agency.SO-XD", None, "SO-XD"),
    ],
)
def test_env_of_each_principal(
    material: Material,
    local: LocalStackSettings,
    principal: str,
    kafka_user: str | None,
    redis_user: str | None,
    signer: str | None,
) -> None:
    env = securestack.env_for(local, material, POLICY, principal)
    assert env["DOSSIER_KAFKA_BOOTSTRAP"] == "127.0.0.1:29192"
    assert env["DOSSIER_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["DOSSIER_REDIS_URL"] == "rediss://127.0.0.1:26390/0"
    assert env.get("DOSSIER_KAFKA_USERNAME") == kafka_user
    assert env.get("DOSSIER_REDIS_USERNAME") == redis_user
    assert env.get("DOSSIER_SIGNER") == signer
    assert ("DOSSIER_SIGNING_MASTER_KEY_FILE" in env) == (principal == WORKER)
    # Secrets only by path; every StackSettings variable is a field it knows.
    assert not any(k in env for k in ("DOSSIER_KAFKA_PASSWORD", "DOSSIER_REDIS_PASSWORD"))
    settings = securestack.settings_from_env(env)
    assert settings.kafka_username == kafka_user
    assert (settings.kafka_password is not None) == (kafka_user is not None)
    assert (settings.signing_key is not None) == (signer is not None)
    known = set(StackSettings.model_fields) | {"app_id", "signing_master_key_file"}
    assert {k.removeprefix("DOSSIER_").lower() for k in env} <= known


def test_secrets_command_writes_into_a_directory_and_keeps_it(tmp_path: Path) -> None:
    target = tmp_path / "secrets"
    first = run_cli("services", "secrets", "--dir", str(target), "--host", "kafka")
    assert first.returncode == 0, first.stderr
    created = [line.split()[1] for line in first.stdout.splitlines() if line.startswith("created")]
    assert str(target / "kafka" / "worker.password") in created
    assert str(target / "redis" / "users.acl") in created
    password = (target / "kafka" / "worker.password").read_text()
    assert password not in first.stdout + first.stderr
    second = run_cli("services", "secrets", "--dir", str(target), "--host", "kafka")
    assert second.returncode == 0, second.stderr
    assert "nothing was generated" in second.stdout
    assert (target / "kafka" / "worker.password").read_text() == password
    assert stat.S_IMODE((target / "tls" / "ca.key").stat().st_mode) == 0o600


def test_secrets_command_needs_a_directory() -> None:
    result = run_cli("services", "secrets")
    assert result.returncode == 2
    assert "--dir" in result.stderr.splitlines()[-1]


def test_acls_command_refuses_to_run_without_the_admin_credentials() -> None:
    result = run_cli("services", "acls")
    assert result.returncode == 2
    assert "admin.env" in result.stderr.splitlines()[-1]


def test_status_of_a_secure_stack_that_never_ran(tmp_path: Path) -> None:
    from tests.cli import free_port

    env = {
        "DOSSIER_STACK_DIR": str(tmp_path),
        "DOSSIER_SECURE_KAFKA_PORT": str(free_port()),
        "DOSSIER_SECURE_KAFKA_CONTROLLER_PORT": str(free_port()),
        "DOSSIER_SECURE_REDIS_PORT": str(free_port()),
    }
    result = run_cli("services", "status", "--secure", env=env)
    assert result.returncode == 3
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["kafka", "redis"]
    assert all("stopped" in line for line in result.stdout.splitlines())
