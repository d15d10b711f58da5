"""Start, stop and inspect the Docker-free local Kafka broker and Redis server.

Kafka runs from Maven Central jars as one KRaft node (broker and controller in one JVM);
Redis is Debian's `redis-server`, installed with apt-get when missing. Both listen on
127.0.0.1 only, keep their data, logs and PID files under `LocalStackSettings.stack_dir`,
and are controlled by the PID recorded when they were started, never by process name.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from common import kafka_admin
from common.settings import StackSettings
from dossier_stream.settings import LocalStackSettings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
ServiceName = Literal["kafka", "redis"]
SERVICES: tuple[ServiceName, ...] = ("kafka", "redis")

_POLL_S = 0.2
_ERROR_LINE = re.compile(r"\b(ERROR|FATAL|Error)\b|Exception\b|\berror:")
_TAIL_LINES = 25
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Maven colours its output even when told not to
_JVM_OPTIONS = ("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")


class LocalStackError(RuntimeError):
    """A local service could not be installed, started or stopped."""


@dataclass(frozen=True)
class ServiceStatus:
    """What `status()` found for one service."""

    name: ServiceName
    running: bool
    pid: int | None
    address: str
    detail: str


@dataclass(frozen=True)
class StartResult:
    """Outcome of `up()` for one service; `started` is False when it was already running."""

    name: ServiceName
    pid: int
    address: str
    started: bool
    seconds: float


@dataclass(frozen=True)
class StopResult:
    """Outcome of `down()` for one service; `pid` is None when nothing was running."""

    name: ServiceName
    pid: int | None
    stopped: bool
    seconds: float


@dataclass(frozen=True)
class StackPaths:
    """Where the local services keep their files, all under `stack_dir`."""

    root: Path
    logs: Path
    pids: Path
    kafka_dir: Path
    kafka_data: Path
    kafka_config: Path
    kafka_jars: Path
    redis_dir: Path

    @classmethod
    def of(cls, settings: LocalStackSettings, root: Path | None = None) -> StackPaths:
        """The plain stack's paths, or another stack's under `root` (sharing the jars)."""
        root = settings.stack_dir if root is None else root
        kafka_dir = root / "kafka"
        jars_parent = settings.kafka_jars_dir or settings.stack_dir / "kafka"
        return cls(
            root=root,
            logs=root / "logs",
            pids=root / "pids",
            kafka_dir=kafka_dir,
            kafka_data=kafka_dir / "data",
            kafka_config=kafka_dir / "server.properties",
            kafka_jars=jars_parent / f"jars-{settings.kafka_version}",
            redis_dir=root / "redis",
        )

    def pid_file(self, name: ServiceName) -> Path:
        return self.pids / f"{name}.pid"

    def output_log(self, name: ServiceName) -> Path:
        """stdout and stderr of the process."""
        return self.logs / f"{name}.out"

    def service_log(self, name: ServiceName) -> Path:
        """The log the service itself writes."""
        return self.logs / ("kafka-server.log" if name == "kafka" else "redis.log")


# ---------------------------------------------------------------- public API


def kafka_address(settings: LocalStackSettings) -> str:
    """Bootstrap address of the local broker, host:port."""
    return f"{HOST}:{settings.kafka_port}"


def redis_url(settings: LocalStackSettings) -> str:
    """URL of the local Redis, database 0."""
    return f"redis://{HOST}:{settings.redis_port}/0"


def stack_settings(settings: LocalStackSettings) -> StackSettings:
    """StackSettings pointed at the local services (topic names and prefix from the env)."""
    return StackSettings(kafka_bootstrap=kafka_address(settings), redis_url=redis_url(settings))


def log_files(
    settings: LocalStackSettings, name: ServiceName, paths: StackPaths | None = None
) -> list[Path]:
    """The log files of a service, the most useful first (some may not exist yet)."""
    paths = StackPaths.of(settings) if paths is None else paths
    extra = "kafka-download.log" if name == "kafka" else "redis-install.log"
    return [paths.service_log(name), paths.output_log(name), paths.logs / extra]


def status(
    settings: LocalStackSettings, services: Sequence[ServiceName] = SERVICES
) -> list[ServiceStatus]:
    """Report, per service, whether our process is alive and answering on its port."""
    paths = StackPaths.of(settings)
    return service_statuses(paths, [_service(settings, paths, name) for name in services])


def up(
    settings: LocalStackSettings, services: Sequence[ServiceName] = SERVICES
) -> list[StartResult]:
    """Start the services that are not running yet and wait until each one is ready.

    A service already running (recorded PID alive and port answering) is left alone.
    Raises LocalStackError, quoting the service's log, if one cannot be started.
    """
    paths = StackPaths.of(settings)
    return start_services(settings, paths, [_service(settings, paths, name) for name in services])


def down(
    settings: LocalStackSettings, services: Sequence[ServiceName] = SERVICES
) -> list[StopResult]:
    """Stop the services started by `up()`, by their recorded PID only.

    SIGTERM to the process group, then SIGKILL after `stop_timeout_s`. Processes that
    `up()` did not start (no PID file, or the PID now belongs to something else) are
    never signalled.
    """
    paths = StackPaths.of(settings)
    return stop_services(settings, paths, [_service(settings, paths, name) for name in services])


# ---------------------------------------------------------------- any stack's services


def service_statuses(paths: StackPaths, services: Sequence[Service]) -> list[ServiceStatus]:
    """`status()` of the given services, whose files are under `paths`."""
    return [_status(paths, svc) for svc in services]


def start_services(
    settings: LocalStackSettings, paths: StackPaths, services: Sequence[Service]
) -> list[StartResult]:
    """`up()` of the given services, in order, under the stack's lock."""
    with _stack_lock(paths):
        return [_up(settings, paths, svc) for svc in services]


