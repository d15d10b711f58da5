"""A worker's dossier stage in several processes: what each reports, what /health sums,
and who is told that the figures process owns its partials partitions."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import orjson

from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from stream_apps.book import new_partition_book
from stream_apps.dossier_stage import DossierStage
from stream_apps.figures_link import FiguresStatus
from stream_apps.health import Health
from stream_apps.joint_rounds import JointRounds
from stream_apps.metrics import WorkerMetrics
from stream_apps.settings import WorkerSettings
from stream_apps.stage_group import StageGroup, StageProcess, WorkerLink, stage_report
from stream_apps.web import health_report

CALENDAR = WorkingCalendar()


def stage(clock: str = "live") -> DossierStage:
    return DossierStage(
        WorkerSettings(alerts=False, clock=clock),
        Lifecycle(calendar_resume(CALENDAR)),
        lambda _p: new_partition_book(CALENDAR, second_supplement_late=True),
    )


def child(
    index: int, health: Health, figures_ready: bool = False
) -> tuple[StageProcess, list[float]]:
    batches: list[float] = []
    process = StageProcess(
        WorkerSettings(), health, index, lambda: figures_ready, on_batches=batches.extend
    )
    return process, batches


# What the second stage process reports in the tests of /health and /metrics.
SECOND_PROCESS: dict[str, Any] = {
    "ready": True,
    "partitions": [1, 3],
    "counts": {"events_in": 700, "applied": 690, "dead_lettered": 2},
    "dossiers": {"held": 40, "retired": 5},
    "lag": {1: 10, 3: 0},
    "open_dossiers": 30,
}


def report(**fields: Any) -> dict[str, Any]:
    """A report as it crosses the socket (JSON: the lag's partition keys become text)."""
    if "lag" in fields:
        fields["lag"] = {str(p): n for p, n in fields["lag"].items()}
    doc: dict[str, Any] = orjson.loads(orjson.dumps({"status": fields}))
    return doc


def test_a_stage_processs_report_survives_the_socket_as_it_was_sent() -> None:
    s = stage()
    s.ready.set()
    s.health.failed("kafka", TimeoutError("no broker"))
    process, _ = child(2, Health())
    process.receive(orjson.loads(WorkerLink(s, socket.socket()).report()))
    status = process.status
    assert status.ready and status.partitions == [] and status.counts == s.counts()
    assert status.dossiers == {"held": 0, "retired": 0}
    assert list(status.down) == ["kafka"] and status.retries == {"kafka": 1}


def test_health_sums_every_stage_process_and_is_ok_only_when_all_are_ready() -> None:
    s = stage()
    s.ready.set()
    health = s.health
    second, batches = child(2, health)
    third, _ = child(3, health)
    group = StageGroup(s, [second, third])
    figures = FiguresStatus(pid=99, ready=True)
    second.receive(
        report(
            **SECOND_PROCESS,
            clock=1_751_400_000,
            batches=[0.25, 0.5],
        )
    )
    assert batches == [0.25, 0.5]
    assert health_report(group, figures)["status"] == "starting"  # the third has not said
    third.receive(
        report(
            ready=True,
            partitions=[2],
            counts={"events_in": 300, "applied": 300},
            dossiers={"held": 10, "retired": 0},
            lag={2: 7},
            open_dossiers=4,
            clock=1_751_300_000,
            down={"kafka": {"since": 1.0, "seconds": 3.0, "error": "refused"}},
            retries={"kafka": 4},
        )
    )
    body = health_report(group, figures)
    assert body["status"] == "degraded" and list(body["down"]) == ["kafka"]
    assert body["partitions"] == [1, 2, 3]
    assert body["counts"]["events_in"] == 700 + 300 + s.counts().get("events_in", 0)
    assert body["counts"]["dead_lettered"] == 2 + s.counts().get("dead_lettered", 0)
    assert body["dossiers"] == {"held": 50, "retired": 5}
    assert body["clock"] == max(1_751_400_000, s.clock())
    assert group.lag() == {1: 10, 3: 0, 2: 7}
    assert group.open_dossiers() == 34
    assert group.retries() == {"kafka": 4}
    pids = [p["partitions"] for p in body["stage_processes"]]
    assert pids == [[], [1, 3], [2]]


def test_a_stage_process_that_exits_is_down_until_it_reports_ready() -> None:
    health = Health()
    process, _ = child(2, health)
    health.failed(process.component, RuntimeError("stage process 2 exited with -9"))
    process.receive(report(ready=False, partitions=[]))
    assert "stage process 2" in health.down
    process.receive(report(ready=True, partitions=[0]))
    assert "stage process 2" not in health.down


def test_the_worker_link_tells_its_stage_the_figures_process_owns_its_partitions() -> None:
    s = stage()
    s._full_due = False
    link = WorkerLink(s, socket.socket())
    link.receive({"status": "anything else"})
    assert not s.figures_ready.is_set()
    link.receive({"figures_owned": True})
    assert s.figures_ready.is_set() and s._full_due


def test_batches_are_reported_once() -> None:
    link = WorkerLink(stage(), socket.socket())
    link.batches.extend([0.1, 0.2])
    assert orjson.loads(link.report())["status"]["batches"] == [0.1, 0.2]
    assert orjson.loads(link.report())["status"]["batches"] == []


def test_stage_report_names_what_the_group_reads() -> None:
    keys = set(stage_report(stage()))
    assert keys == {
        "ready",
        "partitions",
        "counts",
        "dossiers",
        "lag",
        "open_dossiers",
        "clock",
        "down",
        "retries",
    }


# A stand-in for a stage process: it reads the settings line, waits up to a second for
# one more line, and reports whether that line said the figures process owns its
# partitions (as `applied`: 1 or 0), then exits.
LISTENER = """
import os, select, socket
sock = socket.socket(fileno=int(os.environ["DOSSIER_CHILD_FD"]))
data = b""
while b"\\n" not in data:
    data += sock.recv(65536)
assert data.startswith(b'{"settings":'), data[:40]
rest = data.split(b"\\n", 1)[1]
if not rest and select.select([sock], [], [], 1.0)[0]:
    rest = sock.recv(65536)
told = int(b"figures_owned" in rest)
sock.sendall(b'{"status": {"ready": true, "partitions": [3], "counts": {"applied": %d}}}\\n' % told)
"""


def run_listener(figures_ready: bool) -> tuple[int | None, StageProcess]:
    async def main() -> tuple[int | None, StageProcess]:
        process, _ = child(2, Health(), figures_ready=figures_ready)
        process.command = [sys.executable, "-c", LISTENER]
        return await asyncio.wait_for(process._run_once(), 30), process

    return asyncio.run(main())


def test_a_stage_process_that_starts_while_the_figures_process_is_ready_is_told_so() -> None:
    code, process = run_listener(figures_ready=True)
    assert code == 0 and process.status.partitions == [3]
    assert process.status.counts == {"applied": 1}


def test_a_stage_process_is_not_told_of_figures_that_are_not_ready() -> None:
    code, process = run_listener(figures_ready=False)
    assert code == 0 and process.status.counts == {"applied": 0}


def metric(text: str, name: str) -> float:
    """The value of one sample line of the Prometheus text, e.g. `name{label="x"}`."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


def test_metrics_sum_the_stage_processes_and_say_when_one_is_down() -> None:
    s = stage()
    s.ready.set()
    second, _ = child(2, s.health)
    group = StageGroup(s, [second])
    metrics = WorkerMetrics(group, FiguresStatus(pid=99, ready=True))
    second.on_batches = metrics.observe_batches
    second.receive(
        report(
            **SECOND_PROCESS,
            batches=[0.25, 0.5],
            retries={"kafka": 4},
        )
    )
    text = metrics.render()
    assert metric(text, "dossier_events_in_total") == 700 + s.counts().get("events_in", 0)
    assert metric(text, "dossier_held_dossiers") == 40
    assert metric(text, "dossier_open_dossiers") == 30
    assert metric(text, "dossier_assigned_partitions") == 2
    assert metric(text, 'dossier_consumer_lag{partition="1"}') == 10
    assert metric(text, "dossier_batch_seconds_count") == 2
    assert metric(text, 'dossier_retries_total{service="kafka"}') == 4
    assert metric(text, 'dossier_service_down{service="stages"}') == 0
    s.health.failed(second.component, RuntimeError("stage process 2 exited with -9"))
    text = metrics.render()
    assert metric(text, 'dossier_service_down{service="stages"}') == 1
    assert metric(text, 'dossier_retries_total{service="stages"}') == 1


def test_metrics_count_the_joint_rounds_and_the_waits_for_a_stage_process() -> None:
    s = stage()
    second, _ = child(2, s.health)
    group = StageGroup(s, [second])
    metrics = WorkerMetrics(group, FiguresStatus(pid=99, ready=True))
    assert "dossier_joint_rounds" not in metrics.render()  # no coordinator: one stage process
    group.rounds = JointRounds(s, [second])
    group.rounds.groups, group.rounds.left_out = 12, 3
    text = metrics.render()
    assert metric(text, "dossier_joint_rounds_total") == 12
    assert metric(text, "dossier_joint_round_waits_total") == 3


def test_in_event_time_every_stage_process_gets_the_latest_event_time_of_them_all() -> None:
    s = stage(clock="event")
    second, _ = child(2, s.health)
    told: list[dict[str, Any]] = []
    second.tell = told.append  # type: ignore[method-assign]
    group = StageGroup(s, [second])
    second.receive(report(ready=True, partitions=[1], clock=1_751_400_000))
    assert s.clock() == 1_751_400_000  # the first process's stage: no partition of its own
    assert told == [{"clock_floor": 1_751_400_000}]
    second.receive(report(ready=True, partitions=[1], clock=1_751_400_000))
    assert told == [{"clock_floor": 1_751_400_000}]  # told once
    second.child_started()  # started again: told again at its next report
    second.receive(report(ready=True, partitions=[1], clock=1_751_400_000))
    assert told[-1] == {"clock_floor": 1_751_400_000} and len(told) == 2
    assert group.clock() == 1_751_400_000


def test_a_live_worker_shares_no_clock() -> None:
    s = stage()  # live
    second, _ = child(2, s.health)
    told: list[dict[str, Any]] = []
    second.tell = told.append  # type: ignore[method-assign]
    StageGroup(s, [second])
    second.receive(report(ready=True, partitions=[1], clock=1_751_400_000))
    assert told == [] and s.clock_floor == 0


def test_a_stage_process_takes_the_clock_floor_and_never_lowers_it() -> None:
    s = stage(clock="event")
    link = WorkerLink(s, socket.socket())
    link.receive({"clock_floor": 1_751_400_000})
    assert s.clock() == 1_751_400_000
    link.receive({"clock_floor": 1_751_000_000})
    assert s.clock() == 1_751_400_000
    live = stage()
    WorkerLink(live, socket.socket()).receive({"clock_floor": 1_751_400_000})
    assert live.clock() > 1_751_400_000 + 86400 * 365  # the wall clock: 2026 and later


def test_the_first_stage_restores_nothing_while_the_others_join_with_no_share() -> None:
    s = stage()
    second, _ = child(2, s.health)
    third, _ = child(3, s.health)
    group = StageGroup(s, [second, third])
    assert s.before_first_restore == group.others_joining

    async def scenario() -> list[bool]:
        answers = [await group.others_joining(wait_s=0.2)]  # nobody reported: restore
        second.receive(report(ready=False, partitions=[]))

        async def third_reports_later() -> None:
            await asyncio.sleep(0.1)
            third.receive(report(ready=False, partitions=[]))

        later = asyncio.create_task(third_reports_later())
        answers.append(await group.others_joining(wait_s=5))  # waits for the third
        await later
        second.receive(report(ready=True, partitions=[1]))
        third.receive(report(ready=True, partitions=[2]))
        answers.append(await group.others_joining(wait_s=0.2))  # every one has a share
        second.child_started()  # started again: it has not reported since
        answers.append(await group.others_joining(wait_s=0.2))
        return answers

    assert asyncio.run(scenario()) == [False, True, False, False]


def test_one_stage_process_never_waits_for_others() -> None:
    s = stage()
    StageGroup(s, [])
    assert s.before_first_restore is None
