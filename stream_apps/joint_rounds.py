"""Rounds cut jointly by a worker's stage processes, at one clock.

With one stage process, a round of partials is cut between two slices of events, at the
stage's clock: every partition's figures as of one input position and one clock. With
several (`DOSSIER_STAGE_PROCESSES`), each process owns a share of the partitions; if
each cut its rounds on its own, a snapshot would hold one process's partitions at one
clock and another's at another. So the worker's first process coordinates the rounds
(`JointRounds`): every round is a group (`RoundGroup`), and for each one

1. it asks every stage process that is ready to stop at its next slice boundary
   (`cut`), within `CUT_WAIT_S`;
2. each stops and answers its clock (the latest event time of its partitions, or the
   wall clock) and what its last round cost (`stopped`), as soon as the slice in hand has
   stopped, while that slice is checkpointed; it applies nothing more before its cut;
3. the first process agrees the group's clock, the latest of those (`agreed_clock`),
   and tells each what to cut (`round`: the clock, whether with the time series, the
   group and its size);
4. each cuts its round at that clock, goes on applying events, and sends the round; the
   figures process applies the rounds of a group together (`PartialMerger`).

A group's size counts every stage process that is running, so a group is whole only
when every one of them cut its round. One that is not ready yet (starting, restoring its
partitions) is not asked, and one that does not stop within `CUT_WAIT_S` (restoring a
partition after a rebalance, or waiting for the broker) is not asked again until it
answers, and is then told to skip (`round` with `skip`): meanwhile the groups stay
short, and Redis keeps the last whole one rather than mix clocks. A stopped stage
process told nothing within `DECISION_WAIT_S` goes on without a round.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from mode import Service

from stream_apps.partials import RoundGroup

if TYPE_CHECKING:
    from stream_apps.dossier_stage import DossierStage
    from stream_apps.stage_group import StageProcess

log = logging.getLogger(__name__)

CUT_WAIT_S = 1.0  # how long a group waits for a stage process to stop
DECISION_WAIT_S = 5.0  # how long a stopped stage process waits to be told what to cut
# Rounds (of a group: its costliest round) start at least this many times their cost apart.
ROUND_SPACING = 3.0


class JointCut(NamedTuple):
    """What a stage process cuts: its round of `group`, at `clock`."""

    clock: int
    series: bool
    group: RoundGroup


# A stopped stage's answer to the group's question: (its clock, its last round's cost in s).
Agree = Callable[[int, float], Awaitable[JointCut | None]]


def agreed_clock(clocks: Sequence[int]) -> int:
    """The group's clock: the latest of the stopped stage processes' clocks.

    A round's figures are as of a clock no earlier than any event they cover; each stage
    process's clock is the latest event time of its own partitions (or the wall clock
    when it stopped), so the latest of them is the earliest clock every one can cut at.
    """
    return max(clocks)


def cut_message(number: int, cut: JointCut | None) -> dict[str, Any]:
    """The first process's answer to a stopped stage process: what to cut, or skip."""
    if cut is None:
        return {"round": number, "skip": True}
    g = cut.group
    return {
        "round": number,
        "clock": cut.clock,
        "series": cut.series,
        "group": [g.coordinator, g.number, g.size],
    }


def cut_of(message: dict[str, Any]) -> JointCut | None:
    """`cut_message` read back (None: skip)."""
    if message.get("skip"):
        return None
    coordinator, number, size = message["group"]
    return JointCut(
        int(message["clock"]),
        bool(message["series"]),
        RoundGroup(str(coordinator), int(number), int(size)),
    )


class Member(Protocol):
    """A stage process as the coordinator sees it."""

    name: str

    def pid(self) -> int | None: ...
    def alive(self) -> bool: ...
    def can_cut(self) -> bool: ...
    def ask_cut(self, number: int) -> None: ...
    def tell_cut(self, number: int, cut: JointCut | None) -> None: ...


# How a member says it stopped: (member, group number, its clock, its last round's cost).
Stopped = Callable[[Member, int, int, float], None]


class StageCuts:
    """A stage process's side of the joint rounds: for each group it is asked to cut, it
    stops its stage (`DossierStage.joint_round`), says so (`say_stopped`: group number,
    clock, last round's cost), and cuts what it is told (`told`), or nothing when told
    nothing within `DECISION_WAIT_S`."""

    def __init__(self, stage: DossierStage, say_stopped: Callable[[int, int, float], None]):
        self.stage = stage
        self.say_stopped = say_stopped
        self._cuts: dict[int, asyncio.Future[JointCut | None]] = {}
        self._tasks: set[asyncio.Task[int]] = set()

    def ask(self, number: int) -> None:
        future: asyncio.Future[JointCut | None] = asyncio.get_running_loop().create_future()
        self._cuts[number] = future

        async def agree(clock: int, cost: float) -> JointCut | None:
            self.say_stopped(number, clock, cost)
            try:
                return await asyncio.wait_for(future, DECISION_WAIT_S)
            except TimeoutError:
                log.warning("joint round %d: not told what to cut: going on without", number)
                self._cuts.pop(number, None)
                return None

        task = asyncio.create_task(self.stage.joint_round(agree))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def told(self, number: int, cut: JointCut | None) -> None:
        future = self._cuts.pop(number, None)
        if future is not None and not future.done():
            future.set_result(cut)

    def release(self) -> None:
        """Stopping: a stage waiting to be told goes on without a round."""
        for number in list(self._cuts):
            self.told(number, None)