def start_together(
    settings: LocalStackSettings, lock: StackPaths, members: Sequence[tuple[StackPaths, Service]]
) -> list[StartResult]:
    """Launch every member that is not running, then wait until each one is ready.

    For services that cannot become ready alone, as the voters of a KRaft quorum: one
    node of three elects no leader until a second one runs. `lock` is the stack whose
    lock serialises this; each member keeps its files under its own paths. If one
    member fails, every member this call launched is stopped again.
    """
    with _stack_lock(lock):
        began = time.monotonic()
        launches = [_launch_service(settings, paths, svc) for paths, svc in members]
        results: list[StartResult] = []
        try:
            for launch in launches:
                if isinstance(launch, StartResult):
                    results.append(launch)
                    continue
                _wait_ready(
                    launch.svc,
                    launch.paths,
                    settings.start_timeout_s,
                    pid=launch.pid,
                    process=launch.process,
                    logs=launch.logs,
                )
                results.append(_started(launch, time.monotonic() - began))
        except LocalStackError:
            for launch in launches:
                if isinstance(launch, _Launch) and launch.process is not None:
                    _terminate(launch.pid, timeout_s=10.0)
                    launch.paths.pid_file(launch.svc.name).unlink(missing_ok=True)
            raise
        return results


def stop_services(
    settings: LocalStackSettings, paths: StackPaths, services: Sequence[Service]
) -> list[StopResult]:
    """`down()` of the given services, in order, under the stack's lock."""
    with _stack_lock(paths):
        return [_down(settings, paths, svc) for svc in services]


@dataclass(frozen=True)
class Service:
    """How to recognise, check and start one kind of service."""

    name: ServiceName
    label: str
    port: int
    address: str
    # Every port the service listens on, each with the setting that chooses it.
    listens: tuple[tuple[int, str], ...]
    cmdline_marker: str
    answering: Callable[[], bool]
    ready: Callable[[], bool]
    prepare: Callable[[], list[str]]


