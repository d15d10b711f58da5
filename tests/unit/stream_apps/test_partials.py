"""Partials of several partitions merge into exactly the figures of one book."""

from __future__ import annotations

import random
from datetime import timedelta

import orjson

from domain.calendar import WorkingCalendar
from domain.figures import COUNT_METRICS, GAUGES, ScopeSnapshot
from domain.lifecycle import DossierState, Lifecycle, calendar_resume
from stream_apps.book import new_partition_book
from stream_apps.partials import (
    BUNDLE_MAX_BYTES,
    OVERDUE_PREFIX,
    SAMPLES_PREFIX,
    PartialMerger,
    Round,
    RoundGroup,
    home_partition,
    merged_overdue_hours,
    merged_series,
    merged_snapshot,
    round_messages,
    series_buckets,
)
from tests.factories import T0, lifecycle

CALENDAR = WorkingCalendar()
LIFE = Lifecycle(calendar_resume(CALENDAR))
AGENCIES = [("SO-YTE", "city"), ("CA-TP", "city"), ("11311", "commune")]
CHANNELS = [("online", "full"), ("online", "partial"), ("in_person", None), ("post", None)]


def snapshot_counts(snapshot: ScopeSnapshot) -> dict[str, int]:
    """The additive fields of a snapshot (gauges, then each window's counts), read off it."""
    out = {g: getattr(snapshot, g) for g in GAUGES}
    for w, fig in snapshot.windows.items():
        for m in COUNT_METRICS:
            out[f"{w}.{m}"] = getattr(fig, m)
    return out


def test_merged_partials_equal_one_book_over_all_dossiers() -> None:
    rng = random.Random(4)
    whole = new_partition_book(CALENDAR, second_supplement_late=True)
    parts = [new_partition_book(CALENDAR, second_supplement_late=True) for _ in range(3)]
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
        counts = [p.counts(scope, t) for p in parts if scope in p.scopes()]
        assert merged_snapshot(counts) == expected, scope
        for p in parts:
            # What a partial carries: the snapshot's additive fields, in its order.
            expected_counts = snapshot_counts(p.snapshot(scope, t))
            assert list(p.counts(scope, t).items()) == list(expected_counts.items()), scope
        series = [series_buckets(p.series(scope, t)) for p in parts if scope in p.scopes()]
        assert merged_series(series) == whole.series(scope, t).to_redis_hash(), scope


def _merger(owned: set[int]) -> PartialMerger:
    merger = PartialMerger()
    merger.assign(owned)
    return merger


def _round(instance: str, seq: int, t: int, positions: dict[int, int], parts: list) -> Round:
    return Round(instance, seq, t, positions, parts)


def test_a_round_sends_every_partials_partition_a_message_and_each_key_to_its_home() -> None:
    parts = [(0, "city", {"open_now": 5}), (1, "agency:SO-YTE", {"open_now": 2}), (0, "_c", {})]
    messages = round_messages(_round("a", 1, 100, {0: 42, 1: 7}, parts), 4)
    assert sorted(home for home, _ in messages) == [0, 1, 2, 3]
    for home, raw in messages:
        doc = orjson.loads(raw)
        assert (doc["i"], doc["r"], doc["t"], doc["pos"]) == ("a", 1, 100, {"0": 42, "1": 7})
        assert doc["chunks"] == [1, 1, 1, 1]
        assert all(home_partition(k.encode(), 4) == home for _, k, _ in doc["parts"])
    sent = sorted(tuple(x[:2]) for _, raw in messages for x in orjson.loads(raw)["parts"])
    assert sent == sorted((p, k) for p, k, _ in parts)


def test_a_large_share_is_cut_below_the_message_limit() -> None:
    big = {"daily.received_total": {str(i): i for i in range(20_000)}}
    parts = [(3, f"series|agency:A{i}", big) for i in range(12)]
    messages = round_messages(_round("a", 7, 100, {3: 9}, parts), 2)
    assert all(len(raw) < 2 * BUNDLE_MAX_BYTES for _, raw in messages)
    chunks = orjson.loads(messages[0][1])["chunks"]
    assert sum(chunks) == len(messages) > 2
    merger = _merger({0, 1})
    applied = [merger.accept_round(raw, home) for home, raw in messages]
    assert applied == [False] * (len(messages) - 1) + [True]
    assert len(merger.docs) == 12 and merger.positions == {3: 9}


