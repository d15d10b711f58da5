"""Session fixtures: the real local Kafka and Redis, and per-test topic names and key prefixes.

Tests that need the services ask for `stack` (directly or through `make_topics` or
`redis_client`), `secure_stack` for the secured one or `cluster_stack` for the local
three-broker cluster, and are marked `integration` automatically. The services are started
only when such a test runs; those this session started are stopped at its end, and a
stack that was already running is left running.

With pytest-xdist (`-n 2`, as `make test` runs them) each worker process has a session
of its own, and the one that started a service may finish while another still uses it.
So a worker never stops a service: it writes what it started into a ledger the
controlling process made (`STARTED_LEDGER_ENV`), and the controller stops those at the
end. Tests of the plain stack use topics and key prefixes of their own (`names`), so
they can run side by side. Tests marked `serial` cannot: some stop or restart the shared
local Kafka or Redis, and the secured stack's tests (marked automatically) share its
topics and key prefix, which one of them empties. A worker refuses them (`make test`
runs them after the others, in one process).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import pytest
import redis

from common import kafka_admin
from common.settings import StackSettings
from dossier_stream import clusterstack, localstack, securestack
from dossier_stream.settings import LocalStackSettings

INTEGRATION_DIR = Path(__file__).parent / "integration"
# Fixtures that reach the services: a test using any of them is an integration test.
STACK_FIXTURES = frozenset(
    {"stack", "make_topics", "redis_client", "secure_stack", "cluster_stack"}
)


# Set by the controlling process of an xdist run: a directory where its workers list the
# services they started, one file per stack ("plain", "secure", "cluster").
STARTED_LEDGER_ENV = "DOSSIER_TEST_STARTED_LEDGER"
StackKind = Literal["plain", "secure", "cluster"]


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)  # before `-m` selection reads the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        in_dir = INTEGRATION_DIR in Path(str(item.path)).parents
        uses_stack = bool(STACK_FIXTURES & set(getattr(item, "fixturenames", ())))
        if (in_dir or uses_stack) and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)
        # The secured stack's tests share its topics, ACLs and key prefix, and one of them
        # empties those: they run one after another.
        fixtures = getattr(item, "fixturenames", ())
        if "secure_stack" in fixtures and item.get_closest_marker("serial") is None:
            item.add_marker(pytest.mark.serial)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("serial") and _is_xdist_worker(item.config):
        pytest.fail(
            "this test cannot run beside other tests (it stops shared services or shares "
            "the secured stack's names): run the `serial` tests without -n "
            "(`pytest -m serial`), the others with `-m 'not serial'` (as `make test` does)",
            pytrace=False,
        )


_LEDGER_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    if not _is_xdist_worker(config) and STARTED_LEDGER_ENV not in os.environ:
        # The workers xdist starts inherit this process's environment.
        ledger = tempfile.mkdtemp(prefix="dossier-tests-started-")
        os.environ[STARTED_LEDGER_ENV] = config.stash[_LEDGER_KEY] = ledger


def pytest_unconfigure(config: pytest.Config) -> None:
    """In the controlling process: stop what its workers started, once they are done."""
    ledger = config.stash.get(_LEDGER_KEY, None)
    if ledger is None:  # a worker, or a run inside another run's ledger
        return
    os.environ.pop(STARTED_LEDGER_ENV, None)
    settings = LocalStackSettings()
    for kind in get_args(StackKind):
        path = Path(ledger) / kind
        if path.exists():
            _stop(kind, settings, set(path.read_text().split()))
    shutil.rmtree(ledger, ignore_errors=True)


def _stop(kind: StackKind, settings: LocalStackSettings, names: Collection[str]) -> None:
    """Stop the named services of one stack (by their recorded PIDs only)."""
    if kind == "cluster":
        clusterstack.down(settings, set(names))
        return
    services = [name for name in localstack.SERVICES if name in names]
    if kind == "plain":
        localstack.down(settings, services)
    else:
        securestack.secure_down(settings, services)


def _stop_at_the_end(
    config: pytest.Config, kind: StackKind, settings: LocalStackSettings, names: Collection[str]
) -> None:
    """Stop `names` now, or, in an xdist worker, leave them to the controlling process."""
    if not names:
        return
    ledger = os.environ.get(STARTED_LEDGER_ENV)
    if _is_xdist_worker(config) and ledger:
        with (Path(ledger) / kind).open("a") as out:
            out.write("".join(f"{name}\n" for name in names))
        return
    _stop(kind, settings, names)


@dataclass(frozen=True)
class Names:
    """Topic names, consumer group and Redis key prefix that belong to one test only."""

    run_id: str
    index: int
    test: str
    events_topic: str
    dead_letter_topic: str
    group_id: str
    redis_prefix: str

    def settings(self, stack: StackSettings) -> StackSettings:
        """`stack` with this test's topics and Redis prefix."""
        return stack.model_copy(
            update={
                "events_topic": self.events_topic,
                "dead_letter_topic": self.dead_letter_topic,
                "redis_prefix": self.redis_prefix,
            }
        )