def _service(settings: LocalStackSettings, paths: StackPaths, name: ServiceName) -> Service:
    if name == "kafka":
        address = kafka_address(settings)
        return Service(
            name="kafka",
            label="Kafka",
            port=settings.kafka_port,
            address=address,
            listens=(
                (settings.kafka_port, "DOSSIER_KAFKA_PORT"),
                (settings.kafka_controller_port, "DOSSIER_KAFKA_CONTROLLER_PORT"),
            ),
            cmdline_marker="kafka.Kafka",
            answering=lambda: port_open(settings.kafka_port),
            ready=lambda: port_open(settings.kafka_port) and _kafka_answers(address),
            prepare=lambda: prepare_kafka(settings, paths, _server_properties(settings, paths)),
        )
    return Service(
        name="redis",
        label="Redis",
        port=settings.redis_port,
        address=redis_url(settings),
        listens=((settings.redis_port, "DOSSIER_REDIS_PORT"),),
        cmdline_marker="redis-server",
        answering=lambda: _redis_answers(settings.redis_port),
        ready=lambda: _redis_answers(settings.redis_port),
        prepare=lambda: prepare_redis(settings, paths, ["--port", str(settings.redis_port)]),
    )


def _status(paths: StackPaths, svc: Service) -> ServiceStatus:
    name = svc.name
    pid = _read_pid(paths.pid_file(name))
    if pid is None:
        detail = "stopped"
        if svc.answering():
            detail = f"stopped (but port {svc.port} is answered by a process we did not start)"
        return ServiceStatus(name, False, None, svc.address, detail)
    if not _is_our_process(pid, svc.cmdline_marker):
        return ServiceStatus(
            name, False, None, svc.address, f"stale PID file (pid {pid} is gone or not ours)"
        )
    if not svc.answering():
        detail = f"pid {pid} is alive but port {svc.port} does not answer (starting or stuck)"
        return ServiceStatus(name, False, pid, svc.address, detail)
    return ServiceStatus(name, True, pid, svc.address, "running")


@dataclass(frozen=True)
class _Launch:
    """A service launched (process set) or found alive but not answering yet (process None)."""

    svc: Service
    paths: StackPaths
    pid: int
    process: subprocess.Popen[bytes] | None
    logs: dict[Path, int]


def _up(settings: LocalStackSettings, paths: StackPaths, svc: Service) -> StartResult:
    began = time.monotonic()
    launch = _launch_service(settings, paths, svc)
    if isinstance(launch, StartResult):
        return launch
    _wait_ready(
        svc,
        paths,
        settings.start_timeout_s,
        pid=launch.pid,
        process=launch.process,
        logs=launch.logs,
    )
    return _started(launch, time.monotonic() - began)


def _started(launch: _Launch, seconds: float) -> StartResult:
    svc = launch.svc
    if launch.process is None:
        log.info("%s is already running (pid %d on %s)", svc.label, launch.pid, svc.address)
        return StartResult(svc.name, launch.pid, svc.address, started=False, seconds=0.0)
    log.info("started %s pid %d on %s in %.1f s", svc.label, launch.pid, svc.address, seconds)
    return StartResult(svc.name, launch.pid, svc.address, started=True, seconds=seconds)


def _launch_service(
    settings: LocalStackSettings, paths: StackPaths, svc: Service
) -> StartResult | _Launch:
    """Launch svc unless it runs; a StartResult when it is running and answering."""
    name = svc.name
    pid_file = paths.pid_file(name)
    pid = _read_pid(pid_file)
    if pid is not None and _is_our_process(pid, svc.cmdline_marker):
        if not svc.answering():
            log.info("%s pid %d is alive but not answering yet; waiting", svc.label, pid)
            return _Launch(svc, paths, pid, None, {})
        log.info("%s is already running (pid %d on %s)", svc.label, pid, svc.address)
        return StartResult(name, pid, svc.address, started=False, seconds=0.0)
    if pid is not None:
        log.info("removing stale %s PID file (pid %d is gone)", svc.label, pid)
        pid_file.unlink(missing_ok=True)
    for port, variable in svc.listens:
        if port_open(port):
            raise LocalStackError(
                f"port {HOST}:{port} is already in use by a process that `dossier-stream "
                f"services` did not start (a Docker container or a system {svc.label}?); stop "
                f"it or choose another port with {variable}"
            )

    command = svc.prepare()
    # Errors quote only what this start wrote, not the logs of earlier runs.
    logs = {path: _size(path) for path in (paths.output_log(name), paths.service_log(name))}
    process = _launch(command, paths.output_log(name), cwd=paths.root)
    _write_pid(pid_file, process.pid)
    log.info("launched %s pid %d; waiting until it is ready", svc.label, process.pid)
    return _Launch(svc, paths, process.pid, process, logs)


