"""The dossier stage restores a partition in steps: other coroutines run in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition

from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from stream_apps import dossier_stage
from stream_apps.book import new_partition_book
from stream_apps.dossier_stage import DossierStage
from stream_apps.settings import WorkerSettings
from stream_apps.store import PartitionStore
from tests.factories import T0, lifecycle

CALENDAR = WorkingCalendar()
NOW = (T0 + timedelta(days=400)).timestamp()


def changelog(dossiers: int) -> list[tuple[bytes, bytes | None]]:
    """The changelog a store that applied `dossiers` dossiers would have written."""
    store = PartitionStore(
        0, Lifecycle(calendar_resume(CALENDAR)), AgencyRegistry.default(), clock_mode="event"
    )
    book = new_partition_book(CALENDAR, second_supplement_late=True)
    offset = 0
    for i in range(dossiers):
        for ev in lifecycle(f"R-{i}", steps=("accepted", "processing")):
            store.process(
                offset, ev.dossier_id.encode(), ev.model_dump_json().encode(), book, now=NOW
            )
            offset += 1
    return store.take_changes()


def test_a_restore_gives_the_event_loop_back_between_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    records = changelog(120)
    step = 10
    monkeypatch.setattr(dossier_stage, "RESTORE_STEP", step)

    async def batches(*_: Any, max_records: int, **__: Any) -> AsyncIterator[Any]:
        for i in range(0, len(records), max_records):
            yield records[i : i + max_records], i + max_records, len(records)

    monkeypatch.setattr(dossier_stage, "partition_batches", batches)
    settings = WorkerSettings(clock="event", alerts=False)
    lifecycle_ = Lifecycle(calendar_resume(CALENDAR))
    stage = DossierStage(
        settings,
        lifecycle_,
        lambda _p: new_partition_book(CALENDAR, second_supplement_late=True),
        registry=AgencyRegistry.default(),
    )
    store = PartitionStore(0, lifecycle_, AgencyRegistry.default(), clock_mode="event")
    figures = new_partition_book(CALENDAR, second_supplement_late=True)

    async def scenario() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        ticks = 0
        await stage._restore(0, store, figures)
        done.set()
        await task
        return ticks

    ticks = asyncio.run(scenario())
    runs = -(-len(records) // step) + -(-120 // step)  # changelog runs, then rebuild steps
    assert ticks >= runs  # another coroutine ran after every step
    assert len(store.records) == 120
    assert figures.snapshot("city", int(NOW)).open_now == 120


def restoring_stage(settings: WorkerSettings) -> DossierStage:
    return DossierStage(
        settings,
        Lifecycle(calendar_resume(CALENDAR)),
        lambda _p: new_partition_book(CALENDAR, second_supplement_late=True),
        registry=AgencyRegistry.default(),
    )


def others_joining_on(stage: DossierStage) -> list[int]:
    """Give `stage` a first-restore hook that says the others are joining; the list
    grows by one each time it is asked."""
    asked: list[int] = []

    async def others_joining() -> bool:
        asked.append(1)
        return True

    stage.before_first_restore = others_joining
    return asked


@pytest.mark.parametrize("how", ["stopping", "leaving"])
def test_a_stopping_worker_gives_up_a_restore_and_owns_nothing(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # A worker left alone in its group while it stops is assigned the others' partitions:
    # restoring them all would hold its exit (seen: 30 s and more on a quarter's history).
    # "leaving": the worker's first process, whose other stage processes stop before it.
    records = changelog(60)
    monkeypatch.setattr(dossier_stage, "RESTORE_STEP", 10)
    read: list[int] = []

    async def batches(*_: Any, max_records: int, **__: Any) -> AsyncIterator[Any]:
        for i in range(0, len(records), max_records):
            read.append(i)
            yield records[i : i + max_records], i + max_records, len(records)

    monkeypatch.setattr(dossier_stage, "partition_batches", batches)
    settings = WorkerSettings(clock="event", alerts=False)
    stage = restoring_stage(settings)
    tps = {TopicPartition(settings.events_topic, p) for p in (0, 1)}

    async def scenario() -> None:
        await stage.assign(tps)  # not stopping: both restored
        assert sorted(stage.stores) == [0, 1]
        await stage.revoke(tps)
        assert stage.stores == {}
        read.clear()
        if how == "stopping":
            stage._stopped.set()  # what `Service.stop` sets first
        else:
            stage.leave()  # what stopping another stage process of the worker does
        await stage.assign(tps)

    asyncio.run(scenario())
    assert stage.stores == {}  # nothing half-restored is taken on
    assert read == [0]  # it gave up after the first step


def test_a_first_assignment_given_back_for_the_other_stage_processes_restores_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = changelog(20)
    read: list[int] = []

    async def batches(*_: Any, max_records: int, **__: Any) -> AsyncIterator[Any]:
        read.append(0)
        yield records, len(records), len(records)

    monkeypatch.setattr(dossier_stage, "partition_batches", batches)
    settings = WorkerSettings(clock="event", alerts=False)
    stage = restoring_stage(settings)
    asked = others_joining_on(stage)
    tps = {TopicPartition(settings.events_topic, p) for p in (0, 1, 2, 3)}
    mine = {TopicPartition(settings.events_topic, p) for p in (0, 2)}

    async def scenario() -> None:
        await stage.assign(tps)  # the first assignment: given back, nothing restored
        assert stage.stores == {} and read == [] and not stage.ready.is_set()
        await stage.revoke(tps)
        await stage.assign(mine)  # after the rebalance: its share, restored
        assert sorted(stage.stores) == [0, 2] and stage.ready.is_set()

    asyncio.run(scenario())
    assert asked == [1]  # asked once
    assert len(read) == 2


def test_a_first_assignment_of_a_share_is_restored_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The other stage processes joined the same generation: no rebalance is coming, so
    # giving the share back would leave it unowned.
    records = changelog(5)

    async def batches(*_: Any, max_records: int, **__: Any) -> AsyncIterator[Any]:
        yield records, len(records), len(records)

    monkeypatch.setattr(dossier_stage, "partition_batches", batches)
    settings = WorkerSettings(clock="event", alerts=False, partitions=4)
    stage = restoring_stage(settings)
    asked = others_joining_on(stage)
    share = {TopicPartition(settings.events_topic, p) for p in (1, 3)}
    asyncio.run(stage.assign(share))
    assert sorted(stage.stores) == [1, 3] and stage.ready.is_set()
    assert asked == [] and stage.before_first_restore is None