def test_a_round_applies_only_when_every_owned_partition_delivered_its_share() -> None:
    merger = _merger({0, 1})
    first = round_messages(_round("a", 1, 100, {0: 10, 1: 5}, [(0, "city", {"n": 5})]), 2)
    second = round_messages(_round("a", 2, 160, {0: 20, 1: 6}, [(0, "city", {"n": 4})]), 2)
    by_home: dict[int, list[bytes]] = {0: [], 1: []}
    for home, raw in first + second:
        by_home[home].append(raw)
    # Partition 0 delivers both rounds before partition 1 delivers anything.
    assert merger.accept_round(by_home[0][0], 0) is False
    assert merger.accept_round(by_home[0][1], 0) is False
    assert merger.docs == {} and merger.positions == {}
    assert merger.accept_round(by_home[1][0], 1) is True  # round 1 whole
    assert merger.positions == {0: 10, 1: 5} and merger.bodies("city") == [{"n": 5}]
    assert merger.accept_round(by_home[1][1], 1) is True  # then round 2
    assert merger.positions == {0: 20, 1: 6} and merger.bodies("city") == [{"n": 4}]
    assert merger.clock("city") == 160
    assert merger.take_dirty() == ["city"] and merger.take_dirty() == []


def test_a_restarted_stage_replaces_the_old_one_and_its_half_rounds_go() -> None:
    merger = _merger({0, 1})
    old = round_messages(_round("old", 5, 100, {2: 10}, [(2, "city", {"n": 1})]), 2)
    merger.accept_round(old[0][1], old[0][0])  # half of the old stage's round
    new = round_messages(_round("new", 1, 120, {2: 12}, [(2, "city", {"n": 3})]), 2)
    for home, raw in new:
        merger.accept_round(raw, home)
    assert merger.positions == {2: 12} and merger.bodies("city") == [{"n": 3}]
    # The old stage's other half, late: its round was dropped, nothing goes back.
    assert merger.accept_round(old[1][1], old[1][0]) is False
    assert merger.positions == {2: 12} and merger.bodies("city") == [{"n": 3}]


def test_two_stages_rounds_merge_and_a_revoked_partitions_keys_go() -> None:
    merger = _merger({0, 1})
    for stage, p, value in (("a", 0, 5), ("b", 1, 2)):
        rnd = _round(stage, 1, 100, {p: 1}, [(p, "city", {"open_now": value})])
        for home, raw in round_messages(rnd, 2):
            merger.accept_round(raw, home)
    assert sorted(b["open_now"] for b in merger.bodies("city")) == [2, 5]
    home = home_partition(b"city", 2)
    merger.assign({0, 1} - {home})
    assert merger.bodies("city") == []


def test_a_round_whose_share_was_lost_is_dropped_not_waited_for_forever() -> None:
    merger = _merger({0, 1})
    lost = round_messages(_round("a", 1, 100, {0: 10}, [(0, "city", {"n": 1})]), 2)
    later = round_messages(_round("a", 2, 110, {0: 20}, [(0, "city", {"n": 2})]), 2)
    merger.accept_round(lost[0][1], lost[0][0])  # the round's other share never comes
    for home, raw in later:
        merger.accept_round(raw, home)
    assert merger.positions == {0: 20} and merger.bodies("city") == [{"n": 2}]


# -- rounds cut jointly by a worker's stage processes -----------------------------------------


def _grouped(instance: str, seq: int, t: int, p: int, n: int, number: int, size: int = 2) -> Round:
    """Stage `instance`'s round `seq` of group `number`: partition `p` at offset `seq`,
    `open_now` = n."""
    group = RoundGroup("w1", number, size)
    return Round(instance, seq, t, {p: seq}, [(p, "city", {"open_now": n})], group=group)


