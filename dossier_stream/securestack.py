"""The secured local stack: Kafka with SASL_SSL, SCRAM and ACLs, Redis with TLS and ACL users.

It runs next to the plain stack (`dossier_stream.localstack`, whose process management it
reuses), on its own ports and under `<stack_dir>/secure/`:

    secrets/   CA, certificates, passwords, signing keys (`dossier_stream.credentials`)
    env/       one env file per principal: DOSSIER_* variables, secrets only as *_FILE paths
    kafka/ redis/ logs/ pids/   as in the plain stack

Who may do what (decisions; docs/security.md describes them for operators):

- Kafka `admin` is the only super user (topics, ACLs, tests). `worker` reads the events
  topic, writes the dead-letter and alert topics, and owns every topic and consumer group
  whose name starts with its app id and a dash (its changelog, partials, Faust's internal
  topics) plus the group named as its app id. `gateway` and each `agency.<CODE>` may only
  write (and describe) the events topic. Which agency an event may claim is not Kafka's
  business: the worker checks the event's signature (schemas/signing.py).
- Redis `default` is off. `admin` may do everything; `worker` writes only keys and
  channels under its prefix with the commands its sink uses; `reader` (dashboards, the
  JSON API, `watch`, `top`) reads and subscribes under the prefix and writes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kafka.errors as kafka_errors
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from common import kafka_admin
from common.connections import kafka_options, redis_options
from common.settings import StackSettings
from dossier_stream import localstack
from dossier_stream.credentials import Material, ensure_material
from dossier_stream.localstack import (
    HOST,
    ONE_NODE_PROPERTIES,
    SERVICES,
    LocalStackError,
    Service,
    ServiceName,
    ServiceStatus,
    StackPaths,
    StartResult,
    StopResult,
)
from dossier_stream.settings import LocalStackSettings
from schemas.signing import GATEWAY_SIGNER
from stream_apps.settings import WorkerSettings

log = logging.getLogger(__name__)

ADMIN = "admin"
WORKER = "worker"
GATEWAY = "gateway"
READER = "reader"
AGENCY_PREFIX = "agency."
SCRAM = "SCRAM-SHA-512"
REDIS_USERS = (ADMIN, WORKER, READER)


def agency_principal(code: str) -> str:
    """The Kafka principal of an agency that publishes directly: `agency.<CODE>`."""
    return AGENCY_PREFIX + code


# ---------------------------------------------------------------- policy


@dataclass(frozen=True)
class AclRule:
    """One ALLOW binding: principal may do `operation` on a resource."""

    principal: str
    resource: str  # "topic", "group" or "cluster"
    name: str
    operation: str  # an ACLOperation name: READ, WRITE, CREATE, DESCRIBE, ...
    prefixed: bool = False

    def to_acl(self) -> ACL:
        return ACL(
            principal=f"User:{self.principal}",
            host="*",
            operation=ACLOperation[self.operation],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                ResourceType[self.resource.upper()],
                self.name,
                ACLResourcePatternType.PREFIXED
                if self.prefixed
                else ACLResourcePatternType.LITERAL,
            ),
        )


@dataclass(frozen=True)
class Policy:
    """Principals, topics and prefixes of a secured deployment, from the DOSSIER_* settings."""

    events_topic: str
    dead_letter_topic: str
    partitions: int
    app_id: str
    alerts_topic: str
    alerts_undelivered_topic: str
    redis_prefix: str
    agencies: tuple[str, ...]

    @classmethod
    def from_settings(cls, local: LocalStackSettings, worker: WorkerSettings) -> Policy:
        return cls(
            events_topic=worker.events_topic,
            dead_letter_topic=worker.dead_letter_topic,
            partitions=worker.partitions,
            app_id=worker.app_id,
            alerts_topic=worker.alerts_topic,
            alerts_undelivered_topic=worker.alerts_undelivered_topic,
            redis_prefix=worker.redis_prefix,
            agencies=tuple(dict.fromkeys(local.secure_agencies)),
        )

    @property
    def kafka_principals(self) -> list[str]:
        return [ADMIN, WORKER, GATEWAY, *(agency_principal(c) for c in self.agencies)]

    @property
    def signers(self) -> list[str]:
        return [GATEWAY_SIGNER, *self.agencies]

    def kafka_acls(self) -> list[AclRule]:
        """Every ACL of the policy; `admin` needs none (super user)."""
        rules: list[AclRule] = []

        def allow(principal: str, resource: str, name: str, *ops: str, prefixed: bool = False):
            rules.extend(AclRule(principal, resource, name, op, prefixed) for op in ops)

        own = f"{self.app_id}-"
        allow(WORKER, "topic", self.events_topic, "READ", "DESCRIBE")
        allow(WORKER, "topic", self.dead_letter_topic, "WRITE", "DESCRIBE")
        allow(WORKER, "topic", self.alerts_topic, "READ", "WRITE", "DESCRIBE", "CREATE")
        allow(WORKER, "topic", self.alerts_undelivered_topic, "WRITE", "DESCRIBE", "CREATE")
        allow(
            WORKER,
            "topic",
            own,
            "READ",
            "WRITE",
            "CREATE",
            "DESCRIBE",
            "DESCRIBE_CONFIGS",
            prefixed=True,
        )
        allow(WORKER, "group", self.app_id, "READ", "DESCRIBE")
        allow(WORKER, "group", own, "READ", "DESCRIBE", prefixed=True)
        allow(WORKER, "cluster", "kafka-cluster", "IDEMPOTENT_WRITE")
        for producer in (GATEWAY, *(agency_principal(c) for c in self.agencies)):
            allow(producer, "topic", self.events_topic, "WRITE", "DESCRIBE")
            allow(producer, "cluster", "kafka-cluster", "IDEMPOTENT_WRITE")
        return rules

    def redis_acl(self, password_hashes: Mapping[str, str]) -> str:
        """Redis's ACL file; passwords appear only as SHA-256 hashes."""
        keys = f"~{self.redis_prefix}:*"
        channels = f"&{self.redis_prefix}:*"
        # The worker's sink and health checks: hashes, sorted sets, sets, the alert log
        # stream, one MULTI/EXEC per flush, PUBLISH of notices; nothing @admin/@dangerous.
        worker_commands = (
            "-@all +@connection +@transaction -@admin -@dangerous +hset +hget +hmget +hgetall "
            "+hdel +zadd +zrem +sadd +srem +smembers +del +exists +xadd +xrevrange +publish"
        )
        # Dashboards, the JSON API, watch and top: reads, MULTI/EXEC around them, and the
        # update and alert channels. -@dangerous drops KEYS and the like.
        reader_commands = (
            "-@all +@read +@connection +@transaction -@admin -@dangerous "
            "+subscribe +psubscribe +unsubscribe +punsubscribe"
        )
        # Redis 7.0 allows no comment lines in an ACL file.
        lines = [
            "user default off resetkeys resetchannels -@all",
            f"user {ADMIN} on #{password_hashes[ADMIN]} ~* &* +@all",
            f"user {WORKER} on #{password_hashes[WORKER]} resetchannels {keys} {channels} "
            + worker_commands,
            f"user {READER} on #{password_hashes[READER]} resetchannels {keys} {channels} "
            + reader_commands,
        ]
        return "\n".join(lines) + "\n"