class LocalMember:
    """The first process's own dossier stage, a member like the others, without a socket."""

    name = "the first stage process"

    def __init__(self, stage: DossierStage, stopped: Stopped) -> None:
        self.stage = stage
        self.cuts = StageCuts(stage, lambda number, clock, cost: stopped(self, number, clock, cost))

    def pid(self) -> int | None:
        return os.getpid()

    def alive(self) -> bool:
        return True

    def can_cut(self) -> bool:
        return self.stage.ready.is_set()

    def ask_cut(self, number: int) -> None:
        self.cuts.ask(number)

    def tell_cut(self, number: int, cut: JointCut | None) -> None:
        self.cuts.told(number, cut)


class JointRounds(Service):
    """The first process's coordinator of the stage processes' rounds (see the module)."""

    def __init__(self, local: DossierStage, others: Sequence[StageProcess], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = local.settings
        self.local = local
        self.first = LocalMember(local, self.stopped)
        self.members: list[Member] = [self.first, *others]
        for other in others:
            other.on_stopped = self.stopped
        self.coordinator = uuid.uuid4().hex[:12]
        self.number = 0  # the last group asked for
        self.groups = 0  # groups cut
        self.left_out = 0  # stage processes left out of a group, summed over the groups
        self._asked: dict[Member, asyncio.Future[tuple[int, float]]] = {}
        self._late: set[tuple[Member, int | None]] = set()  # (member, pid) not answered yet
        self._last = 0.0
        self._last_series = 0.0
        self._cost = 0.0

    def stopped(self, member: Member, number: int, clock: int, cost: float) -> None:
        """A stage process stopped for group `number`: its clock and last round's cost."""
        future = self._asked.get(member)
        if number == self.number and future is not None and not future.done():
            future.set_result((clock, cost))
            return
        # Too late for its group: it goes on without a round, and joins the next ones.
        self._late.discard((member, member.pid()))
        member.tell_cut(number, None)

    @Service.task
    async def _rounds(self) -> None:
        await self.local.figures_ready.wait()
        while not self.should_stop:
            wait = max(self.settings.flush_interval_s, ROUND_SPACING * self._cost)
            left = self._last + wait - time.monotonic()
            if left > 0:
                await self.sleep(left)
                continue
            self._last = time.monotonic()
            try:
                await self.cut_group()
            except Exception:  # a bug must not stop the rounds for good: log it, go on
                log.exception("cutting a joint round failed")

    async def cut_group(self, wait_s: float = CUT_WAIT_S) -> int:
        """Ask, agree and tell one group; return how many stage processes cut it.

        The group's size counts every stage process that is running, asked or not: one
        not ready yet (starting, restoring) or late (still to stop for an earlier group)
        leaves the group short, and the figures process applies no round of it until a
        later group is whole. So a snapshot never holds one stage process's partitions at
        a newer clock than another's; while one lags, Redis waits for it.
        """
        alive = [m for m in self.members if m.alive()]
        asking = [m for m in alive if m.can_cut() and (m, m.pid()) not in self._late]
        if not asking:
            return 0
        self.number += 1
        number = self.number
        loop = asyncio.get_running_loop()
        self._asked = {m: loop.create_future() for m in asking}
        for m in asking:
            m.ask_cut(number)
        await asyncio.wait(list(self._asked.values()), timeout=wait_s)
        asked, self._asked = self._asked, {}
        answered = {m: f.result() for m, f in asked.items() if f.done() and not f.cancelled()}
        for m in asked:
            if m not in answered:
                self._late.add((m, m.pid()))
                self.left_out += 1
                log.warning(
                    "joint round %d: %s did not stop within %.1f s: Redis waits for it",
                    number,
                    m.name,
                    wait_s,
                )
        if not answered:
            return 0
        now = time.monotonic()
        series = now - self._last_series >= self.settings.series_interval_s
        if series:
            self._last_series = now
        cut = JointCut(
            agreed_clock([clock for clock, _ in answered.values()]),
            series,
            RoundGroup(self.coordinator, number, len(alive)),
        )
        self._cost = max(cost for _, cost in answered.values())
        for m in answered:
            m.tell_cut(number, cut)
        self.groups += 1
        return len(answered)

    async def on_stop(self) -> None:
        """Nobody waits for a group any more: every stopped stage goes on without one."""
        for future in self._asked.values():
            future.cancel()
        self.first.cuts.release()
