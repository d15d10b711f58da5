"""The true figures of a generated workload, computed from its lifecycle plans.

Pure: the figures come from the simulator's `DossierPlan`s (what was meant to happen),
not from a running worker, so they are what a correct worker must show at the end.
Duplicated or reordered deliveries do not change them.

Definitions. The period is [start, end) (instants; days are Vietnam-local). "Due" is
the exclusive due instant (hạn xử lý) from the working-day calendar, moved after each
supplement pause; a dossier is on time iff resolved before it.

- received (tiếp nhận): dossiers whose `accepted` event (status 2) falls in the
  period. Dossiers refused at intake (status 3) are counted as `refused`, not received;
  online submissions not yet accepted at the end are not received.
- by channel: in person (trực tiếp), online full (trực tuyến toàn trình), online
  partial (trực tuyến một phần), post (bưu chính); online = full + partial.
- online share = online received / received; full-online share = online-full
  received / received.
- resolved: received dossiers whose `resolved` event (status 9) falls in the period.
  Resolved on time iff resolved_at < due in effect at that moment and (with
  `second_supplement_late`, the 766 rule and the worker's default) fewer than two
  supplement requests; otherwise resolved late.
- on-time share = resolved on time / resolved.
- open past due: received, and at the end neither resolved, withdrawn nor stopped,
  not waiting for a supplement (the clock is paused), and end >= the due in effect.
- overdue (quá hạn) = resolved late + open past due; overdue share = overdue / received.
- withdrawn (status 7) and stopped (status 8) in the period are counted apart; they are
  neither on time nor late.
- city departments total: every city-level body (sở, ban, ngành); communes total: every
  commune-level unit (xã, phường, đặc khu). The 80% online target is online share >= 80%.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.lifecycle import ChannelKind
from producers.simulator import DossierPlan
from schemas.enums import AgencyLevel
from schemas.registry import AgencyRegistry

__all__ = ["ONLINE_TARGET", "TruthBuilder", "UnitTruth", "WorkloadTruth", "compute_truth"]

ONLINE_TARGET = 0.80  # units below it must raise their online share (the seed article)

_COUNTERS = (
    "received",
    "in_person",
    "online_full",
    "online_partial",
    "post",
    "refused",
    "resolved_on_time",
    "resolved_late",
    "open_at_end",
    "open_past_due",
    "withdrawn",
    "stopped",
    "returned",
    "second_supplement",
    "incident_dossiers",
    "events",
)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class UnitTruth:
    """Counts of one unit (an agency, or a total over several) over the period."""

    code: str
    name: str
    name_en: str
    level: AgencyLevel | None  # None for the all-units total
    received: int = 0
    in_person: int = 0
    online_full: int = 0
    online_partial: int = 0
    post: int = 0
    refused: int = 0
    resolved_on_time: int = 0
    resolved_late: int = 0
    open_at_end: int = 0  # received and still open at the end (past due or not)
    open_past_due: int = 0
    withdrawn: int = 0
    stopped: int = 0
    returned: int = 0
    second_supplement: int = 0  # received dossiers with two or more supplement requests
    incident_dossiers: int = 0  # received dossiers due inside an incident window
    events: int = 0  # distinct lifecycle events in the period (all dossiers)

    @property
    def online(self) -> int:
        return self.online_full + self.online_partial

    @property
    def resolved(self) -> int:
        return self.resolved_on_time + self.resolved_late

    @property
    def overdue(self) -> int:
        return self.resolved_late + self.open_past_due

    @property
    def online_share(self) -> float | None:
        return _share(self.online, self.received)

    @property
    def full_online_share(self) -> float | None:
        return _share(self.online_full, self.received)

    @property
    def on_time_share(self) -> float | None:
        return _share(self.resolved_on_time, self.resolved)

    @property
    def overdue_share(self) -> float | None:
        return _share(self.overdue, self.received)

    @property
    def meets_online_target(self) -> bool:
        share = self.online_share
        return share is not None and share >= ONLINE_TARGET

    def add(self, other: UnitTruth) -> None:
        for name in _COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "name_en": self.name_en,
            "level": None if self.level is None else self.level.value,
        }
        out.update({name: getattr(self, name) for name in _COUNTERS})
        out.update(
            online=self.online,
            resolved=self.resolved,
            overdue=self.overdue,
            online_share=self.online_share,
            full_online_share=self.full_online_share,
            on_time_share=self.on_time_share,
            overdue_share=self.overdue_share,
            meets_online_target=self.meets_online_target,
        )
        return out


@dataclass
class WorkloadTruth:
    """Per-unit figures and the totals: city departments, communes, everything."""

    start: datetime
    end: datetime
    units: dict[str, UnitTruth]  # city bodies first, then communes; by code
    city: UnitTruth
    communes: UnitTruth
    total: UnitTruth
    second_supplement_late: bool = True

    def by_level(self, level: AgencyLevel) -> list[UnitTruth]:
        return [u for u in self.units.values() if u.level is level]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "second_supplement_late": self.second_supplement_late,
            "online_target": ONLINE_TARGET,
            "city": self.city.to_dict(),
            "communes": self.communes.to_dict(),
            "total": self.total.to_dict(),
            "units": [u.to_dict() for u in self.units.values()],
        }


class TruthBuilder:
    """Adds plans one at a time (streaming) and builds the `WorkloadTruth` at the end."""

    def __init__(
        self,
        registry: AgencyRegistry,
        start: datetime,
        end: datetime,
        *,
        agencies: Iterable[str] = (),
        second_supplement_late: bool = True,
    ) -> None:
        """`agencies`: codes to report even if they get no dossier (every simulated unit)."""
        self._registry = registry
        self.start = start
        self.end = end
        self._start = int(start.timestamp())
        self._end = int(end.timestamp())
        self.second_supplement_late = second_supplement_late
        self._units: dict[str, UnitTruth] = {}
        for code in agencies:
            self._unit(code)

    def _unit(self, code: str) -> UnitTruth:
        unit = self._units.get(code)
        if unit is None:
            agency = self._registry.get(code)
            if agency is None:
                unit = UnitTruth(code, code, code, None)
            else:
                unit = UnitTruth(code, agency.name, agency.name_en or agency.name, agency.level)
            self._units[code] = unit
        return unit

    def add(self, plan: DossierPlan) -> None:
        """Count one dossier's contribution over the period."""
        u = self._unit(plan.agency_code)
        start, end = self._start, self._end
        u.events += len(plan.events)
        if plan.refused_at is not None and start <= plan.refused_at < end:
            u.refused += 1
        accepted = plan.accepted_at
        if accepted is None or not start <= accepted < end:
            return
        u.received += 1
        kind = ChannelKind.of(plan.channel, plan.online_mode)
        setattr(u, kind.value, getattr(u, kind.value) + 1)
        if plan.supplements >= 2:
            u.second_supplement += 1
        if plan.incident:
            u.incident_dossiers += 1
        if plan.returned_at is not None and plan.returned_at < end:
            u.returned += 1
        if plan.withdrawn_at is not None and plan.withdrawn_at < end:
            u.withdrawn += 1
            return
        if plan.stopped_at is not None and plan.stopped_at < end:
            u.stopped += 1
            return
        resolved = plan.resolved_at
        if resolved is not None and resolved < end:
            late = resolved >= _due_in_effect(plan, resolved)
            if self.second_supplement_late and plan.supplements >= 2:
                late = True
            if late:
                u.resolved_late += 1
            else:
                u.resolved_on_time += 1
            return
        u.open_at_end += 1
        if not _paused_at(plan, end) and end >= _due_in_effect(plan, end):
            u.open_past_due += 1

    def build(self) -> WorkloadTruth:
        """The figures of every plan added so far."""
        order = {a.code: i for i, a in enumerate(self._registry)}
        units = sorted(
            self._units.values(),
            key=lambda u: (u.level is not AgencyLevel.CITY, order.get(u.code, len(order)), u.code),
        )
        city = UnitTruth("CITY", "Các sở, ban, ngành thành phố", "City departments and bodies",
                         AgencyLevel.CITY)  # fmt: skip
        communes = UnitTruth("COMMUNES", "Cấp xã", "Commune-level units", AgencyLevel.COMMUNE)
        total = UnitTruth("ALL", "Toàn thành phố", "All units", None)
        for u in units:
            (city if u.level is AgencyLevel.CITY else communes).add(u)
            total.add(u)
        return WorkloadTruth(
            start=self.start,
            end=self.end,
            units={u.code: u for u in units},
            city=city,
            communes=communes,
            total=total,
            second_supplement_late=self.second_supplement_late,
        )


def _due_in_effect(plan: DossierPlan, at: int) -> int:
    """The due instant in effect at `at`: the last one set at or before it."""
    due = plan.deadlines[0][1]
    for since, value in plan.deadlines:
        if since <= at:
            due = value
    return due


def _paused_at(plan: DossierPlan, at: int) -> bool:
    """Waiting for a supplement at `at`, with the deadline stopped.

    A pause that starts at or after the due instant in effect stops nothing: the dossier
    stays overdue (the worker's rule for overdue under a pause).
    """
    return any(
        p <= at and (r is None or at < r) and p < _due_in_effect(plan, p) for p, r in plan.pauses
    )


def compute_truth(
    plans: Iterable[DossierPlan],
    registry: AgencyRegistry,
    start: datetime,
    end: datetime,
    *,
    agencies: Iterable[str] = (),
    second_supplement_late: bool = True,
) -> WorkloadTruth:
    """The figures of a whole workload at once (see the module docstring)."""
    builder = TruthBuilder(
        registry,
        start,
        end,
        agencies=agencies,
        second_supplement_late=second_supplement_late,
    )
    for plan in plans:
        builder.add(plan)
    return builder.build()