def write_material(
    root: Path, policy: Policy, hosts: Sequence[str] = ()
) -> tuple[Material, list[Path]]:
    """Secrets and certificates under root (kept when present) and Redis's ACL file."""
    material, created = ensure_material(
        root,
        kafka_principals=policy.kafka_principals,
        redis_users=REDIS_USERS,
        signers=policy.signers,
        hosts=hosts,
    )
    hashes = {
        user: hashlib.sha256(material.read(material.redis_password_file(user)).encode()).hexdigest()
        for user in REDIS_USERS
    }
    if _write_if_changed(redis_acl_file(material), policy.redis_acl(hashes)):
        created.append(redis_acl_file(material))
    return material, created


def redis_acl_file(material: Material) -> Path:
    return material.root / "redis" / "users.acl"


def scram_format_args(material: Material, policy: Policy) -> list[str]:
    """`kafka-storage format` arguments that create every principal's SCRAM credential."""
    args: list[str] = []
    for principal in policy.kafka_principals:
        password = material.read(material.kafka_password_file(principal))
        args += ["--add-scram", f"{SCRAM}=[name={principal},password={password}]"]
    return args


def managed(principal: str) -> bool:
    """Principals whose ACLs and SCRAM users the policy owns (all but the super user)."""
    return principal in (WORKER, GATEWAY) or principal.startswith(AGENCY_PREFIX)