def test_the_rounds_of_a_group_apply_together_when_the_last_one_is_whole() -> None:
    merger = _merger({0, 1})
    _deliver(merger, _grouped("a", 1, 100, 0, 5, number=1))
    assert merger.positions == {} and merger.bodies("city") == []  # b's round still to come
    _deliver(merger, _grouped("a", 2, 200, 0, 6, number=2))  # a is a group ahead
    assert merger.positions == {}
    _deliver(merger, _grouped("b", 1, 100, 1, 7, number=1))
    assert merger.positions == {0: 1, 1: 1}
    assert sorted(b["open_now"] for b in merger.bodies("city")) == [5, 7]
    assert merger.clock("city") == 100  # both at the group's one clock
    _deliver(merger, _grouped("b", 2, 200, 1, 8, number=2))
    assert merger.positions == {0: 2, 1: 2} and merger.clock("city") == 200


def test_a_group_that_cannot_be_whole_applies_when_a_later_one_is() -> None:
    merger = _merger({0, 1})
    _deliver(merger, _grouped("a", 1, 100, 0, 5, number=1))  # b died before sending group 1
    _deliver(merger, _grouped("a", 2, 200, 0, 6, number=2))
    _deliver(merger, _grouped("b2", 1, 200, 1, 9, number=2))  # b's successor joins group 2
    assert merger.positions == {0: 2, 1: 1} and merger.clock("city") == 200
    assert sorted(b["open_now"] for b in merger.bodies("city")) == [6, 9]


def test_an_older_stages_waiting_round_never_lands_after_its_successors() -> None:
    merger = _merger({0, 1})
    _deliver(merger, _grouped("b", 1, 100, 1, 3, number=1))  # waits for a's round of group 1
    # Partition 1 moves to stage c, whose solo round is applied at once.
    _deliver(merger, Round("c", 1, 150, {1: 40}, [(1, "city", {"open_now": 4})]))
    _deliver(merger, _grouped("a", 1, 100, 0, 5, number=1))  # group 1 whole, without b
    assert merger.positions == {0: 1, 1: 40}
    assert sorted(b["open_now"] for b in merger.bodies("city")) == [4, 5]


def test_groups_of_two_workers_settle_apart() -> None:
    merger = _merger({0, 1})
    other = RoundGroup("w2", 1, 1)
    _deliver(merger, _grouped("a", 1, 100, 0, 5, number=1))
    _deliver(merger, Round("x", 1, 90, {3: 7}, [(3, "city", {"open_now": 1})], group=other))
    assert merger.positions == {3: 7}  # w2's group of one is whole; w1's still waits
    _deliver(merger, _grouped("b", 1, 100, 1, 2, number=1))
    assert merger.positions == {0: 1, 1: 1, 3: 7}


# -- the alert inputs: frozen overdue hours, samples and the settled hour ------------------

HOUR = 3600
G1, G2, G3 = 486_000 * HOUR, 486_001 * HOUR, 486_002 * HOUR  # three hour ends


def _deliver(merger: PartialMerger, rnd: Round, partitions: int = 2) -> None:
    for home, raw in round_messages(rnd, partitions):
        merger.accept_round(raw, home)


def test_merged_overdue_hours_sum_the_partitions_from_the_latest_start() -> None:
    h = 100 * HOUR
    first = {"from": h, "h": {str(h): 2, str(h + HOUR): 1, str(h + 3 * HOUR): 4}}
    second = {"from": h + HOUR, "h": {str(h + HOUR): 3, str(h + 2 * HOUR): 1}}
    # Before h + 1 h the second partition's hours are unknown: the hour h is left out.
    expected = ({h + HOUR: 4, h + 2 * HOUR: 1, h + 3 * HOUR: 4}, h + HOUR)
    assert merged_overdue_hours([first, second]) == expected
    assert merged_overdue_hours([second, first]) == expected
    assert merged_overdue_hours([{"from": h, "h": {}}]) == ({}, h)
    assert merged_overdue_hours([]) is None


