"""Start, stop or inspect the local, Docker-free Kafka broker and Redis server.

Kafka (KRaft, one node, jars fetched once from Maven Central) listens on 127.0.0.1:29092,
Redis (Debian's redis-server, installed with apt-get if missing) on 127.0.0.1:26379.
Data, logs and PID files live in .local/ (DOSSIER_STACK_DIR). Ports, versions and
timeouts come from DOSSIER_* environment variables (see dossier_stream/settings.py).

With --secure the same commands act on a separate, secured stack in .local/secure/:
Kafka on 127.0.0.1:29192 (SASL_SSL, SCRAM-SHA-512, ACLs), Redis on 127.0.0.1:26390 (TLS,
ACL users). Its secrets and certificates are generated once and kept; each principal's
DOSSIER_* variables are written to .local/secure/env/<principal>.env (docs/security.md).

With --brokers 3 they act on a separate three-broker KRaft cluster in .local/cluster/
(docs/cluster.md): nodes 1-3, each broker and controller, on 127.0.0.1:29292, 29294 and
29296 (controllers 29293, 29295, 29297), topics replicated 3 times with 2 in sync, and a
Redis of its own on 127.0.0.1:26391, so that `down --brokers 3` never stops the plain
stack's Redis. The three brokers are launched together: one alone has no quorum.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from kafka.errors import KafkaError

from common.console import print_error
from common.errors import EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_USAGE
from common.settings import StackSettings
from dossier_stream import clusterstack, localstack, securestack
from dossier_stream.credentials import CredentialsError, Material
from dossier_stream.settings import LocalStackSettings

EXAMPLES = """\
examples:
  dossier-stream services up                 # start Kafka and Redis (no-op if running)
  dossier-stream services up --only redis    # just Redis
  dossier-stream services status             # exit code 3 when one is not running
  dossier-stream services logs --only kafka  # log paths and their last lines
  dossier-stream services down               # stop what `up` started, by recorded PID
  DOSSIER_STACK_DIR=/tmp/stack2 DOSSIER_REDIS_PORT=36379 \\
    dossier-stream services up --only redis  # a second, separate Redis

  dossier-stream services up --secure        # the secured stack, next to the plain one
  set -a; . .local/secure/env/worker.env; set +a; dossier-stream worker   # as `worker`
  dossier-stream services status --secure
  dossier-stream services down --secure
  dossier-stream services secrets --dir ./secrets --host kafka --host redis
                                             # the same secrets for another deployment
  set -a; . .local/secure/env/admin.env; set +a; dossier-stream services acls
                                             # topics, SCRAM users and ACLs, as admin

  dossier-stream services up --brokers 3     # three brokers (RF 3, min ISR 2) and a Redis
  dossier-stream services status --brokers 3 # each node by its recorded PID
  DOSSIER_KAFKA_BOOTSTRAP=127.0.0.1:29292,127.0.0.1:29294,127.0.0.1:29296 \\
    DOSSIER_REDIS_URL=redis://127.0.0.1:26391/0 \\
    DOSSIER_REPLICATION_FACTOR=3 DOSSIER_MIN_INSYNC_REPLICAS=2 dossier-stream worker
  dossier-stream services logs --brokers 3 -n 5
  dossier-stream services down --brokers 3   # all three brokers and the cluster's Redis
