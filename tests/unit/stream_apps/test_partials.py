"""Partials of several partitions merge into exactly the figures of one book."""

from __future__ import annotations

import random
from datetime import timedelta

import orjson

from domain.calendar import WorkingCalendar
from domain.lifecycle import DossierState, Lifecycle, calendar_resume
from stream_apps.book import PartitionBook
from stream_apps.partials import (
    PartialMerger,
    encode_partial,
    merged_series,
    merged_snapshot,
    series_buckets,
    snapshot_counts,
)
from tests.factories import T0, lifecycle

CALENDAR = WorkingCalendar()
LIFE = Lifecycle(calendar_resume(CALENDAR))
AGENCIES = [("SO-YTE", "city"), ("CA-TP", "city"), ("11311", "commune")]
CHANNELS = [("online", "full"), ("online", "partial"), ("in_person", None), ("post", None)]


def test_merged_partials_equal_one_book_over_all_dossiers() -> None:
    rng = random.Random(4)
    whole = PartitionBook(CALENDAR, second_supplement_late=True)
    parts = [PartitionBook(CALENDAR, second_supplement_late=True) for _ in range(3)]
    for i in range(120):
        code, level = rng.choice(AGENCIES)
        channel, mode = rng.choice(CHANNELS)
        steps = rng.choice([("accepted",), ("accepted", "resolved"), ("accepted", "withdrawn")])
        state = DossierState(f"D{i}")
        for ev in lifecycle(
            f"D{i}",
            steps=steps,
            start=T0 + timedelta(hours=rng.randint(0, 400)),
            gap=timedelta(hours=rng.randint(1, 300)),
            agency={"code": code, "level": level},
            channel=channel,
            online_mode=mode,
        ):
            LIFE.apply(state, ev)
        facts = whole.facts(state)
        whole.move(None, facts)
        parts[i % 3].move(None, facts)
    t = int((T0 + timedelta(days=40)).timestamp())
    for scope in whole.scopes():
        expected = whole.snapshot(scope, t).to_redis_hash()
        counts = [snapshot_counts(p.snapshot(scope, t)) for p in parts if scope in p.scopes()]
        assert merged_snapshot(counts) == expected, scope
        series = [series_buckets(p.series(scope, t)) for p in parts if scope in p.scopes()]
        assert merged_series(series) == whole.series(scope, t).to_redis_hash(), scope


def test_the_newest_partial_of_a_partition_replaces_the_older() -> None:
    merger = PartialMerger()
    merger.accept("city", encode_partial(0, 100, {"open_now": 5}), home=1)
    merger.accept("city", encode_partial(1, 100, {"open_now": 2}), home=1)
    doc = orjson.loads(merger.accept("city", encode_partial(0, 160, {"open_now": 4}), home=1))
    assert sorted(doc) == ["0", "1"]
    assert sorted(b["open_now"] for b in merger.bodies("city")) == [2, 4]
    assert merger.clock("city") == 160
    assert merger.take_dirty() == ["city"] and merger.take_dirty() == []
    merger.drop_partitions({1})
    assert merger.bodies("city") == []
