"""The dossier stage: input partitions in batches, dossier states exact, changelog, commits.

This is the worker's hot path. It reads the events topic with a batching consumer
(Faust's per-message stream path costs more per event than the whole budget: see
BENCHMARKS.md), applies each message to its partition's `PartitionStore`, and per batch:
sends dead letters, writes the changed dossier records to the compacted changelog
partition that matches the input partition, waits for the broker's acknowledgement,
and only then commits the input offsets. After a crash the store is read back from the
changelog and the messages after the committed offset are processed again; the store
skips those it already holds, so the figures are exact.

No outage stops it: a send the broker does not acknowledge is retried with backoff
(the batch's offsets are committed only after it), a failing poll is retried, and
`health` says what is down. Sequence gaps that stay open are released here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from common.connections import aiokafka_options
from domain.figures import CITY
from domain.lifecycle import Lifecycle
from schemas.signing import Verifier
from stream_apps.alert_history import AlertHistory
from stream_apps.health import Backoff, Health
from stream_apps.heap import HeapKeeper
from stream_apps.joint_rounds import ROUND_SPACING, Agree, JointCut
from stream_apps.kafka_io import (
    Header,
    idempotent_producer,
    partition_batches,
    probe_cluster,
    send_records,
)
from stream_apps.partials import (
    COUNTS_KEY,
    FEED_PREFIX,
    OVERDUE_PREFIX,
    SAMPLES_PREFIX,
    SERIES_PREFIX,
    Round,
    RoundGroup,
    round_messages,
    series_buckets,
    sum_counts,
)
from stream_apps.retirement import Retirement
from stream_apps.settings import WorkerSettings
from stream_apps.store import DeadLetter, PartitionStore

log = logging.getLogger(__name__)


class PartitionFigures(Protocol):
    """The figures of one partition's dossiers (a `domain.figures.FigureBook`)."""

    def facts(self, state: Any) -> Any: ...
    def move(self, before: Any, after: Any) -> None: ...
    def dirty_scopes(self) -> set[str]: ...
    def clear_dirty(self) -> None: ...
    def scopes_changed_between(self, t0: int, t1: int) -> set[str]: ...
    def counts(self, scope: str, t: int) -> dict[str, int]: ...
    def scopes(self) -> list[str]: ...
    def series(self, scope: str, t: int) -> Any: ...
    def overdue_between(self, h0: int, h1: int) -> Any: ...
    def near_due_at(self, scopes: Any, t: int) -> Any: ...
    def received_in(self, scope: str, window: str, t: int) -> tuple[int, int]: ...
    def keep_hours_from(self, t: int) -> None: ...
    def begin_rebuild(self, *, now: int | None, keep_hours_from: int | None) -> None: ...
    def add(self, facts: Any) -> None: ...
    def add_retired(self, retired: Any) -> None: ...
    def end_rebuild(self) -> None: ...


FiguresFactory = Callable[[int], PartitionFigures]

YIELD_EVERY_S = 0.01  # the stage gives the event loop back this often within a slice
RESTORE_STEP = 5000  # changelog records read, or dossiers rebuilt, between yields
RESTORE_LOG_S = 5.0  # seconds between restore progress lines
DEAD_LETTER_MAX_BYTES = 256 * 1024  # larger dead letters keep their first bytes only
FEED_CAP = 1000  # most stuck (and flagged) dossiers listed per agency and partition