"""

ACTIONS = ("up", "down", "status", "logs", "secrets", "acls")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    parser.add_argument(
        "--only",
        choices=localstack.SERVICES,
        help="act on this service only (default: all of them)",
    )
    parser.add_argument(
        "-n",
        "--lines",
        type=int,
        default=20,
        help="lines of each log shown by `logs` (default 20; 0 for paths only)",
    )
    parser.add_argument(
        "--secure",
        action="store_true",
        help="act on the secured stack in <stack_dir>/secure/ (its own ports)",
    )
    parser.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        default=1,
        help="3: act on the local three-broker cluster in <stack_dir>/cluster/ (its own "
        "ports and Redis); 1: the plain one-broker stack (default)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="`secrets`: directory to generate the secrets and certificates into",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="`secrets`: a name the servers answer to, added to their certificates "
        "(besides 127.0.0.1 and localhost); repeatable",
    )


def run(args: argparse.Namespace) -> int:
    settings = LocalStackSettings()
    services: Sequence[localstack.ServiceName] = (args.only,) if args.only else localstack.SERVICES
    action: str = args.action
    if action == "secrets":
        return _secrets(settings, args.dir, args.host)
    if action == "acls":
        return _acls(settings)
    if args.secure and args.brokers == 3:
        print_error("--secure and --brokers 3 are two separate stacks: choose one", "services")
        return EXIT_USAGE
    if args.secure:
        return _secure(settings, services, action, args.lines)
    if args.brokers == 3:
        if args.only:
            print_error("--only does not apply to the cluster: it runs as a whole", "services")
            return EXIT_USAGE
        return _cluster(settings, action, args.lines)
    if action == "up":
        return _up(settings, services)
    if action == "down":
        return _down(settings, services)
    if action == "status":
        return _status(settings, services)
    return _logs(settings, services, args.lines)


def _up(settings: LocalStackSettings, services: Sequence[localstack.ServiceName]) -> int:
    failures: list[str] = []
    for name in services:
        try:
            (result,) = localstack.up(settings, [name])
        except localstack.LocalStackError as exc:
            failures.append(f"{name} did not start: {exc}")
            continue
        _show_started([(name, result)])
    # Last, so that the output ends in the line that names the failure.
    for failure in failures:
        print_error(failure, "services")
    return EXIT_FAILURE if failures else 0


def _down(settings: LocalStackSettings, services: Sequence[localstack.ServiceName]) -> int:
    try:
        results = localstack.down(settings, services)
    except localstack.LocalStackError as exc:
        print_error(str(exc), "services")
        return EXIT_FAILURE
    _show_stopped([(r.name, r) for r in results])
    return 0


def _status(settings: LocalStackSettings, services: Sequence[localstack.ServiceName]) -> int:
    return _show_statuses([(st.name, st) for st in localstack.status(settings, services)])


def _logs(
    settings: LocalStackSettings,
    services: Sequence[localstack.ServiceName],
    lines: int,
    *,
    secure: bool = False,
) -> int:
    for name in services:
        _show_logs(
            securestack.secure_log_files(settings, name)
            if secure
            else localstack.log_files(settings, name),
            lines,
        )
    return 0


def _secure(
    settings: LocalStackSettings,
    services: Sequence[localstack.ServiceName],
    action: str,
    lines: int,
) -> int:
    if action == "logs":
        return _logs(settings, services, lines, secure=True)
    if action == "status":
        return _show_statuses(
            [(st.name, st) for st in securestack.secure_status(settings, services)]
        )
    if action == "down":
        try:
            stopped = securestack.secure_down(settings, services)
        except localstack.LocalStackError as exc:
            print_error(str(exc), "services")
            return EXIT_FAILURE
        _show_stopped([(r.name, r) for r in stopped])
        return 0
    try:
        stack = securestack.secure_up(settings, services)
    except localstack.LocalStackError as exc:
        print_error(f"the secured stack did not start: {exc}", "services")
        return EXIT_FAILURE
    _show_started([(up.name, up) for up in stack.results])
    env_dir = stack.paths.env
    print(f"\nenv files, one per principal, in {env_dir}:")
    print("  " + "  ".join(f"{p}.env" for p in stack.principals))
    print(f"secrets (mode 0600) in {stack.paths.secrets}; env files name them, never hold them")
    print(f"use one in a shell:  set -a; . {env_dir / 'worker.env'}; set +a")
    return 0


def _cluster(settings: LocalStackSettings, action: str, lines: int) -> int:
    if action == "status":
        return _show_statuses(clusterstack.status(settings), width=8)
    if action == "logs":
        for _name, files in clusterstack.log_files(settings):
            _show_logs(files, lines)
        return 0
    if action == "down":
        try:
            stopped = clusterstack.down(settings)
        except localstack.LocalStackError as exc:
            print_error(str(exc), "services")
            return EXIT_FAILURE
        _show_stopped(stopped, width=8)
        return 0
    try:
        started = clusterstack.up(settings)
    except localstack.LocalStackError as exc:
        print_error(f"the cluster did not start: {exc}", "services")
        return EXIT_FAILURE
    _show_started(started, width=8)
    print(f"\nbootstrap: {clusterstack.kafka_bootstrap(settings)}")
    print(
        f"topics: replication factor {clusterstack.REPLICATION_FACTOR}, min.insync.replicas "
        f"{clusterstack.MIN_INSYNC_REPLICAS}; set DOSSIER_REPLICATION_FACTOR and "
        "DOSSIER_MIN_INSYNC_REPLICAS to match (docs/cluster.md)"
    )
    return 0


def _secrets(settings: LocalStackSettings, directory: Path | None, hosts: list[str]) -> int:
    if directory is None:
        print_error("`secrets` needs --dir DIR", "services")
        return EXIT_USAGE
    policy = securestack.policy_of(settings)
    try:
        material, created = securestack.write_material(directory, policy, hosts)
    except (OSError, CredentialsError) as exc:
        print_error(f"could not write the secrets into {directory}: {exc}", "services")
        return EXIT_FAILURE
    for path in created:
        print(f"created {path}")
    kept = "" if created else " (everything existed; nothing was generated)"
    print(f"secrets and certificates in {material.root}{kept}")
    return 0


def _acls(settings: LocalStackSettings) -> int:
    admin = StackSettings()
    if admin.kafka_username != securestack.ADMIN:
        print_error(
            "`acls` runs as the Kafka super user: set the variables of admin.env "
            f"(DOSSIER_KAFKA_USERNAME={securestack.ADMIN}, DOSSIER_KAFKA_PASSWORD_FILE, ...)",
            "services",
        )
        return EXIT_USAGE
    policy = securestack.policy_of(settings)
    material = None
    if admin.kafka_password_file is not None:
        # The other principals' passwords sit next to the admin's: add missing SCRAM users.
        material = Material(admin.kafka_password_file.parent.parent)
    try:
        done = securestack.apply_kafka_policy(admin, policy, material)
    except (localstack.LocalStackError, KafkaError, CredentialsError) as exc:
        print_error(f"could not apply the Kafka policy: {exc}", "services")
        return EXIT_FAILURE
    print(
        f"{admin.kafka_bootstrap}: {done['acls']} ACLs in place ({done['removed_acls']} stray "
        f"ones deleted), {done['users']} SCRAM users added ({done['removed_users']} deleted), "
        f"{done['topics']} topics created"
    )
    return 0


# -- what every stack prints: one line per service ---------------------------------------


def _show_started(rows: Sequence[tuple[str, localstack.StartResult]], width: int = 6) -> None:
    for name, result in rows:
        how = f"started in {result.seconds:.1f} s" if result.started else "already running"
        print(f"{name:<{width}} {result.address:<28} pid {result.pid:<8} {how}")


def _show_stopped(rows: Sequence[tuple[str, localstack.StopResult]], width: int = 6) -> None:
    for name, result in rows:
        how = f"stopped pid {result.pid}" if result.stopped else "was not running"
        print(f"{name:<{width}} {how}")


def _show_statuses(rows: Sequence[tuple[str, localstack.ServiceStatus]], width: int = 6) -> int:
    """The statuses, then the exit code: 0 when every service runs."""
    for name, st in rows:
        pid = f"pid {st.pid}" if st.pid is not None else "-"
        print(f"{name:<{width}} {st.address:<28} {pid:<12} {st.detail}")
    return 0 if all(st.running for _, st in rows) else EXIT_NOT_RUNNING


def _show_logs(paths: Sequence[Path], lines: int) -> None:
    """Each existing log's path, and its last `lines` lines."""
    for path in paths:
        if not path.exists():
            continue
        print(f"==> {path} <==")
        if lines > 0:
            print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
            print()
