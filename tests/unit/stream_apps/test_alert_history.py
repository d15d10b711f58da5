"""One partition's frozen alert inputs: hours frozen as the clock passes them, samples at
hour ends, forgetting after 33 days, and the changelog round trip."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import orjson

from domain.calendar import VN_TZ
from stream_apps.alert_history import KEY_PREFIX, SAMPLE_PREFIX, SPAN_KEY, AlertHistory

HOUR = 3600


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch seconds of a Vietnam wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=VN_TZ).timestamp())


class FakeFigures:
    """The four questions the history asks a partition's figures, answered from tables
    each test writes; every question asked is recorded."""

    def __init__(
        self,
        *,
        overdue: Mapping[str, Mapping[int, int]] | None = None,
        near: Mapping[int, Mapping[str, int]] | None = None,
        received: Mapping[tuple[str, str, int], tuple[int, int]] | None = None,
        scopes: Iterable[str] = (),
    ) -> None:
        self.overdue = {s: dict(h) for s, h in (overdue or {}).items()}  # scope -> hour -> n
        self.near = dict(near or {})  # instant -> scope -> near_due_now
        self.received = dict(received or {})  # (scope, window, instant) -> (received, online)
        self._scopes = list(scopes)
        self.kept_from: list[int] = []  # every keep_hours_from(t), in order
        self.calls: list[tuple[object, ...]] = []

    def keep_hours_from(self, t: int) -> None:
        self.kept_from.append(t)

    def overdue_between(self, h0: int, h1: int) -> dict[str, dict[int, int]]:
        self.calls.append(("overdue_between", h0, h1))
        out: dict[str, dict[int, int]] = {}
        for scope, hours in self.overdue.items():
            got = {h: n for h, n in hours.items() if h0 <= h < h1}
            if got:
                out[scope] = got
        return out

    def near_due_at(self, scopes: Iterable[str], t: int) -> dict[str, int]:
        asked = tuple(scopes)
        self.calls.append(("near_due_at", asked, t))
        table = self.near.get(t, {})
        return {s: table[s] for s in asked if s in table}

    def received_in(self, scope: str, window: str, t: int) -> tuple[int, int]:
        self.calls.append(("received_in", scope, window, t))
        return self.received[(scope, window, t)]  # a question the test did not expect fails

    def scopes(self) -> list[str]:
        return list(self._scopes)

    def asked(self, name: str) -> list[tuple[object, ...]]:
        return [c[1:] for c in self.calls if c[0] == name]


# -- freezing the overdue hours ------------------------------------------------------------


def test_the_first_freeze_sets_the_span_to_the_hour_of_t_and_records_nothing() -> None:
    h = AlertHistory()
    assert h.next_boundary == 0  # any first event is due to freeze
    figures = FakeFigures(overdue={"city": {vn(2025, 10, 1, 9): 3}}, scopes=["agency:A", "city"])
    h.freeze(vn(2025, 10, 1, 9, 20) + 34, figures)
    assert (h.start, h.upto) == (vn(2025, 10, 1, 9), vn(2025, 10, 1, 9))
    assert h.next_boundary == vn(2025, 10, 1, 10)
    assert h.hours == {} and h.samples == {} and figures.calls == []
    assert h.dirty == set() and h.unpublished == set() and h.span_dirty


def test_a_later_freeze_records_each_scopes_counts_of_the_hours_that_ended() -> None:
    start = vn(2025, 10, 1, 9)
    h = AlertHistory()
    h.freeze(start + 600, FakeFigures())
    figures = FakeFigures(
        overdue={
            "agency:A": {
                start - HOUR: 9,  # before the span: not asked for
                start: 2,
                start + HOUR: 0,  # zeros are not kept
                start + 2 * HOUR: 1,
                start + 3 * HOUR: 5,  # the hour t is in: not over yet
            },
            "city": {start + HOUR: 4},
            "level:city": {start + 3 * HOUR: 1},  # nothing in the frozen hours
        },
        scopes=["agency:A", "level:city", "city"],
    )
    h.freeze(vn(2025, 10, 1, 12, 59), figures)
    assert figures.asked("overdue_between") == [(start, vn(2025, 10, 1, 12))]
    assert h.hours == {"agency:A": {start: 2, start + 2 * HOUR: 1}, "city": {start + HOUR: 4}}
    assert h.dirty == h.unpublished == {"agency:A", "city"}
    assert (h.start, h.upto) == (start, vn(2025, 10, 1, 12))
    assert h.next_boundary == vn(2025, 10, 1, 13)


def test_a_clock_within_the_frozen_hour_or_behind_it_changes_nothing() -> None:
    h = AlertHistory()
    figures = FakeFigures(overdue={"city": {vn(2025, 10, 1, 9): 1}}, scopes=["agency:A"])
    h.freeze(vn(2025, 10, 1, 9), figures)
    h.freeze(vn(2025, 10, 1, 10, 30), figures)
    before = (h.start, h.upto, {s: dict(c) for s, c in h.hours.items()}, dict(h.samples))
    h.dirty.clear()
    h.unpublished.clear()
    calls = len(figures.calls)
    for t in (vn(2025, 10, 1, 10, 59) + 59, vn(2025, 10, 1, 10), vn(2025, 10, 1, 8)):
        h.freeze(t, figures)
    assert len(figures.calls) == calls
    assert (h.start, h.upto, h.hours, h.samples) == before
    assert h.dirty == h.unpublished == set()


def test_frozen_hours_stay_as_they_were_when_the_figures_change_afterwards() -> None:
    """A transfer a day later moves `became_overdue` in the figures, in the old hour; the
    frozen count of that hour is not asked again."""
    due = vn(2025, 10, 9)
    h = AlertHistory()
    figures = FakeFigures(overdue={"agency:A": {due: 1}, "city": {due: 1}})
    h.freeze(due - HOUR, figures)
    h.freeze(due + HOUR + 5, figures)
    assert h.hours == {"agency:A": {due: 1}, "city": {due: 1}}
    figures.overdue = {"agency:B": {due: 1}, "city": {due: 1}}  # transferred to B
    h.freeze(due + 26 * HOUR, figures)
    assert figures.asked("overdue_between")[-1] == (due + HOUR, due + 26 * HOUR)
    assert h.hours == {"agency:A": {due: 1}, "city": {due: 1}}


# -- samples -------------------------------------------------------------------------------


def test_a_night_gap_gives_one_sample_per_hour_end_each_taken_at_that_instant() -> None:
    upto = vn(2025, 10, 2, 18)
    ends = [vn(2025, 10, 2, 19) + k * HOUR for k in range(8)]  # 19:00 ... 02:00
    assert ends[-1] == vn(2025, 10, 3, 2)
    near = {g: {"agency:A": k, "agency:B": 2 * k, "city": 99} for k, g in enumerate(ends, 1)}
    figures = FakeFigures(
        near=near, scopes=["agency:A", "agency:B", "level:city", "field:health", "city"]
    )
    h = AlertHistory(start=upto, upto=upto)
    h.freeze(vn(2025, 10, 3, 2, 15), figures)  # the first event of the morning
    # Only agencies are sampled; no target scopes: no received counts asked for.
    assert figures.asked("near_due_at") == [(("agency:A", "agency:B"), g) for g in ends]
    assert figures.asked("received_in") == []
    assert h.samples == {g: {"agency:A": [k], "agency:B": [2 * k]} for k, g in enumerate(ends, 1)}


def test_target_samples_are_taken_at_vietnam_midnight_for_the_target_scopes_only() -> None:
    midnight = vn(2025, 10, 2)
    assert midnight % 86400 == 17 * HOUR
    ends = [vn(2025, 10, 1, 23), midnight, vn(2025, 10, 2, 1)]
    figures = FakeFigures(
        near={g: {"agency:SO-XD": 3, "agency:A": 1} for g in ends},
        received={
            ("agency:SO-XD", "mtd", midnight - 1): (40, 30),
            ("agency:SO-TP", "mtd", midnight - 1): (0, 0),  # none of its dossiers here
        },
        scopes=["agency:SO-XD", "agency:A", "city"],
    )
    h = AlertHistory(
        target_scopes=frozenset({"agency:SO-XD", "agency:SO-TP"}),
        target_window="mtd",
        start=vn(2025, 10, 1, 22),
        upto=vn(2025, 10, 1, 22),
    )
    h.freeze(vn(2025, 10, 2, 1, 30), figures)
    assert sorted(figures.asked("received_in")) == [
        ("agency:SO-TP", "mtd", midnight - 1),
        ("agency:SO-XD", "mtd", midnight - 1),
    ]
    assert h.samples == {
        ends[0]: {"agency:SO-XD": [3], "agency:A": [1]},
        midnight: {"agency:SO-XD": [3, 40, 30], "agency:A": [1], "agency:SO-TP": [0, 0, 0]},
        ends[2]: {"agency:SO-XD": [3], "agency:A": [1]},
    }
    taken = h.take_samples()
    assert taken == {
        "agency:SO-XD": {str(ends[0]): [3], str(midnight): [3, 40, 30], str(ends[2]): [3]},
        "agency:A": {str(ends[0]): [1], str(midnight): [1], str(ends[2]): [1]},
        "agency:SO-TP": {str(midnight): [0, 0, 0]},
    }
    assert list(taken["agency:SO-XD"]) == [str(g) for g in ends]  # in time order
    assert h.take_samples() == {}  # each sample is handed over once


def test_samples_of_later_freezes_add_up_until_taken() -> None:
    g1, g2, g3 = vn(2025, 10, 6, 9), vn(2025, 10, 6, 10), vn(2025, 10, 6, 11)
    figures = FakeFigures(
        near={g1: {"agency:A": 1}, g2: {"agency:A": 2}, g3: {"agency:A": 3}}, scopes=["agency:A"]
    )
    h = AlertHistory()
    h.freeze(g1 - HOUR + 1, figures)
    h.freeze(g1 + 1, figures)
    h.freeze(g3, figures)
    assert h.take_samples() == {"agency:A": {str(g1): [1], str(g2): [2], str(g3): [3]}}


# -- forgetting ----------------------------------------------------------------------------


def test_after_a_day_boundary_hours_older_than_33_days_are_dropped_and_start_moves_up() -> None:
    end = vn(2025, 11, 20, 8)  # 01:00 UTC: the freeze crosses the UTC day boundary
    floor = vn(2025, 10, 18, 8)  # 33 days before
    h = AlertHistory(
        start=vn(2025, 10, 10),
        upto=vn(2025, 11, 20, 6),
        hours={
            "agency:A": {floor - HOUR: 4, floor: 1, floor + 5 * HOUR: 2},
            "city": {floor - 86400: 7},
            "level:city": {floor + HOUR: 1},
        },
    )
    h.freeze(end + 600, FakeFigures(scopes=["agency:A"]))
    assert h.start == floor
    assert h.hours == {
        "agency:A": {floor: 1, floor + 5 * HOUR: 2},
        "city": {},
        "level:city": {floor + HOUR: 1},
    }
    assert h.dirty == h.unpublished == {"agency:A", "city"}
    assert h.partial("agency:A") == {"from": floor, "h": {str(floor): 1, str(floor + 5 * HOUR): 2}}
    assert h.partial("city") == {"from": floor, "h": {}}


# -- changelog and partials ----------------------------------------------------------------


def _history_with_two_freezes() -> AlertHistory:
    start = vn(2025, 10, 1, 9)
    figures = FakeFigures(
        overdue={"agency:A": {start: 2, start + HOUR: 1}, "city": {start + HOUR: 3}},
        scopes=["agency:A"],
    )
    h = AlertHistory()
    h.freeze(start + 10, figures)
    h.freeze(start + 2 * HOUR + 10, figures)
    return h


def test_the_changelog_round_trip_gives_the_same_span_and_hours() -> None:
    h = _history_with_two_freezes()
    start = vn(2025, 10, 1, 9)
    changes = h.take_changes()
    records = {k: v for k, v in changes if k.startswith(KEY_PREFIX) or k == SPAN_KEY}
    assert set(records) == {KEY_PREFIX + b"agency:A", KEY_PREFIX + b"city", SPAN_KEY}
    assert orjson.loads(records[KEY_PREFIX + b"agency:A"]) == {
        str(start): 2,
        str(start + HOUR): 1,
    }
    assert orjson.loads(records[SPAN_KEY]) == {"s": start, "u": start + 2 * HOUR}
    assert h.take_changes() == []  # taken once
    restored = AlertHistory()
    assert all(restored.restore(k, v) for k, v in changes)
    assert (restored.start, restored.upto, restored.hours) == (h.start, h.upto, h.hours)
    assert restored.next_boundary == h.next_boundary
    assert restored.take_unpublished() == ["agency:A", "city"]  # published again after a restart


def test_later_changelog_records_win_and_a_forgotten_hour_stays_forgotten() -> None:
    h = _history_with_two_freezes()
    changes = h.take_changes()
    h.freeze(vn(2025, 11, 3, 10), FakeFigures(scopes=["agency:A"]))  # 33 days after 10:00
    assert h.dirty == {"agency:A"}  # only it lost an hour
    changes += h.take_changes()
    restored = AlertHistory()
    for k, v in changes:
        restored.restore(k, v)
    ten = vn(2025, 10, 1, 10)
    assert restored.hours == h.hours == {"agency:A": {ten: 1}, "city": {ten: 3}}
    assert (restored.start, restored.upto) == (h.start, h.upto) == (ten, vn(2025, 11, 3, 10))


def test_records_that_are_not_the_historys_are_not_taken() -> None:
    h = AlertHistory()
    assert h.restore(b"HP-SO-YTE-2510-000001", b'{"s": 1}') is False
    assert h.restore(b"\x00partition-meta", b'{"invalid": 0, "o": -1}') is False
    assert (h.start, h.upto, h.hours, h.unpublished) == (0, 0, {}, set())


def test_unpublished_scopes_are_taken_once_and_everything_on_request() -> None:
    h = _history_with_two_freezes()
    assert h.take_unpublished() == ["agency:A", "city"]
    assert h.take_unpublished() == []
    assert h.take_unpublished(everything=True) == ["agency:A", "city"]
    start = vn(2025, 10, 1, 9)
    assert h.partial("city") == {"from": start, "h": {str(start + HOUR): 3}}
    assert h.partial("level:city") == {"from": start, "h": {}}


def test_samples_are_kept_in_the_changelog_and_handed_over_again_after_a_restart() -> None:
    start = vn(2025, 10, 1, 9)
    g1, g2 = start + HOUR, start + 2 * HOUR
    figures = FakeFigures(
        near={g1: {"agency:A": 1}, g2: {"agency:A": 2, "agency:B": 0}},
        scopes=["agency:A", "agency:B"],
    )
    h = AlertHistory()
    h.freeze(start, figures)
    h.freeze(g2 + 10, figures)
    taken = h.take_samples()
    assert taken == {"agency:A": {str(g1): [1], str(g2): [2]}, "agency:B": {str(g2): [0]}}
    assert h.take_samples() == {}
    assert h.take_samples(everything=True) == taken  # kept, for a new stage to send again
    changes = h.take_changes()
    samples = {k: v for k, v in changes if k.startswith(SAMPLE_PREFIX)}
    assert {k: orjson.loads(v) for k, v in samples.items() if v is not None} == {
        SAMPLE_PREFIX + str(g1).encode(): {"agency:A": [1]},
        SAMPLE_PREFIX + str(g2).encode(): {"agency:A": [2], "agency:B": [0]},
    }
    restored = AlertHistory()
    assert all(restored.restore(k, v) for k, v in changes)
    assert restored.take_samples() == taken  # not sent since the restart: sent again
    # 33 days on, the old samples are dropped, and deleted from the changelog.
    h.freeze(vn(2025, 11, 3, 12), FakeFigures(scopes=["agency:A"]))
    later = h.take_changes()
    assert (SAMPLE_PREFIX + str(g1).encode(), None) in later
    assert (SAMPLE_PREFIX + str(g2).encode(), None) in later
    for k, v in later:
        restored.restore(k, v)
    kept = restored.take_samples(everything=True)
    assert str(g1) not in kept.get("agency:A", {}) and "agency:B" not in kept
    assert kept == h.take_samples(everything=True)