class DossierStage(Service):
    """Owns the input partitions assigned to this worker and their dossier stores."""

    def __init__(
        self,
        settings: WorkerSettings,
        lifecycle: Lifecycle,
        figures_factory: FiguresFactory,
        *,
        registry: object = None,
        target_scopes: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.lifecycle = lifecycle
        self.figures_factory = figures_factory
        self.registry = registry
        self.target_scopes = target_scopes  # agencies the online-target alert judges
        master = settings.signing_master_key
        self.verifier = Verifier(master.get_secret_value()) if master is not None else None
        self.stores: dict[int, PartitionStore] = {}
        self.figures: dict[int, PartitionFigures] = {}
        self.lock = asyncio.Lock()
        self.changelog_topic = settings.changelog_topic
        self.partials_topic = settings.partials_topic
        self._last_clock: dict[int, int] = {}
        self._published: dict[tuple[int, str], Any] = {}  # last partial body sent per key
        self._series_dirty: dict[int, set[str]] = {}
        self._full_due = False
        self._last_full = time.monotonic()
        self.group_id = f"{settings.app_id}-dossiers"
        self.batches = 0
        self.last_batch_s = 0.0
        self.positions: dict[int, int] = {}  # next input offset per owned partition
        self.committed: dict[int, int] = {}  # ... as the group last committed it
        self.on_batch: Callable[[float], None] | None = None
        self.ready = asyncio.Event()
        self.leaving = False  # the worker is stopping: see `leave`
        # In event time, the latest event time of the worker's other stage processes: the
        # figures of all its partitions are as of one clock, as in one stage process.
        self.clock_floor = 0
        # Asked once, at the first assignment: True to restore nothing yet (the worker's
        # other stage processes are joining: see `stream_apps.stage_group`).
        self.before_first_restore: Callable[[], Awaitable[bool]] | None = None
        # Set once the figures stage owns its partials partitions: events applied before
        # that would wait in the stage with no figure reaching Redis.
        self.figures_ready = asyncio.Event()
        self.health = Health()
        self._feed_published: dict[int, set[str]] = {}  # agencies with issues published
        self._samples_all_due = True  # a new stage sends every kept alert sample once
        self._instance = uuid.uuid4().hex[:12]  # tells this stage's rounds from a successor's
        self._rounds = 0
        self._last_release = 0.0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.heap = HeapKeeper()
        self._slice_s = settings.flush_interval_s  # longest the stage holds its lock
        self._last_round = 0.0  # monotonic time the last round was cut
        self._round_cost_s = 0.0  # ... and how long cutting it took
        self._last_series = 0.0  # ... and the last one with the time series
        # With several stage processes the worker's first process says when to cut a round
        # and at what clock (`joint_round`): the stage cuts none on its own.
        self.joint = settings.stage_processes > 1
        self._cut_wanted = False  # a joint round waits: stop at the next slice boundary
        # ... and says so as soon as the slice in hand has stopped (`joint_round`)
        self._say_stopped: Callable[[], None] | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        await self._start_producer()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.batch_max,
            # Live, events trickle in: without a minimum the broker answers each fetch at
            # once and every few messages become a poll with its own checkpoint. Up to
            # 50 ms for 64 KiB (about 160 events) keeps the polls few and big.
            fetch_min_bytes=64 * 1024,
            fetch_max_wait_ms=50,
            fetch_max_bytes=32 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=max(100, int(s.session_timeout_s * 1000 / 10)),
            **aiokafka_options(s),
        )
        await self._consumer.start()
        self._consumer.subscribe([s.events_topic], listener=_Listener(self))
        log.info(
            "dossier stage: consuming %s as group %s, changelog %s",
            s.events_topic,
            self.group_id,
            self.changelog_topic,
        )

    async def _start_producer(self) -> None:
        self._producer = idempotent_producer(
            self.settings,
            linger_ms=5,
            max_batch_size=1024 * 1024,
            max_request_size=4 * 1024 * 1024,
        )
        await self._producer.start()

    async def _renew_producer(self, exc: Exception) -> None:
        """Replace a producer whose idempotence state the broker no longer accepts.

        After a long broker outage the broker may refuse the producer's sequence numbers
        for good (OutOfOrderSequenceNumber); a new producer gets a new producer id. What
        it sends again is harmless (see `_deliver`).
        """
        if not isinstance(exc, OutOfOrderSequenceNumber) or self._producer is None:
            return
        log.warning("Kafka producer renewed after %r", exc)
        old, self._producer = self._producer, None
        with contextlib.suppress(Exception):
            await old.stop()
        await self._start_producer()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            async with self.lock:
                await self._checkpoint()
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self._consumer is not None
        backoff = Backoff(cap=self.settings.retry_max_s)
        await self.figures_ready.wait()
        log.info("dossier stage: the figures stage is ready; applying events")
        while not self.should_stop:
            try:
                batch = await self._consumer.getmany(
                    timeout_ms=200, max_records=self.settings.batch_max
                )
            except KafkaError as exc:
                self.health.failed("kafka", exc)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            await self._release_gaps()
            if not batch:
                # Idle after a backlog: retire what the last sweep put off until committed.
                if any(s.retire_due(self.committed.get(p, 0)) for p, s in self.stores.items()):
                    async with self.lock:
                        await self._checkpoint()
                continue
            started = time.perf_counter()
            left = {tp: records for tp, records in batch.items() if records}
            while left:
                # In slices of at most a flush interval, each checkpointed on its own, so
                # the partials timer (waiting for the lock) can cut a round between them:
                # Redis trails the stage by about a slice, however large the batch.
                async with self.lock:
                    done = await self._process(left, time.perf_counter() + self._slice_s)
                    if self._say_stopped is not None:
                        # A joint round waits for the lock: no event is applied before it,
                        # so its clock is known now, while the slice is checkpointed.
                        self._say_stopped()
                    await self._checkpoint(done)
                    # Under the lock: a round of partials is cut at exactly these positions.
                    for tp, offset in done.items():
                        if tp.partition in self.stores:
                            self.positions[tp.partition] = offset
                if not self.joint and self.round_due():
                    await self.publish_partials()
            self.heap.after_batch()
            self.batches += 1
            self.last_batch_s = time.perf_counter() - started
            if self.on_batch is not None:
                self.on_batch(self.last_batch_s)

    @Service.task
    async def _quiet_rounds(self) -> None:
        """Rounds while no events arrive, when only the clock moves figures (while events
        arrive, `_run` cuts them itself, between slices)."""
        await self.figures_ready.wait()
        while not self.should_stop and not self.joint:
            await self.sleep(self.settings.flush_interval_s)
            if self.round_due():
                try:
                    await self.publish_partials()
                except Exception:  # a bug must not stop the rounds for good: log it, go on
                    log.exception("publishing a round of partials failed")

    def leave(self) -> None:
        """The worker is stopping (its other stage processes first): a partition Kafka
        gives this stage from now is not restored, but left to its next owner."""
        self.leaving = True

    def figures_owned(self) -> None:
        """The figures stage owns its partials partitions (again): it has none of this
        stage's partials, so every one is published at the next round."""
        self.request_full_publish()
        self.figures_ready.set()

    @Service.timer(2.0)
    async def _probe_kafka(self) -> None:
        """Ask the cluster for its metadata: /health says `degraded` while no broker answers."""
        if self._producer is None:
            return
        try:
            topics = [self.settings.events_topic]
            await asyncio.wait_for(probe_cluster(self._producer, topics), timeout=5.0)
        except (KafkaError, TimeoutError, OSError) as exc:
            self.health.failed("kafka", exc)
        else:
            self.health.ok("kafka")

    async def _release_gaps(self) -> None:
        """Once a second: release the sequence gaps open longer than `gap_timeout_s`."""
        now = time.monotonic()
        if now - self._last_release < 1.0:
            return
        self._last_release = now
        if not any(store.stuck for store in self.stores.values()):
            return
        async with self.lock:
            # Live: the wall clock. Event time: each partition's own event clock, so a
            # backlog read in large batches (partitions at different event times) does
            # not age a gap whose missing event is simply next in its partition.
            clock = None if self.settings.clock == "event" else time.time()
            letters: list[tuple[bytes | None, bytes, list[Header]]] = []
            for partition, store in self.stores.items():
                for letter in store.release_gaps(
                    clock, self.settings.gap_timeout_s, self.figures[partition]
                ):
                    letters.append(self._letter(letter, partition))
            if letters:
                await self._deliver(self.settings.dead_letter_topic, 0, letters)
            await self._checkpoint()

    async def _deliver(
        self,
        topic: str,
        partition: int,
        records: list[tuple[bytes | None, bytes, list[Header]]]
        | list[tuple[bytes, bytes | None, tuple[()]]],
    ) -> None:
        """Send records to one partition and wait for the broker's acknowledgement.

        While the broker is unreachable this retries with backoff: the caller's input
        offsets are committed only after it returns, so nothing is lost, and a record
        sent twice is harmless (changelog records are absolute; a dead letter carries
        its source offset).
        """
        assert self._producer is not None
        backoff = Backoff(cap=self.settings.retry_max_s)
        while True:
            try:
                futures = await send_records(self._producer, topic, partition, records)
                if futures:
                    await asyncio.gather(*futures)
                self.health.ok("kafka")
                return
            except (TimeoutError, KafkaError, OSError) as exc:
                self.health.failed("kafka", exc)
                if self.should_stop:
                    raise
                await asyncio.sleep(backoff.next())
                await self._renew_producer(exc)

    # -- processing ---------------------------------------------------------------------
    async def _process(
        self, left: dict[TopicPartition, list[Any]], deadline: float
    ) -> dict[TopicPartition, int]:
        """Apply records of `left` until done or past `deadline` (perf_counter seconds).

        Applied records are removed from `left`; returns the next offset of every input
        partition it applied records of.
        """
        letters_out: list[tuple[bytes | None, bytes, list[Header]]] = []
        done: dict[TopicPartition, int] = {}
        now = time.time()
        next_yield = time.perf_counter() + YIELD_EVERY_S
        for tp in list(left):
            records = left[tp]
            store = self.stores.get(tp.partition)
            if store is None:  # revoked while the batch was in flight
                del left[tp]
                continue
            figures = self.figures[tp.partition]
            applied = 0
            for record in records:
                if applied and applied % 50 == 0 and (tick := time.perf_counter()) >= next_yield:
                    await asyncio.sleep(0)  # let the figures stage and the timers run
                    next_yield = tick + YIELD_EVERY_S
                    if tick >= deadline or self._cut_wanted:
                        break
                _, letters = store.process(
                    record.offset,
                    record.key,
                    record.value or b"",
                    figures,
                    now=now,
                    headers=record.headers,
                )
                applied += 1
                for letter in letters:
                    letters_out.append(self._letter(letter, tp.partition, tp.topic))
            done[tp] = records[applied - 1].offset + 1
            if applied == len(records):
                del left[tp]
            else:
                left[tp] = records[applied:]
                break
        if letters_out:
            log.warning("%d message(s) to the dead-letter topic", len(letters_out))
            await self._deliver(self.settings.dead_letter_topic, 0, letters_out)
        return done

    def _letter(
        self, letter: DeadLetter, partition: int, topic: str | None = None
    ) -> tuple[bytes | None, bytes, list[Header]]:
        """A dead letter as a record: the original bytes, with why and where from.

        A value larger than `DEAD_LETTER_MAX_BYTES` is cut to that size (header
        `truncated-from` gives its length), so one huge message cannot block the topic.
        """
        headers = [
            ("reason", letter.reason.encode("utf-8")[:4096]),
            ("source-topic", (topic or self.settings.events_topic).encode()),
            ("source-partition", str(partition).encode()),
            ("source-offset", str(letter.offset).encode()),
        ]
        value = letter.value
        if len(value) > DEAD_LETTER_MAX_BYTES:
            headers.append(("truncated-from", str(len(value)).encode()))
            value = value[:DEAD_LETTER_MAX_BYTES]
        key = letter.key[:1024] if letter.key is not None else None
        return (key, value, headers)

    async def _checkpoint(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Changelog first, acknowledged; then the input offsets."""
        assert self._producer is not None and self._consumer is not None
        for partition, store in self.stores.items():
            retired = store.retire(self.committed.get(partition, 0), self.figures[partition])
            if retired:
                held, total = store.dossiers()
                log.info(
                    "partition %d: %d closed dossiers retired (%d held, %d retired in all)",
                    partition,
                    retired,
                    held,
                    total,
                )
            changes = store.take_changes()
            if changes:
                await self._deliver(
                    self.changelog_topic, partition, [(k, v, ()) for k, v in changes]
                )
        if offsets:
            owned = {tp: o for tp, o in offsets.items() if tp.partition in self.stores}
            if owned:
                try:
                    await self._consumer.commit(
                        {tp: OffsetAndMetadata(o, "") for tp, o in owned.items()}
                    )
                    for tp, o in owned.items():
                        self.committed[tp.partition] = o
                except KafkaError as exc:
                    # Harmless: the next owner replays from the last commit and the store
                    # skips what it already holds.
                    log.warning("offset commit failed (%r); messages will be replayed", exc)

    # -- rebalance ----------------------------------------------------------------------
    async def assign(self, tps: set[TopicPartition]) -> None:
        hook, self.before_first_restore = self.before_first_restore, None
        if hook is not None and self._every_partition(tps) and await hook():
            # Other stage processes of this worker are joining the group: the rebalance
            # their joining brings gives this one its share, which it restores then, not
            # every partition now (meanwhile it applies nothing: no store, no commit).
            log.info(
                "partitions %s: not restored now: the worker's other stage processes are "
                "joining its group, and the rebalance that follows shares the partitions out",
                sorted(tp.partition for tp in tps),
            )
            return
        async with self.lock:
            for tp in sorted(tps, key=lambda t: t.partition):
                if tp.partition in self.stores:
                    continue
                store = PartitionStore(
                    tp.partition,
                    self.lifecycle,
                    self.registry,
                    future_tolerance_s=self.settings.future_tolerance_s,
                    clock_mode=self.settings.clock,
                    overdue=AlertHistory(self.target_scopes, self.settings.target_window),
                    alert_inputs=self.settings.alerts,
                    verifier=self.verifier,
                    retirement=Retirement(self.settings.retire_after_days * 86400)
                    if self.settings.retire_after_days
                    else None,
                )
                figures = self.figures_factory(tp.partition)
                if not await self._restore(tp.partition, store, figures):
                    return  # stopping: the partition's next owner restores it
                self.stores[tp.partition] = store
                self.figures[tp.partition] = figures
                if self._consumer is not None:
                    committed = await self._consumer.committed(tp) or 0
                    self.positions[tp.partition] = self.committed[tp.partition] = committed
            self.heap.after_batch()  # the restored states are long-lived: freeze them
        self.ready.set()

    def _every_partition(self, tps: set[TopicPartition]) -> bool:
        """Whether `tps` is every partition of the events topic: this stage process is
        alone in the group's assignment (with others in it, each gets a share)."""
        known = None
        if self._consumer is not None:
            known = self._consumer.partitions_for_topic(self.settings.events_topic)
        every = set(known) if known else set(range(self.settings.partitions))
        return bool(tps) and {tp.partition for tp in tps} >= every

    async def _restore(
        self, partition: int, store: PartitionStore, figures: PartitionFigures
    ) -> bool:
        """Read a partition's changelog into `store`, then rebuild its `figures`.

        Both run in steps that give the event loop back (`asyncio.sleep(0)`), so the
        consumer's heartbeats, the figures stage and the health endpoint keep running
        however many dossiers the partition holds; progress is logged every few seconds.
        A worker asked to stop gives up between two steps and returns False (a worker
        left alone in its group when the others stop is assigned their partitions while
        it stops too: restoring them would hold its exit for as long as that takes).
        """
        began = last_log = time.perf_counter()
        read = 0
        async for records, position, end in partition_batches(
            self.settings.kafka_bootstrap,
            self.changelog_topic,
            partition,
            max_records=RESTORE_STEP,
            **aiokafka_options(self.settings),
        ):
            store.restore_records(records)
            self.heap.after_batch()  # long-lived states: out of the collector's scans
            read += len(records)
            if (tick := time.perf_counter()) - last_log >= RESTORE_LOG_S:
                last_log = tick
                log.info(
                    "partition %d: restoring, %d changelog records read (offset %d of %d)",
                    partition,
                    read,
                    position,
                    end,
                )
            await asyncio.sleep(0)
            if self.should_stop or self.leaving:
                return self._restore_abandoned(partition, read)
        store.end_restore()
        loaded = time.perf_counter()
        pin = store.overdue.upto or None
        steps = store.seeding(
            figures,
            now=store.restored_clock(time.time()),
            keep_hours_from=pin,
            step=RESTORE_STEP,
        )
        for done in steps:
            self.heap.after_batch()
            if (tick := time.perf_counter()) - last_log >= RESTORE_LOG_S:
                last_log = tick
                log.info(
                    "partition %d: rebuilding the figures, %d of %d dossiers",
                    partition,
                    done,
                    len(store.records),
                )
            await asyncio.sleep(0)
            if self.should_stop or self.leaving:
                return self._restore_abandoned(partition, read)
        log.info(
            "partition %d assigned: %d dossiers restored (%d more retired) from %d changelog "
            "records in %.2f s (read %.2f s, figures %.2f s)",
            partition,
            len(store.records),
            store.dossiers()[1],
            read,
            time.perf_counter() - began,
            loaded - began,
            time.perf_counter() - loaded,
        )
        return True

    @staticmethod
    def _restore_abandoned(partition: int, read: int) -> bool:
        log.info(
            "partition %d: restore abandoned after %d changelog records: the worker is stopping",
            partition,
            read,
        )
        return False

    async def revoke(self, tps: set[TopicPartition]) -> None:
        async with self.lock:
            try:
                await self._checkpoint()
            except Exception:  # the next owner replays from the changelog and offsets
                log.exception("checkpoint before revocation failed")
            for tp in tps:
                self.stores.pop(tp.partition, None)
                self.figures.pop(tp.partition, None)
                self.positions.pop(tp.partition, None)
                self.committed.pop(tp.partition, None)
                self._last_clock.pop(tp.partition, None)
                self._series_dirty.pop(tp.partition, None)
                self._feed_published.pop(tp.partition, None)
                for key in [k for k in self._published if k[0] == tp.partition]:
                    del self._published[key]
                log.info("partition %d revoked", tp.partition)

    # -- partial figures --------------------------------------------------------------
    def clock(self) -> int:
        """The figures' clock T: the wall clock, or the latest event time when replaying
        (of every partition of the worker: see `clock_floor`)."""
        return max(self.own_clock(), self.clock_floor)

    def own_clock(self) -> int:
        """The wall clock, or the latest event time of this stage's own partitions."""
        if self.settings.clock == "event":
            return int(self.event_clock())
        return int(time.time())

    def request_full_publish(self) -> None:
        """Publish every partial at the next flush (after the figures stage rebalanced),
        and every alert sample kept (the new owner judges those it has not judged)."""
        self._full_due = True
        self._samples_all_due = True

    def partials(
        self, t: int, *, with_series: bool, group: RoundGroup | None = None
    ) -> Round | None:
        """A round of the partials that changed in the owned partitions, at their positions
        (None when none changed, unless the round is one of a `group`: it is sent anyway,
        so the group is whole).

        Call with the store lock held. Scopes change by events (dirty) and by time alone
        (a due instant passes, a window slides): both are found without a scan. Every
        partial is published again after a rebalance of the figures stage and every
        `full_publish_interval_s`: partials are absolute, so a repeat changes nothing,
        and one lost while the figures stage moved is replaced.
        """
        now = time.monotonic()
        full = self._full_due or now - self._last_full >= self.settings.full_publish_interval_s
        if full:
            self._full_due = False
            self._last_full = now
        out: list[tuple[int, str, Any]] = []
        for p, book in self.figures.items():
            previous = self._last_clock.get(p, t)
            changed = book.dirty_scopes() | book.scopes_changed_between(min(previous, t), t)
            if full:
                changed |= set(book.scopes())
            book.clear_dirty()
            self._last_clock[p] = t
            series_due = self._series_dirty.setdefault(p, set())
            series_due |= changed
            for scope in sorted(changed):
                counts = book.counts(scope, t)
                if full or self._published.get((p, scope)) != counts:
                    self._published[(p, scope)] = counts
                    out.append((p, scope, counts))
            if with_series or full:
                for scope in sorted(series_due):
                    body = series_buckets(book.series(scope, t))
                    out.append((p, SERIES_PREFIX + scope, body))
                series_due.clear()
            out += [(p, key, body) for key, body in self._feed_partials(p, full)]
            history = self.stores[p].overdue
            if self.settings.alerts and self.settings.clock != "event":
                self.stores[p].freeze_clock(t, book)
            for scope in history.take_unpublished(everything=full):
                out.append((p, OVERDUE_PREFIX + scope, history.partial(scope)))
            for scope, taken in history.take_samples(everything=self._samples_all_due).items():
                out.append((p, SAMPLES_PREFIX + scope, taken))
            counts_now = self.stores[p].counts()
            if full or self._published.get((p, COUNTS_KEY)) != counts_now:
                self._published[(p, COUNTS_KEY)] = counts_now
                out.append((p, COUNTS_KEY, counts_now))
        self._samples_all_due = False
        if not out and group is None:
            return None
        self._rounds += 1
        positions = {p: self.positions.get(p, 0) for p in self.figures}
        return Round(
            self._instance,
            self._rounds,
            t,
            positions,
            out,
            low=self.low_clock(),
            group=group,
        )

    def _feed_partials(self, p: int, full: bool) -> list[tuple[str, Any]]:
        """Partials of the agencies whose stuck or flagged dossiers changed (capped lists)."""
        issues = self.stores[p].feed_issues()
        before = self._feed_published.setdefault(p, set())
        out: list[tuple[str, Any]] = []
        for agency in sorted(set(issues) | before):
            entry = issues.get(agency, {"stuck": {}, "flagged": {}})
            body = {
                "stuck": dict(sorted(entry["stuck"].items())[:FEED_CAP]),
                "flagged": dict(sorted(entry["flagged"].items())[:FEED_CAP]),
            }
            key = FEED_PREFIX + agency
            previous = self._published.get((p, key))
            if full or previous != body:
                self._published[(p, key)] = body
                out.append((key, body))
        self._feed_published[p] = set(issues)
        return out

    def round_due(self) -> bool:
        """True when the last round was cut a flush interval ago or more, and at least
        `ROUND_SPACING` times as long ago as it took to cut.

        A round computes the figures of every scope that changed in every owned partition:
        with many partitions replaying a backlog (the clock moves hours a round, so nearly
        every scope changes) one round can take longer than the flush interval. Spacing
        the rounds by their cost keeps them to about a quarter of the stage's time; live,
        rounds take milliseconds and follow the flush interval.
        """
        wait = max(self.settings.flush_interval_s, ROUND_SPACING * self._round_cost_s)
        return time.monotonic() - self._last_round >= wait

    async def publish_partials(self, *, with_series: bool | None = None) -> int:
        """Cut a round and send it to the partials topic; return how many messages.

        `with_series` None: the time series too when `series_interval_s` has passed
        since they were last sent.
        """
        now = time.monotonic()
        self._last_round = now
        if with_series is None:
            with_series = now - self._last_series >= self.settings.series_interval_s
        if with_series:
            self._last_series = now
        async with self.lock:
            rnd = self._cut(self.clock(), with_series=with_series)
        return await self._send(rnd)

    async def joint_round(self, agree: Agree) -> int:
        """Cut a round with the worker's other stage processes (`stream_apps.joint_rounds`).

        Stops applying events at the next slice boundary and tells `agree` its clock and
        its last round's cost: as soon as the slice in hand has stopped (while it is
        checkpointed), or at once when none is. Then, with the lock held, cuts its round
        at the clock `agree` returns (or none when it returns None) and sends it. Return
        how many messages.
        """
        answer: asyncio.Future[JointCut | None] | None = None

        def say_stopped() -> None:
            nonlocal answer
            if answer is None:
                # Its own clock: the group's is the latest of its members' (a floor learnt
                # from another stage process may count events that other has not cut yet).
                answer = asyncio.ensure_future(agree(self.own_clock(), self._round_cost_s))

        self._cut_wanted, self._say_stopped = True, say_stopped
        try:
            async with self.lock:
                self._cut_wanted, self._say_stopped = False, None
                say_stopped()
                assert answer is not None
                cut = await answer
                if cut is None:
                    return 0
                self._last_round = time.monotonic()
                rnd = self._cut(cut.clock, with_series=cut.series, group=cut.group)
                # The group's clock may be ahead of this stage's: its figures have seen it,
                # so its clock (gauges in /health, the next round) never falls behind it.
                self.clock_floor = max(self.clock_floor, cut.clock)
        finally:
            self._cut_wanted, self._say_stopped = False, None
            if answer is not None and not answer.done():
                answer.cancel()
        return await self._send(rnd)

    def _cut(self, t: int, *, with_series: bool, group: RoundGroup | None = None) -> Round | None:
        """A round at clock `t` (call with the lock held), timed for `round_due`."""
        began = time.perf_counter()
        rnd = self.partials(t, with_series=with_series, group=group)
        self._round_cost_s = time.perf_counter() - began
        return rnd

    async def _send(self, rnd: Round | None) -> int:
        """Send a round to the partials topic; return how many messages.

        When the broker does not take them, every partial is sent again at the next
        round (they are absolute values), so an outage loses nothing.
        """
        if rnd is None:
            return 0
        assert self._producer is not None
        messages = round_messages(rnd, self.settings.partitions)
        key = self._instance.encode()
        try:
            futures = [
                await self._producer.send(self.partials_topic, key=key, value=value, partition=home)
                for home, value in messages
            ]
            if futures:
                await asyncio.gather(*futures)
        except (TimeoutError, KafkaError, OSError) as exc:
            self.health.failed("kafka", exc)
            self.request_full_publish()
            await self._renew_producer(exc)
            return 0
        return len(messages)

    def counts(self) -> dict[str, int]:
        return sum_counts(store.counts() for store in self.stores.values())

    def dossiers(self) -> dict[str, int]:
        """Dossiers of the owned partitions: held as records, and retired (closed, old)."""
        held = retired = 0
        for store in self.stores.values():
            h, r = store.dossiers()
            held, retired = held + h, retired + r
        return {"held": held, "retired": retired}

    def lag(self) -> dict[int, int]:
        """Messages between this worker's position and the end of each owned partition."""
        if self._consumer is None:
            return {}
        out: dict[int, int] = {}
        for partition in self.stores:
            tp = TopicPartition(self.settings.events_topic, partition)
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                out[partition] = max(0, highwater - self.positions.get(partition, 0))
        return out

    def open_dossiers(self) -> int:
        """Open dossiers of the owned partitions, from the figures (no scan of the states)."""
        t = self.clock()
        return sum(
            book.counts(CITY, t)["open_now"]
            for book in self.figures.values()
            if CITY in book.scopes()
        )

    def low_clock(self) -> int:
        """The end of the alert hours every owned partition has frozen.

        0 while a partition has no history yet but may still hold events (a replay reads
        the partitions unevenly: its first events can be older than the others' hours);
        -1 when no partition has any history and none holds an event (nothing to say).
        """
        lag = self.lag()
        ends = []
        for p, store in self.stores.items():
            if store.overdue.upto:
                ends.append(store.overdue.upto)
            elif lag.get(p) != 0:
                return 0
        return min(ends) if ends else -1

    def event_clock(self) -> float:
        """Latest event time applied in the partitions this worker owns (epoch seconds)."""
        return max((s.meta.max_event_time for s in self.stores.values()), default=0.0)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, stage: DossierStage) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            await self.stage.revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.stage.assign(set(assigned))
