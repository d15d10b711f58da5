"""Start, stop or inspect the local, Docker-free Kafka broker and Redis server.

Kafka (KRaft, one node, jars fetched once from Maven Central) listens on 127.0.0.1:29092,
Redis (Debian's redis-server, installed with apt-get if missing) on 127.0.0.1:26379.
Data, logs and PID files live in .local/ (DOSSIER_STACK_DIR). Ports, versions and
timeouts come from DOSSIER_* environment variables (see dossier_stream/settings.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from common.console import print_error
from common.errors import EXIT_FAILURE, EXIT_NOT_RUNNING
from dossier_stream import localstack
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
"""

ACTIONS = ("up", "down", "status", "logs")


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


def run(args: argparse.Namespace) -> int:
    settings = LocalStackSettings()
    services: Sequence[localstack.ServiceName] = (args.only,) if args.only else localstack.SERVICES
    action: str = args.action
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
        how = f"started in {result.seconds:.1f} s" if result.started else "already running"
        print(f"{name:<6} {result.address:<28} pid {result.pid:<8} {how}")
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
    for result in results:
        how = f"stopped pid {result.pid}" if result.stopped else "was not running"
        print(f"{result.name:<6} {how}")
    return 0


def _status(settings: LocalStackSettings, services: Sequence[localstack.ServiceName]) -> int:
    statuses = localstack.status(settings, services)
    for st in statuses:
        pid = f"pid {st.pid}" if st.pid is not None else "-"
        print(f"{st.name:<6} {st.address:<28} {pid:<12} {st.detail}")
    return 0 if all(st.running for st in statuses) else EXIT_NOT_RUNNING


def _logs(
    settings: LocalStackSettings, services: Sequence[localstack.ServiceName], lines: int
) -> int:
    for name in services:
        for path in localstack.log_files(settings, name):
            if not path.exists():
                continue
            print(f"==> {path} <==")
            if lines > 0:
                text = path.read_text(errors="replace").splitlines()[-lines:]
                print("\n".join(text))
                print()
    return 0
