"""Rounds of partials are spaced by their cost: never more than about a quarter of the time."""

from __future__ import annotations

import time

from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from stream_apps.book import new_partition_book
from stream_apps.dossier_stage import DossierStage
from stream_apps.joint_rounds import ROUND_SPACING
from stream_apps.settings import WorkerSettings

CALENDAR = WorkingCalendar()


def stage(flush_s: float) -> DossierStage:
    return DossierStage(
        WorkerSettings(flush_interval_s=flush_s, alerts=False),
        Lifecycle(calendar_resume(CALENDAR)),
        lambda _p: new_partition_book(CALENDAR, second_supplement_late=True),
    )


def test_a_cheap_round_follows_the_flush_interval() -> None:
    s = stage(0.5)
    s._round_cost_s = 0.02
    s._last_round = time.monotonic() - 0.45
    assert not s.round_due()
    s._last_round = time.monotonic() - 0.55
    assert s.round_due()


def test_an_expensive_round_waits_for_several_times_its_cost() -> None:
    s = stage(0.5)
    s._round_cost_s = 1.0  # many partitions replaying a backlog
    s._last_round = time.monotonic() - (ROUND_SPACING - 0.2)
    assert not s.round_due()
    s._last_round = time.monotonic() - (ROUND_SPACING + 0.2)
    assert s.round_due()