def test_sample_partials_add_up_across_rounds_and_sum_partitions_per_hour_end() -> None:
    merger = _merger({0, 1})
    a, b = SAMPLES_PREFIX + "agency:A", SAMPLES_PREFIX + "agency:B"
    _deliver(
        merger,
        Round(
            "s",
            1,
            G1,
            {0: 5, 1: 3},
            [
                (0, a, {str(G1): [3]}),
                (1, a, {str(G1): [2, 40, 30]}),  # a target sample: longer than the other
                (1, b, {str(G1): [0, 10, 8]}),
                (0, b, {str(G1): [4]}),
            ],
            low=G1,
        ),
    )
    _deliver(merger, Round("s", 2, G2, {0: 9, 1: 4}, [(0, a, {str(G2): [5]})], low=G2))
    _deliver(
        merger,
        Round("s", 3, G3, {0: 12, 1: 6}, [(1, a, {str(G2): [1], str(G3): [6]})], low=G3),
    )
    # Each round carried only its new samples: the earlier ones are still there.
    assert merger.ready_samples(G3) == {
        "agency:A": {G1: [5, 40, 30], G2: [6], G3: [6]},  # partition 0 had none at G3
        "agency:B": {G1: [4, 10, 8]},
    }
    assert merger.ready_samples(G2) == {
        "agency:A": {G1: [5, 40, 30], G2: [6]},
        "agency:B": {G1: [4, 10, 8]},
    }
    # Samples are not figures: no Redis hash, nothing dirty.
    assert merger.docs == {} and merger.take_dirty(everything=True) == []
    merger.drop_samples(G1)
    assert merger.ready_samples(G3) == {"agency:A": {G2: [6], G3: [6]}}
    merger.drop_samples(G3)
    assert merger.ready_samples(G3) == {}


def test_samples_go_with_their_partials_partition() -> None:
    merger = _merger({0, 1})
    key = SAMPLES_PREFIX + "agency:A"
    _deliver(merger, Round("s", 1, G1, {0: 1}, [(0, key, {str(G1): [3]})], low=G1))
    assert merger.ready_samples(G1) == {"agency:A": {G1: [3]}}
    merger.assign({0, 1} - {home_partition(key.encode(), 2)})
    assert merger.ready_samples(G1) == {}


def test_settled_hour_waits_for_every_partition_and_takes_the_lowest() -> None:
    merger = _merger({0, 1})
    assert merger.settled_hour() is None  # nothing heard yet
    _deliver(merger, Round("a", 1, 100, {0: 1}, [(0, "city", {"n": 1})]))  # lw 0
    _deliver(merger, Round("b", 1, 100, {1: 1}, [(1, "city", {"n": 2})], low=G2))
    assert merger.settled_hour() is None  # partition 0 may still deliver older hours
    _deliver(merger, Round("a", 2, 200, {0: 2}, [], low=G1))
    assert merger.settled_hour() == G1
    _deliver(merger, Round("a", 3, 300, {0: 3}, [], low=G3))
    assert merger.settled_hour() == G2
    _deliver(merger, Round("a", 4, 400, {0: 4}, [], low=-1))  # nothing to say
    assert merger.settled_hour() == G2
    _deliver(merger, Round("b", 2, 400, {1: 2}, [], low=-1))
    assert merger.settled_hour() is None
    _deliver(merger, Round("a", 5, 500, {0: 5, 1: 3}, [], low=0))  # one stage, both again
    assert merger.settled_hour() is None
    _deliver(merger, Round("a", 6, 600, {0: 6, 1: 4}, [], low=G3))
    assert merger.settled_hour() == G3


def test_overdue_partials_are_figures_and_marked_for_the_alerts() -> None:
    merger = _merger({0, 1})
    key = OVERDUE_PREFIX + "agency:A"
    parts = [(0, key, {"from": G1, "h": {str(G1): 2}}), (1, "city", {"n": 1})]
    _deliver(merger, Round("s", 1, G2, {0: 1, 1: 1}, parts, low=G2))
    assert merger.overdue_dirty == {key}
    assert merger.bodies(key) == [{"from": G1, "h": {str(G1): 2}}]
    assert merged_overdue_hours(merger.bodies(key)) == ({G1: 2}, G1)