@pytest.fixture(scope="session")
def local_stack_settings() -> LocalStackSettings:
    """Where the local services are (DOSSIER_* variables apply)."""
    return LocalStackSettings()


@pytest.fixture(scope="session")
def stack(
    local_stack_settings: LocalStackSettings, pytestconfig: pytest.Config
) -> Iterator[StackSettings]:
    """Kafka and Redis running; a StackSettings pointed at them.

    Starts what is not running yet and stops, at the end of the session, only what it
    started. A service that cannot start fails the tests that need it (never a skip).
    """
    started: list[localstack.ServiceName] = []
    error: localstack.LocalStackError | None = None
    try:
        for name in localstack.SERVICES:
            (result,) = localstack.up(local_stack_settings, [name])
            if result.started:
                started.append(name)
    except localstack.LocalStackError as exc:
        error = exc
    if error is not None:
        if started:
            localstack.down(local_stack_settings, started)
        pytest.fail(f"the local services did not start:\n{error}", pytrace=False)
    yield localstack.stack_settings(local_stack_settings)
    _stop_at_the_end(pytestconfig, "plain", local_stack_settings, started)


@pytest.fixture(scope="session")
def secure_stack(
    local_stack_settings: LocalStackSettings, pytestconfig: pytest.Config
) -> Iterator[securestack.SecureStack]:
    """The secured Kafka and Redis running (`services up --secure`), with their principals.

    Like `stack`: starts what is not running yet, stops at the end of the session only
    what it started, and fails (never skips) the tests that need it when it cannot start.
    """
    started: list[localstack.ServiceName] = []
    running: securestack.SecureStack | None = None
    error: localstack.LocalStackError | None = None
    try:
        for name in localstack.SERVICES:
            running = securestack.secure_up(local_stack_settings, [name])
            if running.results[0].started:
                started.append(name)
    except localstack.LocalStackError as exc:
        error = exc
    if error is not None or running is None:
        if started:
            securestack.secure_down(local_stack_settings, started)
        pytest.fail(f"the secured local services did not start:\n{error}", pytrace=False)
    yield running
    _stop_at_the_end(pytestconfig, "secure", local_stack_settings, started)


@pytest.fixture(scope="session")
def cluster_stack(
    local_stack_settings: LocalStackSettings, pytestconfig: pytest.Config
) -> Iterator[StackSettings]:
    """The local three-broker cluster and its Redis running (`services up --brokers 3`).

    A StackSettings with the cluster's bootstrap list, its Redis, replication factor 3
    and min ISR 2. Like `stack`: starts what is not running yet, stops at the end of the
    session only what it started, and fails (never skips) when it cannot start.
    """
    running = {name for name, st in clusterstack.status(local_stack_settings) if st.running}
    try:
        clusterstack.up(local_stack_settings)
    except localstack.LocalStackError as exc:
        stray = {name for name, st in clusterstack.status(local_stack_settings) if st.pid}
        if stray - running:
            clusterstack.down(local_stack_settings, stray - running)
        pytest.fail(f"the local three-broker cluster did not start:\n{exc}", pytrace=False)
    yield clusterstack.stack_settings(local_stack_settings)
    # A broker a test killed and started again counts as started here only if the
    # session found it stopped.
    started = {name for name, _ in clusterstack.status(local_stack_settings)} - running
    _stop_at_the_end(pytestconfig, "cluster", local_stack_settings, started)


@pytest.fixture(scope="session")
def run_id() -> str:
    """Short id of this test run, part of every topic name and key prefix it uses."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def _name_counter() -> Iterator[int]:
    return itertools.count(1)


@pytest.fixture
def names(run_id: str, _name_counter: Iterator[int], request: pytest.FixtureRequest) -> Names:
    """Unique names for this test: t.<run>.<n>.dossier.events, prefix t:<run>:<n>:ds:v1."""
    index = next(_name_counter)
    base = f"t.{run_id}.{index}"
    return Names(
        run_id=run_id,
        index=index,
        test=re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80],
        events_topic=f"{base}.dossier.events",
        dead_letter_topic=f"{base}.dossier.dlq",
        group_id=f"{base}.group",
        redis_prefix=f"t:{run_id}:{index}:ds:v1",
    )


@pytest.fixture
def make_topics(stack: StackSettings) -> Iterator[Callable[..., Names]]:
    """`make_topics(names, partitions=4)` creates the test's topics; they go at teardown."""
    created: list[str] = []

    def make(names: Names, partitions: int = 4) -> Names:
        topics = {names.events_topic: partitions, names.dead_letter_topic: partitions}
        kafka_admin.ensure_topics(stack.kafka_bootstrap, topics)
        created.extend(topics)
        return names

    yield make
    if created:
        kafka_admin.delete_topics(stack.kafka_bootstrap, created)


@pytest.fixture
def redis_client(stack: StackSettings, names: Names) -> Iterator[redis.Redis]:
    """Client (str responses) of the stack's Redis; keys under names.redis_prefix go at teardown."""
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        yield client
        keys = list(client.scan_iter(match=f"{names.redis_prefix}*", count=500))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()