def apply_kafka_policy(
    admin: StackSettings, policy: Policy, material: Material | None = None
) -> dict[str, int]:
    """As `admin`: create the events and dead-letter topics, the SCRAM users missing from
    the broker (when `material` holds their passwords) and every ACL. Idempotent.

    The policy is the whole truth for its principals: an ACL of `worker`, `gateway` or an
    `agency.*` principal that it does not list is deleted, and so is the SCRAM user of an
    agency no longer in DOSSIER_SECURE_AGENCIES.
    """
    options = kafka_options(admin)
    created_topics = kafka_admin.ensure_topics(
        admin.kafka_bootstrap,
        {policy.events_topic: policy.partitions, policy.dead_letter_topic: 1},
        timeout_s=admin.kafka_admin_timeout_s,
        options=options,
    )
    client = kafka_admin.admin_client(admin.kafka_bootstrap, admin.kafka_admin_timeout_s, options)
    try:
        users = 0
        if material is not None:
            users = _ensure_scram_users(client, material, policy.kafka_principals)
        removed_users = _remove_scram_users(client, policy.kafka_principals)
        acls = [rule.to_acl() for rule in policy.kafka_acls()]
        result = client.create_acls(acls)
        if result["failed"]:
            raise LocalStackError(f"could not create Kafka ACLs: {result['failed']}")
        removed = _remove_stray_acls(client, acls)
    finally:
        client.close()
    log.info(
        "Kafka policy applied: %d ACLs (%d stray ones deleted), %d new SCRAM users "
        "(%d deleted), topics created: %s",
        len(acls),
        removed,
        users,
        removed_users,
        ", ".join(created_topics) or "none",
    )
    return {
        "acls": len(acls),
        "removed_acls": removed,
        "users": users,
        "removed_users": removed_users,
        "topics": len(created_topics),
    }


def _remove_stray_acls(client: Any, wanted: Sequence[ACL]) -> int:
    everything = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    existing, _ = client.describe_acls(everything)
    keep = set(wanted)
    stray = [
        acl
        for acl in existing
        if acl not in keep and managed(str(acl.principal).removeprefix("User:"))
    ]
    if not stray:
        return 0
    for _filter, _matched, error in client.delete_acls(stray):
        if error is not kafka_errors.NoError:
            raise LocalStackError(f"could not delete stray Kafka ACLs: {error}")
    log.info("deleted %d Kafka ACLs the policy does not list", len(stray))
    return len(stray)


def _remove_scram_users(client: Any, principals: Sequence[str]) -> int:
    from kafka.admin import UserScramCredentialDeletion

    known = client.describe_user_scram_credentials()
    gone = [
        (user, info["mechanism"])
        for user, data in known.items()
        if user.startswith(AGENCY_PREFIX) and user not in principals
        for info in data.get("credential_infos", [])
    ]
    if not gone:
        return 0
    deletions = [UserScramCredentialDeletion(user, mechanism) for user, mechanism in gone]
    errors = {u: e for u, e in client.alter_user_scram_credentials(deletions).items() if e}
    if errors:
        raise LocalStackError(f"could not delete SCRAM users: {errors}")
    return len({user for user, _ in gone})