def _wait_ready(
    svc: Service,
    paths: StackPaths,
    timeout_s: float,
    *,
    pid: int,
    process: subprocess.Popen[bytes] | None,
    logs: dict[Path, int],
) -> None:
    """Wait until svc is ready; on failure raise with the logs written since the offsets."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None:
            # Our child: poll() both reaps it and gives the exit code.
            exit_code = process.poll()
            exited = exit_code is not None
        else:
            exit_code = None
            exited = not _is_our_process(pid, svc.cmdline_marker)
        if exited:
            paths.pid_file(svc.name).unlink(missing_ok=True)
            how = f" with code {exit_code}" if exit_code is not None else ""
            raise LocalStackError(
                f"{svc.label} (pid {pid}) exited{how} while starting.\n"
                + _log_tails(paths, svc, logs)
            )
        if svc.ready():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    # Do not leave a half-started service behind: the next `up` would take it for ours.
    _terminate(pid, timeout_s=10.0)
    paths.pid_file(svc.name).unlink(missing_ok=True)
    raise LocalStackError(
        f"{svc.label} (pid {pid}) was not ready on {svc.address} after {timeout_s:.0f} s; "
        f"it was stopped.\n{_log_tails(paths, svc, logs)}"
    )


def _down(settings: LocalStackSettings, paths: StackPaths, svc: Service) -> StopResult:
    name = svc.name
    pid_file = paths.pid_file(name)
    pid = _read_pid(pid_file)
    if pid is None:
        if svc.answering():
            log.warning(
                "%s: no PID file, but port %d answers: a process we did not start; left alone",
                svc.label,
                svc.port,
            )
        else:
            log.info("%s is not running", svc.label)
        return StopResult(name, None, stopped=False, seconds=0.0)
    if not _is_our_process(pid, svc.cmdline_marker):
        log.info("%s is not running; removing stale PID file (pid %d)", svc.label, pid)
        pid_file.unlink(missing_ok=True)
        return StopResult(name, None, stopped=False, seconds=0.0)

    began = time.monotonic()
    log.info("stopping %s pid %d", svc.label, pid)
    _terminate(pid, timeout_s=settings.stop_timeout_s)
    pid_file.unlink(missing_ok=True)
    for port, _ in svc.listens:
        if not _wait_until(functools.partial(_port_closed, port), timeout_s=5.0):
            raise LocalStackError(
                f"{svc.label} pid {pid} has exited but port {port} still accepts connections"
            )
    seconds = time.monotonic() - began
    log.info("stopped %s pid %d in %.1f s", svc.label, pid, seconds)
    return StopResult(name, pid, stopped=True, seconds=seconds)


# ---------------------------------------------------------------- Kafka


def prepare_kafka(
    settings: LocalStackSettings,
    paths: StackPaths,
    properties: str,
    format_args: Sequence[str] = (),
    cluster_id: str | None = None,
) -> list[str]:
    """Fetch the jars, write server.properties, format storage once; return the command.

    `format_args` are extra arguments of `kafka-storage format` (SCRAM users); they may
    hold secrets, so they reach the JVM through an argument file of mode 0600, deleted
    after use, never through a command line or a log. `cluster_id`: the id shared by the
    nodes of a cluster with a static quorum (default: a new one-node cluster).
    """
    java = _require_executable("java", "Java 17 or newer is needed to run Kafka")
    _ensure_kafka_jars(settings, paths)
    for directory in (paths.kafka_dir, paths.kafka_data, paths.logs):
        directory.mkdir(parents=True, exist_ok=True)
    paths.kafka_config.write_text(properties)
    _format_kafka_storage(settings, paths, java, format_args, cluster_id)
    return [
        java,
        *shlex.split(settings.kafka_heap),
        *_JVM_OPTIONS,
        *_log4j_options(settings, paths, paths.service_log("kafka").name),
        "-cp",
        str(paths.kafka_jars / "*"),
        "kafka.Kafka",
        str(paths.kafka_config),
    ]


def _ensure_kafka_jars(settings: LocalStackSettings, paths: StackPaths) -> None:
    jars = paths.kafka_jars
    marker = jars / ".complete"
    if marker.exists():
        return
    mvn = _require_executable("mvn", "Maven (mvn) is needed once to fetch the Kafka jars")
    pom = settings.kafka_files_dir / "pom.xml"
    if not pom.is_file():
        raise LocalStackError(f"{pom} is missing: it lists the Kafka jars to fetch")
    partial = jars.with_name(jars.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    download_log = paths.logs / "kafka-download.log"
    log.info(
        "downloading Kafka %s jars from Maven Central into %s (log: %s)",
        settings.kafka_version,
        jars,
        download_log,
    )
    began = time.monotonic()
    command = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
        f"-Dkafka.version={settings.kafka_version}",
    ]
    _run_logged(command, download_log, what="fetching the Kafka jars", timeout_s=1800)
    count = len(list(partial.glob("*.jar")))
    if count == 0:
        raise LocalStackError(f"Maven fetched no jar into {partial}; see {download_log}")
    shutil.rmtree(jars, ignore_errors=True)
    partial.rename(jars)
    size_mb = sum(p.stat().st_size for p in jars.glob("*.jar")) / 1e6
    # Written last: its presence means the directory is complete and needs no download.
    marker.write_text(f"kafka {settings.kafka_version}: {count} jars\n")
    log.info("downloaded %d jars (%.0f MB) in %.1f s", count, size_mb, time.monotonic() - began)


def _log4j_options(
    settings: LocalStackSettings, paths: StackPaths, log_file: str = "kafka-tools.log"
) -> list[str]:
    return [
        f"-Dlog4j2.configurationFile={settings.kafka_files_dir / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={paths.logs}",
        f"-Dkafka.log.file={log_file}",
    ]


# The broker settings of a one-node local cluster (the plain and the secured stack).
ONE_NODE_PROPERTIES = {
    "num.partitions": "4",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    # One broker: a handful of partitions for internal topics makes the first
    # consumer group and the first transaction quick to set up.
    "offsets.topic.num.partitions": "8",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "8",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
}


def _server_properties(settings: LocalStackSettings, paths: StackPaths) -> str:
    client = f"{HOST}:{settings.kafka_port}"
    controller = f"{HOST}:{settings.kafka_controller_port}"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"PLAINTEXT://{client},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{client}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.bootstrap.servers": controller,
        "log.dirs": str(paths.kafka_data),
        **ONE_NODE_PROPERTIES,
    }
    header = "# Written by dossier_stream/localstack.py at every start; edits are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def _format_kafka_storage(
    settings: LocalStackSettings,
    paths: StackPaths,
    java: str,
    extra: Sequence[str] = (),
    cluster_id: str | None = None,
) -> None:
    """Format the storage once. Without `cluster_id`: a new id and a one-voter quorum
    (`--standalone`); with it: that id, the voters named by `controller.quorum.voters`."""
    if (paths.kafka_data / "meta.properties").exists():
        return
    base = [
        java,
        "-Xmx256m",
        *_log4j_options(settings, paths),
        "-cp",
        str(paths.kafka_jars / "*"),
        "kafka.tools.StorageTool",
    ]
    format_log = paths.logs / "kafka-format.log"
    quorum = []
    if cluster_id is None:
        output = _run_logged(
            [*base, "random-uuid"], format_log, what="making a Kafka cluster id", timeout_s=120
        )
        cluster_id = output.strip().splitlines()[-1]
        quorum = ["--standalone"]
    command = [*base, "format", "-t", cluster_id, "-c", str(paths.kafka_config), *quorum]
    if not extra:
        _run_logged(command, format_log, what="formatting the Kafka storage", timeout_s=120)
    else:
        # The JVM launcher expands an @file up to the main class: put it and the rest there.
        main = command.index("kafka.tools.StorageTool")
        argfile = paths.kafka_dir / "format.args"
        argfile.unlink(missing_ok=True)
        fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f'"{arg}"\n' for arg in [*command[main:], *extra])
        try:
            _run_logged(
                [*command[:main], f"@{argfile}"],
                format_log,
                what="formatting the Kafka storage",
                timeout_s=120,
            )
        finally:
            argfile.unlink(missing_ok=True)
    log.info("formatted Kafka storage in %s (cluster id %s)", paths.kafka_data, cluster_id)


def _kafka_answers(bootstrap: str) -> bool:
    try:
        cluster = kafka_admin.describe_cluster(bootstrap, timeout_s=5.0, options={})
    except Exception as exc:  # any client error just means "not ready yet"
        log.debug("Kafka on %s not ready yet: %s", bootstrap, exc)
        return False
    return bool(cluster.get("brokers"))


# ---------------------------------------------------------------- Redis


def prepare_redis(
    settings: LocalStackSettings, paths: StackPaths, options: Sequence[str]
) -> list[str]:
    """Install redis-server if needed; return its command with `options` (ports, TLS, ACL)."""
    server = _ensure_redis_server(settings, paths)
    paths.redis_dir.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    return [
        server,
        *options,
        "--bind",
        HOST,
        "--dir",
        str(paths.redis_dir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        str(paths.service_log("redis")),
    ]


def _ensure_redis_server(settings: LocalStackSettings, paths: StackPaths) -> str:
    found = shutil.which(settings.redis_server) or shutil.which("/usr/bin/redis-server")
    if found:
        return found
    hint = "install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`)"
    if not settings.install_redis:
        raise LocalStackError(f"{settings.redis_server} was not found; {hint}")
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise LocalStackError(
            f"{settings.redis_server} was not found and cannot be installed automatically "
            f"(needs apt-get and root); {hint}"
        )
    paths.logs.mkdir(parents=True, exist_ok=True)
    install_log = paths.logs / "redis-install.log"
    log.info("redis-server not found; installing Debian's redis-server (log: %s)", install_log)
    began = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run_logged(["apt-get", "update"], install_log, what="apt-get update", env=env)
    _run_logged(
        ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"],
        install_log,
        what="apt-get install redis-server",
        env=env,
    )
    found = shutil.which(settings.redis_server) or shutil.which("/usr/bin/redis-server")
    if not found:
        raise LocalStackError(f"redis-server is still missing after apt-get; see {install_log}")
    log.info("installed %s in %.1f s", found, time.monotonic() - began)
    return found


def _redis_answers(port: int) -> bool:
    return redis_answers(f"redis://{HOST}:{port}/0")


def redis_answers(url: str, **options: Any) -> bool:
    """True when the Redis at `url` answers PING (`options`: credentials, TLS)."""
    # No retries: a refused or silent port must answer "no" at once, not after backoffs.
    client = redis.Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        **options,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# ---------------------------------------------------------------- processes


@contextmanager
def _stack_lock(paths: StackPaths) -> Iterator[None]:
    """Serialise `up` and `down` between processes sharing one stack_dir."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _launch(command: list[str], output: Path, *, cwd: Path) -> subprocess.Popen[bytes]:
    output.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with output.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n".encode())
        out.flush()
        try:
            # A session of its own: the service outlives this process and its terminal,
            # and `down()` can signal its whole process group.
            return subprocess.Popen(
                command,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise LocalStackError(f"could not run {command[0]}: {exc}") from exc


def _run_logged(
    command: list[str],
    log_path: Path,
    *,
    what: str,
    timeout_s: float = 900,
    env: dict[str, str] | None = None,
) -> str:
    """Run a short command to completion, append its output to log_path, return its stdout."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalStackError(f"{what} failed: {exc}") from exc
    with log_path.open("a") as handle:
        handle.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n")
        handle.write(_ANSI.sub("", done.stdout))
        handle.write(_ANSI.sub("", done.stderr))
        handle.write(f"=== exit code {done.returncode}\n")
    if done.returncode != 0:
        raise LocalStackError(
            f"{what} failed (exit code {done.returncode}); last lines of {log_path}:\n"
            + _tail(log_path)
        )
    return done.stdout


def _terminate(pid: int, *, timeout_s: float) -> None:
    """SIGTERM the process group led by pid, SIGKILL it after timeout_s, wait for the end."""
    group = _own_group(pid)
    _signal(pid, group, signal.SIGTERM)
    if not _wait_until(lambda: not _alive(pid), timeout_s=timeout_s):
        log.warning("pid %d did not stop within %.0f s of SIGTERM; sending SIGKILL", pid, timeout_s)
        _signal(pid, group, signal.SIGKILL)
        if not _wait_until(lambda: not _alive(pid), timeout_s=10.0):
            raise LocalStackError(f"pid {pid} is still alive after SIGKILL")
    if group and _group_has_members(pid):
        # Children the service left in its own process group go with it.
        log.warning("process group %d still had members; sending SIGKILL", pid)
        _signal(pid, group, signal.SIGKILL)
        if not _wait_until(lambda: not _group_has_members(pid), timeout_s=5.0):
            raise LocalStackError(f"process group {pid} still has members after SIGKILL")


def _own_group(pid: int) -> bool:
    """True when pid leads its own process group, as every process `_launch` starts does."""
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _signal(pid: int, group: bool, signum: signal.Signals) -> None:
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _group_has_members(pgid: int) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        stat = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            return True
    return False


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) from /proc/<pid>/stat, or None when unavailable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may contain spaces; the fields after it do not.
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def _alive(pid: int) -> bool:
    """True while pid runs; reaps it if it is our own exited child; zombies count as gone."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass  # not our child: nothing to reap
    stat = _proc_stat(pid)
    if stat is not None:
        return stat[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_process(pid: int, marker: str) -> bool:
    """Alive and still the program we started (guards against a recycled PID)."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc").is_dir()  # no /proc (macOS): trust the PID file
    return marker.encode() in cmdline


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_pid(pid_file: Path, pid: int) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(pid_file)


def port_open(port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _port_closed(port: int) -> bool:
    return not port_open(port)


def _wait_until(condition: Callable[[], bool], *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _require_executable(name: str, why: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise LocalStackError(f"{name} was not found on PATH: {why}")
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tail(path: Path, lines: int = _TAIL_LINES, *, offset: int = 0) -> str:
    """The last lines of path, reading from byte offset on."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"    ({path} does not exist)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _first_errors(path: Path, offset: int, count: int = 5) -> str:
    """The first lines from offset on that report an error: the cause, before the fallout."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    found = [line for line in lines if _ERROR_LINE.search(line)][:count]
    return "\n".join("    " + line for line in found)


def _log_tails(paths: StackPaths, svc: Service, offsets: dict[Path, int]) -> str:
    parts = []
    for path in (paths.output_log(svc.name), paths.service_log(svc.name)):
        offset = offsets.get(path, 0)
        if _size(path) > offset:
            errors = _first_errors(path, offset)
            if errors:
                parts.append(f"first errors in {path}:\n{errors}")
            parts.append(f"last lines of {path}:\n{_tail(path, offset=offset)}")
    return "\n".join(parts) or "(the service wrote no log)"
