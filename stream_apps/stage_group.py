"""A worker's dossier stage in several processes, one per core (`DOSSIER_STAGE_PROCESSES`).

The dossier stage is CPU-bound and Python runs it on one core. With N stage processes a
worker runs N members of its stage's consumer group: the first in the process
`dossier-stream worker` starts, the others in children of it (`stream_apps.stage_main`),
each owning its share of the input partitions, with its own stores, changelog
partitions and rounds of partials, as separate workers would (docs/worker.md,
"Processes"). What makes them one worker:
- one figures process merges all their rounds; when it says it owns its partials
  partitions, every stage process is told, and publishes every partial again;
- one `/health` and one `/metrics` say what all of them do (`StageGroup`);
- the first process restarts a stage process that exits, and they all die with it;
- at the start, the first process's stage restores nothing until the others have joined
  (`StageGroup.others_joining`), and in event time all share one clock (`share_clock`);
- they cut their rounds together, at one clock, when the first process says
  (`stream_apps.joint_rounds`).

This module holds both ends of the line: `StageProcess` and `StageGroup` in the first
process, `WorkerLink` in each child.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from mode import Service

from stream_apps.child_process import ChildProcess, ChildStatus, encode
from stream_apps.dossier_stage import DossierStage
from stream_apps.health import Health
from stream_apps.joint_rounds import (
    JointCut,
    JointRounds,
    StageCuts,
    Stopped,
    cut_message,
    cut_of,
)
from stream_apps.partials import sum_counts
from stream_apps.settings import WorkerSettings

log = logging.getLogger(__name__)

# A stage process reports this often: /health's sum, the position a benchmark holds Redis
# to, is at most this old (plus the socket) for the stage processes after the first.
REPORT_S = 0.1
JOIN_WAIT_S = 15.0  # how long the first stage waits, at most, for the others to start


@dataclass
class StageStatus(ChildStatus):
    """What a stage process last reported of its share of the partitions."""

    partitions: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    dossiers: dict[str, int] = field(default_factory=dict)
    lag: dict[int, int] = field(default_factory=dict)
    open_dossiers: int = 0
    clock: int = 0
    down: dict[str, Any] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    reported: bool = False  # since the process was (last) started

    def update(self, report: dict[str, Any]) -> None:
        self.reported = True
        self.ready = bool(report.get("ready"))
        self.partitions = [int(p) for p in report.get("partitions", [])]
        self.counts = {k: int(v) for k, v in report.get("counts", {}).items()}
        self.dossiers = {k: int(v) for k, v in report.get("dossiers", {}).items()}
        self.lag = {int(p): int(n) for p, n in report.get("lag", {}).items()}
        self.open_dossiers = int(report.get("open_dossiers", 0))
        self.clock = int(report.get("clock", 0))
        self.down = dict(report.get("down", {}))
        self.retries = {k: int(v) for k, v in report.get("retries", {}).items()}


def stage_report(stage: DossierStage) -> dict[str, Any]:
    """What a stage process tells the worker every `REPORT_S` seconds."""
    return {
        "ready": stage.ready.is_set(),
        "partitions": sorted(stage.stores),
        "counts": stage.counts(),
        "dossiers": stage.dossiers(),
        "lag": {str(p): n for p, n in stage.lag().items()},  # JSON keys are text
        "open_dossiers": stage.open_dossiers(),
        "clock": stage.clock(),
        "down": stage.health.report(),
        "retries": dict(stage.health.retries),
    }


class StageProcess(ChildProcess[StageStatus]):
    """One more dossier stage process (the `index`-th, from 2), restarted when it exits.

    `figures_ready` says whether the figures process owns its partials partitions now:
    a stage process that starts is told so at once (it applies no event before).
    `on_stopping` runs as the worker stops it: the worker's first process stops its own
    stage after the others, and would otherwise restore their partitions just to stop.
    """

    def __init__(
        self,
        settings: WorkerSettings,
        health: Health,
        index: int,
        figures_ready: Callable[[], bool],
        on_batches: Callable[[list[float]], None] | None = None,
        on_stopping: Callable[[], None] | None = None,
        command: list[str] | None = None,
        loglevel: str = "info",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            settings,
            health,
            StageStatus(),
            name=f"stage process {index}",
            component=f"stage process {index}",
            command=command or [sys.executable, "-m", "stream_apps.stage_main"],
            loglevel=loglevel,
            **kwargs,
        )
        self.figures_ready = figures_ready
        self.on_batches = on_batches
        self.on_stopping = on_stopping  # the first process's stage leaves, restoring nothing
        self.on_report: Callable[[], None] | None = None  # after each report (StageGroup)
        self.on_stopped: Stopped | None = None  # stopped for a joint round (JointRounds)
        self._floor_told = 0

    def stopping(self) -> None:
        if self.on_stopping is not None:
            self.on_stopping()

    def child_started(self) -> None:
        self._floor_told = 0
        self.status.reported = False
        if self.figures_ready():
            self.figures_owned()

    def figures_owned(self) -> None:
        """Tell the stage process the figures process owns its partials partitions."""
        self.tell({"figures_owned": True})

    def clock_floor(self, t: int) -> None:
        """Tell the stage process the latest event time of the worker's partitions (once
        for each new one: a stage process started again is told again)."""
        if t > self._floor_told:
            self.tell({"clock_floor": t})
            self._floor_told = t

    # -- a member of the joint rounds (stream_apps.joint_rounds) ------------------------
    def pid(self) -> int | None:
        return self.status.pid

    def alive(self) -> bool:
        return self.connected()

    def can_cut(self) -> bool:
        return self.status.ready and self.status.reported

    def ask_cut(self, number: int) -> None:
        self.tell({"cut": number})

    def tell_cut(self, number: int, cut: JointCut | None) -> None:
        self.tell(cut_message(number, cut))

    def receive(self, message: dict[str, Any]) -> None:
        stopped = message.get("stopped")
        if stopped is not None:
            if self.on_stopped is not None:
                self.on_stopped(self, int(stopped), int(message["clock"]), float(message["cost"]))
            return
        report = message.get("status")
        if report is None:
            return
        was_ready = self.status.ready
        self.status.update(report)
        if self.on_report is not None:
            self.on_report()
        if self.status.ready and not was_ready:
            self.health.ok(self.component)
        batches = report.get("batches")
        if batches and self.on_batches is not None:
            self.on_batches([float(x) for x in batches])


class StageGroup:
    """The worker's dossier stage as /health and /metrics see it: the stage of this
    process and what the other stage processes last reported, summed."""

    def __init__(self, local: DossierStage, others: Sequence[StageProcess] = ()) -> None:
        self.local = local
        self.others = list(others)
        self.rounds: JointRounds | None = None  # with others: they cut rounds together
        if local.settings.clock == "event":
            for other in self.others:
                other.on_report = self.share_clock
        if self.others:
            local.before_first_restore = self.others_joining

    async def others_joining(self, wait_s: float = JOIN_WAIT_S) -> bool:
        """At the first assignment of the first process's stage, when it was given every
        partition: whether the other stage processes are joining the consumer group, so
        that a rebalance will follow.

        The first process's stage joins the group first and is given every partition; the
        others join a moment later (they start as processes of their own). Restoring every
        partition now would only be undone by that rebalance (and the process would keep
        the memory). So wait up to `wait_s` for every other stage process to report (it
        has subscribed by then): True when one of them owns nothing yet.
        """
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            statuses = self._reports()
            if all(s.reported for s in statuses):
                return any(not s.partitions for s in statuses)
            await asyncio.sleep(0.05)
        return False

    def share_clock(self) -> None:
        """In event time, give every stage process the latest event time of them all.

        One stage process cuts its rounds at the latest event time of its partitions, and
        the figures of a partition behind it are as of that clock too. Several share it:
        without, each one's figures would be as of its own partitions' latest event, and
        the worker's final figures as of several clocks.
        """
        floor = max([int(self.local.event_clock()), *(s.clock for s in self._reports())])
        self.local.clock_floor = max(self.local.clock_floor, floor)
        for other in self.others:
            other.clock_floor(floor)

    def _reports(self) -> list[StageStatus]:
        return [p.status for p in self.others]

    def ready(self) -> bool:
        return self.local.ready.is_set() and all(s.ready for s in self._reports())

    def partitions(self) -> list[int]:
        return sorted({*self.local.stores, *(p for s in self._reports() for p in s.partitions)})

    def counts(self) -> dict[str, int]:
        return sum_counts([self.local.counts(), *(s.counts for s in self._reports())])

    def dossiers(self) -> dict[str, int]:
        return sum_counts([self.local.dossiers(), *(s.dossiers for s in self._reports())])

    def lag(self) -> dict[int, int]:
        out = self.local.lag()
        for s in self._reports():
            out.update(s.lag)
        return out

    def open_dossiers(self) -> int:
        return self.local.open_dossiers() + sum(s.open_dossiers for s in self._reports())

    def clock(self) -> int:
        return max([self.local.clock(), *(s.clock for s in self._reports())])

    def down(self) -> dict[str, Any]:
        """Outages any stage process sees, by service (the first process's when several)."""
        out: dict[str, Any] = {}
        for s in self._reports():
            out.update(s.down)
        out.update(self.local.health.report())  # the children's own outages too
        return out

    def retries(self) -> dict[str, int]:
        return sum_counts([self.local.health.retries, *(s.retries for s in self._reports())])

    def processes(self) -> list[dict[str, Any]]:
        """Each stage process: its pid, partitions, readiness and restarts."""
        first = {
            "pid": os.getpid(),
            "partitions": sorted(self.local.stores),
            "ready": self.local.ready.is_set(),
            "restarts": 0,
        }
        return [first] + [
            {
                "pid": p.status.pid,
                "partitions": p.status.partitions,
                "ready": p.status.ready,
                "restarts": p.status.restarts,
            }
            for p in self.others
        ]


class WorkerLink(Service):
    """A stage process's side of the line: told when the figures process owns its
    partials partitions and when to cut a joint round, and reporting to the worker every
    `REPORT_S` seconds."""

    def __init__(self, stage: DossierStage, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.batches: list[float] = []  # batch durations not reported yet
        self._sock = sock
        self.cuts = StageCuts(stage, self._say_stopped)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def on_start(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
        self.stage.on_batch = self.batches.append

    async def on_stop(self) -> None:
        self.cuts.release()
        if self._writer is not None:
            self._writer.close()

    @Service.task
    async def _listen(self) -> None:
        assert self._reader is not None
        while not self.should_stop:
            line = await self._reader.readline()
            if not line:
                # The worker is stopping (it sends SIGTERM too) or gone: stop as SIGTERM
                # would, the batch in hand checkpointed (a second SIGTERM changes nothing).
                log.info("stage process: the worker closed its socket: stopping")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self.receive(orjson.loads(line))

    def receive(self, message: dict[str, Any]) -> None:
        """One message from the worker."""
        if message.get("figures_owned"):
            self.stage.figures_owned()
        floor = message.get("clock_floor")
        if floor is not None:
            self.stage.clock_floor = max(self.stage.clock_floor, int(floor))
        number = message.get("cut")
        if number is not None:
            self.cuts.ask(int(number))
        number = message.get("round")
        if number is not None:
            self.cuts.told(int(number), cut_of(message))

    def _say_stopped(self, number: int, clock: int, cost: float) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode({"stopped": number, "clock": clock, "cost": cost}))

    def report(self) -> bytes:
        """The next report to the worker: the stage now, and the batches since the last."""
        batches, self.batches = self.batches, []
        return encode({"status": {**stage_report(self.stage), "batches": batches}})

    @Service.timer(REPORT_S)
    async def _report(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(self.report())