def _ensure_scram_users(client: Any, material: Material, principals: Sequence[str]) -> int:
    """Add the SCRAM users that storage formatting did not (principals added later)."""
    from kafka.admin import UserScramCredentialUpsertion

    known = client.describe_user_scram_credentials()
    present = {user for user, info in known.items() if info.get("credential_infos")}
    missing = [p for p in principals if p not in present]
    if not missing:
        return 0
    upserts = [
        UserScramCredentialUpsertion(p, SCRAM, material.read(material.kafka_password_file(p)))
        for p in missing
    ]
    errors = {u: e for u, e in client.alter_user_scram_credentials(upserts).items() if e}
    if errors:
        raise LocalStackError(f"could not add SCRAM users: {errors}")
    return len(missing)


# ---------------------------------------------------------------- the local secured stack


@dataclass(frozen=True)
class SecurePaths:
    """Where the secured stack keeps its files: `<stack_dir>/secure/`."""

    stack: StackPaths
    secrets: Path
    env: Path

    @classmethod
    def of(cls, settings: LocalStackSettings) -> SecurePaths:
        root = settings.stack_dir / "secure"
        return cls(StackPaths.of(settings, root=root), root / "secrets", root / "env")

    def env_file(self, principal: str) -> Path:
        return self.env / f"{principal}.env"


def kafka_address(settings: LocalStackSettings) -> str:
    return f"{HOST}:{settings.secure_kafka_port}"


def redis_url(settings: LocalStackSettings) -> str:
    return f"rediss://{HOST}:{settings.secure_redis_port}/0"


def env_for(
    settings: LocalStackSettings, material: Material, policy: Policy, principal: str
) -> dict[str, str]:
    """The DOSSIER_* variables of one principal; secrets only as paths of files."""
    env = {
        "DOSSIER_KAFKA_BOOTSTRAP": kafka_address(settings),
        "DOSSIER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "DOSSIER_KAFKA_SASL_MECHANISM": SCRAM,
        "DOSSIER_KAFKA_CA_FILE": str(material.ca_cert),
        "DOSSIER_REDIS_URL": redis_url(settings),
        "DOSSIER_REDIS_CA_FILE": str(material.ca_cert),
        "DOSSIER_EVENTS_TOPIC": policy.events_topic,
        "DOSSIER_DEAD_LETTER_TOPIC": policy.dead_letter_topic,
        "DOSSIER_REDIS_PREFIX": policy.redis_prefix,
    }
    if principal in policy.kafka_principals:
        env["DOSSIER_KAFKA_USERNAME"] = principal
        env["DOSSIER_KAFKA_PASSWORD_FILE"] = str(material.kafka_password_file(principal))
    if principal in REDIS_USERS:
        env["DOSSIER_REDIS_USERNAME"] = principal
        env["DOSSIER_REDIS_PASSWORD_FILE"] = str(material.redis_password_file(principal))
    if principal == WORKER:
        env["DOSSIER_APP_ID"] = policy.app_id
        env["DOSSIER_SIGNING_MASTER_KEY_FILE"] = str(material.master_key_file)
    signer = _signer_of(principal)
    if signer is not None:
        env["DOSSIER_SIGNER"] = signer
        env["DOSSIER_SIGNING_KEY_FILE"] = str(material.signer_key_file(signer))
    return env


def principals(policy: Policy) -> list[str]:
    """Every principal that gets an env file."""
    return [ADMIN, WORKER, GATEWAY, READER, *(agency_principal(c) for c in policy.agencies)]


def _signer_of(principal: str) -> str | None:
    if principal == GATEWAY:
        return GATEWAY_SIGNER
    if principal.startswith(AGENCY_PREFIX):
        return principal.removeprefix(AGENCY_PREFIX)
    return None


def settings_from_env(env: Mapping[str, str]) -> StackSettings:
    """StackSettings from DOSSIER_* variables given here (they win over the process's)."""
    fields = StackSettings.model_fields
    values = {
        key.removeprefix("DOSSIER_").lower(): value
        for key, value in env.items()
        if key.removeprefix("DOSSIER_").lower() in fields
    }
    return StackSettings.model_validate(values)


