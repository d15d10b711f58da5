"""Rounds cut jointly by a worker's stage processes: one clock per group, the latest of
theirs; a group counts every running stage process, so one that does not stop in time
leaves it short (told to skip when it answers, and asked again after)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from stream_apps.book import new_partition_book
from stream_apps.dossier_stage import DossierStage
from stream_apps.joint_rounds import JointCut, JointRounds, cut_message, cut_of
from stream_apps.partials import RoundGroup
from stream_apps.settings import WorkerSettings
from stream_apps.stage_group import StageProcess

CALENDAR = WorkingCalendar()


def stage(processes: int = 2) -> DossierStage:
    return DossierStage(
        WorkerSettings(alerts=False, clock="event", stage_processes=processes),
        Lifecycle(calendar_resume(CALENDAR)),
        lambda _p: new_partition_book(CALENDAR, second_supplement_late=True),
    )


class Member:
    """A stage process that answers `clock` when asked, unless told to stay silent."""

    def __init__(self, name: str, clock: int, pid: int) -> None:
        self.name = name
        self.clock = clock
        self.process_id = pid
        self.silent = False
        self.running = True
        self.asked: list[int] = []
        self.told: list[tuple[int, JointCut | None]] = []
        self.on_stopped: Any = None

    def pid(self) -> int | None:
        return self.process_id

    def alive(self) -> bool:
        return self.running

    def can_cut(self) -> bool:
        return self.running

    def ask_cut(self, number: int) -> None:
        self.asked.append(number)
        if not self.silent:
            asyncio.get_running_loop().call_soon(self.answer, number)

    def answer(self, number: int) -> None:
        self.on_stopped(self, number, self.clock, 0.01)

    def tell_cut(self, number: int, cut: JointCut | None) -> None:
        self.told.append((number, cut))


def coordinator(*members: Member) -> tuple[JointRounds, list[Any]]:
    """A coordinator of the first process's own stage (ready, at clock 0, its rounds kept
    in the list returned: no broker here) and `members`."""
    first = stage(1 + len(members))
    first.ready.set()
    sent: list[Any] = []

    async def send(rnd: Any) -> int:
        sent.append(rnd)
        return 1

    first._send = send  # type: ignore[method-assign]
    return JointRounds(first, cast(list[StageProcess], list(members))), sent


def test_every_stage_process_cuts_the_group_at_the_latest_of_their_clocks() -> None:
    a, b = Member("a", 1_000, 11), Member("b", 4_000, 12)
    rounds, sent = coordinator(a, b)

    async def scenario() -> int:
        cut = await rounds.cut_group(wait_s=1.0)
        await asyncio.sleep(0.01)  # the first stage sends its round
        return cut

    assert asyncio.run(scenario()) == 3
    group = RoundGroup(rounds.coordinator, 1, 3)
    assert a.told == b.told == [(1, JointCut(4_000, True, group))]
    assert [(r.clock, r.group) for r in sent] == [(4_000, group)]


def test_a_stage_process_that_does_not_stop_is_left_out_then_told_to_skip() -> None:
    a, b = Member("a", 1_000, 11), Member("b", 4_000, 12)
    b.silent = True
    rounds, _ = coordinator(a, b)

    async def scenario() -> None:
        assert await rounds.cut_group(wait_s=0.05) == 2  # b late: the group stays short
        assert a.told[-1][1] == JointCut(1_000, True, RoundGroup(rounds.coordinator, 1, 3))
        assert b.told == []
        assert await rounds.cut_group(wait_s=0.05) == 2  # not asked again while late
        assert b.asked == [1]
        b.answer(1)  # stops at last, for group 1: told to go on without a round
        assert b.told == [(1, None)]
        b.silent = False
        assert await rounds.cut_group(wait_s=0.05) == 3  # asked again
        assert b.asked == [1, 3] and b.told[-1][1] is not None

    asyncio.run(scenario())
    assert rounds.left_out == 1 and rounds.groups == 3


def test_a_stage_process_that_is_not_running_does_not_count() -> None:
    a, b = Member("a", 1_000, 11), Member("b", 4_000, 12)
    b.running = False  # exited; not started again yet
    rounds, _ = coordinator(a, b)
    assert asyncio.run(rounds.cut_group(wait_s=0.05)) == 2
    assert a.told == [(1, JointCut(1_000, True, RoundGroup(rounds.coordinator, 1, 2)))]


def test_a_late_stage_process_started_again_is_asked_at_once() -> None:
    a, b = Member("a", 1_000, 11), Member("b", 4_000, 12)
    b.silent = True
    rounds, _ = coordinator(a, b)

    async def scenario() -> None:
        await rounds.cut_group(wait_s=0.05)
        b.process_id, b.silent = 13, False  # restarted: a new process
        assert await rounds.cut_group(wait_s=0.05) == 3

    asyncio.run(scenario())


def test_a_cut_crosses_the_socket_as_it_was_sent() -> None:
    cut = JointCut(1_751_328_000, False, RoundGroup("c0ffee", 7, 2))
    assert cut_of(cut_message(7, cut)) == cut
    assert cut_of(cut_message(7, None)) is None


def test_a_group_round_is_cut_even_when_no_partial_changed() -> None:
    s = stage()
    group = RoundGroup("c0ffee", 1, 2)
    assert s.partials(100, with_series=False) is None
    rnd = s.partials(100, with_series=False, group=group)
    assert rnd is not None and rnd.parts == [] and rnd.group == group and rnd.clock == 100


def test_a_stage_stops_cuts_at_the_agreed_clock_and_skips_when_told_nothing() -> None:
    s = stage()
    seen: list[tuple[int, float]] = []
    cut = JointCut(9_000, False, RoundGroup("c0ffee", 1, 2))
    sent: list[Any] = []

    async def send(rnd: Any) -> int:
        sent.append(rnd)
        return 0 if rnd is None else 1

    s._send = send  # type: ignore[method-assign]  # no broker here

    async def scenario() -> None:
        async def agree(clock: int, cost: float) -> JointCut | None:
            assert s.lock.locked()  # stopped: no event is applied meanwhile
            seen.append((clock, cost))
            return cut

        async def skip(clock: int, cost: float) -> JointCut | None:
            return None

        await s.joint_round(agree)
        await s.joint_round(skip)

    asyncio.run(scenario())
    assert seen == [(s.own_clock(), 0.0)]
    assert len(sent) == 1 and sent[0].clock == 9_000 and sent[0].group == cut.group
    assert s.clock() == 9_000  # never behind a clock its figures have seen
    assert not s.lock.locked() and not s._cut_wanted


def test_a_stage_in_a_slice_answers_once_the_slice_stopped_not_once_it_is_checkpointed() -> None:
    s = stage()
    seen: list[str] = []

    async def agree(clock: int, cost: float) -> JointCut | None:
        seen.append("answered" if s.lock.locked() else "answered after the slice")
        return None

    async def scenario() -> None:
        await s.lock.acquire()  # the stage's slice in hand
        task = asyncio.create_task(s.joint_round(agree))
        await asyncio.sleep(0)
        assert s._cut_wanted and s._say_stopped is not None  # _process stops at its next yield
        s._say_stopped()  # what `_run` does once `_process` has returned
        await asyncio.sleep(0.01)  # ... while it checkpoints the slice
        seen.append("checkpointed")
        s.lock.release()
        assert await task == 0
        assert s._say_stopped is None and not s._cut_wanted

    asyncio.run(scenario())
    assert seen == ["answered", "checkpointed"]