@dataclass(frozen=True)
class SecureStack:
    """A running secured stack: its results, and each principal's settings."""

    settings: LocalStackSettings
    paths: SecurePaths
    material: Material
    policy: Policy
    results: tuple[StartResult, ...]

    def env_for(self, principal: str) -> dict[str, str]:
        return env_for(self.settings, self.material, self.policy, principal)

    def settings_for(self, principal: str) -> StackSettings:
        return settings_from_env(self.env_for(principal))

    def env_file(self, principal: str) -> Path:
        return self.paths.env_file(principal)

    @property
    def principals(self) -> list[str]:
        return principals(self.policy)


def policy_of(settings: LocalStackSettings) -> Policy:
    return Policy.from_settings(settings, WorkerSettings())


def secure_up(
    settings: LocalStackSettings, services: Sequence[ServiceName] = SERVICES
) -> SecureStack:
    """Generate what is missing, start the secured services, apply the Kafka policy.

    Idempotent: running services are left alone, secrets are kept, ACLs and topics that
    exist stay as they are. Raises LocalStackError when a service cannot start.
    """
    paths = SecurePaths.of(settings)
    policy = policy_of(settings)
    # The Kafka data holds the SCRAM users' salted keys: the whole stack is private.
    paths.stack.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.stack.root.chmod(0o700)
    material, _ = write_material(paths.secrets, policy)
    _write_env_files(settings, paths, material, policy)
    results = localstack.start_services(
        settings, paths.stack, _services(settings, paths, material, policy, services)
    )
    if "kafka" in services:
        admin = settings_from_env(env_for(settings, material, policy, ADMIN))
        try:
            apply_kafka_policy(admin, policy, material)
        except kafka_errors.KafkaError as exc:
            raise LocalStackError(f"could not apply the Kafka ACLs and topics: {exc!r}") from exc
    return SecureStack(settings, paths, material, policy, tuple(results))


def secure_down(
    settings: LocalStackSettings, services: Sequence[ServiceName] = SERVICES
) -> list[StopResult]:
    """Stop the secured services `secure_up` started, by their recorded PID only."""
    paths = SecurePaths.of(settings)
    material = Material(paths.secrets)
    policy = policy_of(settings)
    return localstack.stop_services(
        settings, paths.stack, _services(settings, paths, material, policy, services)
    )


def secure_status(
    settings: LocalStackSettings, services: Sequence[ServiceName] = SERVICES
) -> list[ServiceStatus]:
    paths = SecurePaths.of(settings)
    material = Material(paths.secrets)
    policy = policy_of(settings)
    return localstack.service_statuses(
        paths.stack, _services(settings, paths, material, policy, services)
    )


def secure_log_files(settings: LocalStackSettings, name: ServiceName) -> list[Path]:
    return localstack.log_files(settings, name, SecurePaths.of(settings).stack)


def _write_env_files(
    settings: LocalStackSettings, paths: SecurePaths, material: Material, policy: Policy
) -> None:
    paths.env.mkdir(mode=0o700, parents=True, exist_ok=True)
    for principal in principals(policy):
        env = env_for(settings, material, policy, principal)
        text = (
            f"# {principal} of the secured local stack; written by `dossier-stream services "
            "up --secure`.\n# Use: set -a; . <this file>; set +a\n"
            + "".join(f"{key}={value}\n" for key, value in env.items())
        )
        _write_if_changed(paths.env_file(principal), text)


def _write_if_changed(path: Path, text: str) -> bool:
    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8") == text:
            return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    tmp.replace(path)
    return True


# ---------------------------------------------------------------- the two services


def _services(
    settings: LocalStackSettings,
    paths: SecurePaths,
    material: Material,
    policy: Policy,
    names: Sequence[ServiceName],
) -> list[Service]:
    admin_env = lambda: env_for(settings, material, policy, ADMIN)  # noqa: E731
    built = {
        "kafka": Service(
            name="kafka",
            label="Kafka (secured)",
            port=settings.secure_kafka_port,
            address=kafka_address(settings),
            listens=(
                (settings.secure_kafka_port, "DOSSIER_SECURE_KAFKA_PORT"),
                (settings.secure_kafka_controller_port, "DOSSIER_SECURE_KAFKA_CONTROLLER_PORT"),
            ),
            cmdline_marker="kafka.Kafka",
            answering=lambda: localstack.port_open(settings.secure_kafka_port),
            ready=lambda: _kafka_ready(settings, admin_env()),
            prepare=lambda: localstack.prepare_kafka(
                settings,
                paths.stack,
                server_properties(settings, paths.stack, material),
                scram_format_args(material, policy),
            ),
        ),
        "redis": Service(
            name="redis",
            label="Redis (secured)",
            port=settings.secure_redis_port,
            address=redis_url(settings),
            listens=((settings.secure_redis_port, "DOSSIER_SECURE_REDIS_PORT"),),
            cmdline_marker="redis-server",
            answering=lambda: localstack.port_open(settings.secure_redis_port),
            ready=lambda: _redis_ready(admin_env()),
            prepare=lambda: localstack.prepare_redis(
                settings, paths.stack, redis_options_of(settings, material)
            ),
        ),
    }
    return [built[name] for name in names]


def server_properties(settings: LocalStackSettings, paths: StackPaths, material: Material) -> str:
    client = kafka_address(settings)
    controller = f"{HOST}:{settings.secure_kafka_controller_port}"
    password_dir = material.kafka_password_file(ADMIN).parent
    # The admin password is read from its file when the broker starts, never copied here.
    password = f"${{dir:{password_dir}:{ADMIN}.password}}"
    scram_jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{password}";'
    )
    plain_jaas = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{ADMIN}" password="{password}" user_{ADMIN}="{password}";'
    )
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Clients and the broker itself speak SASL_SSL with SCRAM. The KRaft controller
        # listener (127.0.0.1 only) cannot stay PLAINTEXT under an authorizer: its caller
        # would be User:ANONYMOUS and would need to be a super user, so anyone reaching
        # the port could change ACLs. Controllers cannot check SCRAM credentials (they
        # live in the metadata the controller serves), so it is SASL_SSL with PLAIN and
        # the admin's password, which only this node's own broker uses.
        "listeners": f"SASL_SSL://{client},CONTROLLER://{controller}",
        "advertised.listeners": f"SASL_SSL://{client}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL",
        "inter.broker.listener.name": "SASL_SSL",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.bootstrap.servers": controller,
        "sasl.enabled.mechanisms": SCRAM,
        "sasl.mechanism.inter.broker.protocol": SCRAM,
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": plain_jaas,
        "config.providers": "dir",
        "config.providers.dir.class": (
            "org.apache.kafka.common.config.provider.DirectoryConfigProvider"
        ),
        "config.providers.dir.param.allowed.paths": str(password_dir),
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram_jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(material.kafka_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(material.ca_cert),
        "ssl.client.auth": "none",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN}",
        "log.dirs": str(paths.kafka_data),
        **ONE_NODE_PROPERTIES,
    }
    header = "# Written by dossier_stream/securestack.py at every start; edits are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def redis_options_of(settings: LocalStackSettings, material: Material) -> list[str]:
    return [
        "--port",
        "0",  # no plaintext port at all
        "--tls-port",
        str(settings.secure_redis_port),
        "--tls-cert-file",
        str(material.server_cert("redis")),
        "--tls-key-file",
        str(material.server_key("redis")),
        "--tls-ca-cert-file",
        str(material.ca_cert),
        "--tls-auth-clients",
        "no",  # clients prove who they are with an ACL user's password
        "--aclfile",
        str(redis_acl_file(material)),
    ]


def _kafka_ready(settings: LocalStackSettings, admin_env: Mapping[str, str]) -> bool:
    if not localstack.port_open(settings.secure_kafka_port):
        return False
    admin = settings_from_env(admin_env)
    try:
        cluster = kafka_admin.describe_cluster(
            admin.kafka_bootstrap, timeout_s=5.0, options=kafka_options(admin)
        )
    except Exception as exc:  # any client error just means "not ready yet"
        log.debug("secured Kafka not ready yet: %s", exc)
        return False
    return bool(cluster.get("brokers"))


def _redis_ready(admin_env: Mapping[str, str]) -> bool:
    admin = settings_from_env(admin_env)
    return localstack.redis_answers(admin.redis_url, **redis_options(admin))
