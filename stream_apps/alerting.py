"""The alert rules on the merged figures: which rule judges which scope, with what, at what T.

`AlertEngine` holds the rules' states (`domain.alerts.AlertState`) of the scopes this
worker's figures stage owns, and turns merged figures into `schemas.alerts.AlertEvent`s.
It does no I/O: the worker (`stream_apps.app`) publishes a verdict's events to Kafka,
stores them with the new states in one Redis transaction (`RedisSink.write_alerts`),
and only then `commit`s the verdict here. A verdict that was not stored is simply judged
again from the old states: the rules are deterministic, so the same transitions come
out with the same ids.

- `overdue_spike`: `city`, `level:{level}` and `agency:{code}`, from the hourly
  `became_overdue` counts each input partition froze as its clock passed each hour's end
  (`stream_apps.overdue_history`), judged at the end of the hours every partition has
  frozen (`PartialMerger.settled_hour`) on the hours before it: the same counts however
  the input was read, live or in a replay whose partitions run apart. The cost: an
  opening is decided once its hour is over, up to an hour after the burst (the instant
  stamped is still the hour's start).
- `near_due_backlog`: every agency, from `near_due_now` at each hour's end.
- `online_target`: agencies of the city level (departments), from the received and online
  counts over the target window at each Vietnam midnight.
The gauge rules are judged at each hour end every partition has frozen, in order, on the
samples the partitions took then (`stream_apps.alert_history`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import orjson

from domain.alerts import (
    AlertKind,
    AlertState,
    AlertStatus,
    AlertThresholds,
    Inputs,
    NearDueInput,
    SpikeInput,
    TargetInput,
    Transition,
    evaluate,
)
from domain.calendar import WorkingCalendar
from schemas.alerts import AlertEvent, epoch_utc

SPIKE_SCOPES = ("city", "level:", "agency:")
# A closed spike state whose hours did not change is judged again after this long
# (event time); the cost of judging every scope at every settled hour grows with the
# 21 working days of baseline each judgement reads.
SPIKE_RECHECK_S = 6 * 3600


@dataclass(frozen=True)
class AgencyInfo:
    level: str
    name: str


@dataclass
class Verdict:
    """What one judgement changed: new states (by key) and the events, in order."""

    states: dict[str, AlertState] = field(default_factory=dict)
    events: list[AlertEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.states)


class AlertEngine:
    """The alert states of the owned scopes, and the judging of merged figures."""

    def __init__(
        self,
        thresholds: AlertThresholds,
        calendar: WorkingCalendar,
        agency: Callable[[str], AgencyInfo | None],
    ) -> None:
        self.thresholds = thresholds
        self.calendar = calendar
        self.agency = agency
        self.states: dict[str, AlertState] = {}
        self.open_events: dict[str, str] = {}  # incident id -> opening event JSON
        self.loaded = False

    # -- persistence ------------------------------------------------------------------
    def load(self, states: Mapping[str, str], open_events: Mapping[str, str]) -> None:
        """Start from the states and open alerts stored in Redis (JSON by key)."""
        self.states = {
            key: AlertState.from_dict(orjson.loads(text)) for key, text in states.items()
        }
        self.open_events = dict(open_events)
        self.loaded = True

    def stored_form(self) -> tuple[dict[str, str], dict[str, str]]:
        """Every state and open alert as Redis holds them (to write them anew)."""
        return (
            {key: _state_json(st) for key, st in self.states.items()},
            dict(self.open_events),
        )

    def commit(self, verdict: Verdict) -> None:
        """The verdict is stored: make its states the current ones."""
        self.states.update(verdict.states)
        for event in verdict.events:
            if event.open:
                self.open_events[event.incident_id] = event.model_dump_json()
            else:
                self.open_events.pop(event.incident_id, None)

    def drop_scopes(self, keep: Callable[[str], bool]) -> None:
        """Forget the states of scopes this worker no longer owns."""
        self.states = {k: s for k, s in self.states.items() if keep(s.scope)}
        self.open_events = {
            i: text for i, text in self.open_events.items() if keep(orjson.loads(text)["scope"])
        }

    # -- judging ----------------------------------------------------------------------
    def judge(
        self,
        settled: int,
        overdue_hours: Mapping[str, tuple[Mapping[int, int], int]],
        samples: Mapping[str, Mapping[int, Sequence[int]]],
        changed: Set[str] | None = None,
    ) -> Verdict:
        """Judge the rules on what every input partition has frozen up to `settled`:
        the spike rule on the overdue hours before it (scope -> hourly counts, first
        hour covered), the gauge rules on each hour end's samples in order (scope ->
        hour end -> [near_due_now] or [near_due_now, received, online]). Changes nothing
        here until `commit`.

        `changed` (scopes whose overdue hours changed since the last judgement; None: all)
        lets a closed spike state with nothing new wait up to `SPIKE_RECHECK_S`: the rule
        gives the same transitions at the same instants whenever it is judged (docs/
        alerts.md), so waiting only delays the emission, and only of an opening that a
        falling baseline alone would cause. Open states are judged every time (their
        clearing is due as soon as the window has emptied)."""
        verdict = Verdict()
        for scope in sorted(overdue_hours):
            if scope.startswith(SPIKE_SCOPES) and self._spike_due(scope, settled, changed):
                all_hours, covers = overdue_hours[scope]
                hours = {h: n for h, n in all_hours.items() if h < settled}
                self._step(
                    verdict, AlertKind.OVERDUE_SPIKE, scope, settled, SpikeInput(hours, covers)
                )
        for scope in sorted(samples):
            for g, values in sorted(samples[scope].items()):
                self._step(verdict, AlertKind.NEAR_DUE_BACKLOG, scope, g, NearDueInput(values[0]))
                if len(values) >= 3:
                    inputs = TargetInput(values[1], values[2])
                    self._step(verdict, AlertKind.ONLINE_TARGET, scope, g, inputs)
        return verdict

    def _step(self, verdict: Verdict, kind: AlertKind, scope: str, t: int, inputs: Inputs) -> None:
        key = f"{kind}|{scope}"
        state = verdict.states.get(key) or self.states.get(key) or self._new(kind, scope, inputs)
        new, transitions = evaluate(
            state, t, inputs, thresholds=self.thresholds, calendar=self.calendar
        )
        if new != state:
            verdict.states[key] = new
        verdict.events.extend(self.event(tr) for tr in transitions)

    def _spike_due(self, scope: str, settled: int, changed: Set[str] | None) -> bool:
        if changed is None or scope in changed:
            return True
        state = self.states.get(f"{AlertKind.OVERDUE_SPIKE}|{scope}")
        if state is None or state.status is AlertStatus.OPEN or state.evaluated_at is None:
            return True
        return settled - state.evaluated_at >= SPIKE_RECHECK_S

    @staticmethod
    def _new(kind: AlertKind, scope: str, inputs: Inputs) -> AlertState:
        """A scope's first state. A spike state starts at the first hour its series covers,
        not at the current window (the pure rule's default for a state with no past): the
        history is judged hour by hour, as a worker that read it live would have, so a
        replay read in a few big rounds gives the alerts a live run gave."""
        if isinstance(inputs, SpikeInput):
            return AlertState(kind=kind, scope=scope, resume_at=inputs.covers_from)
        return AlertState.new(kind, scope)

    def event(self, tr: Transition) -> AlertEvent:
        code = tr.scope.removeprefix("agency:") if tr.scope.startswith("agency:") else None
        info = self.agency(code) if code else None
        return AlertEvent(
            id=tr.id,
            incident_id=tr.incident_id,
            kind=tr.kind.value,
            scope=tr.scope,
            agency=code,
            agency_name=info.name if info else None,
            severity=tr.severity.value,
            action=tr.action.value,
            at=epoch_utc(tr.at),
            opened_at=epoch_utc(tr.opened_at),
            figures=dict(tr.figures),
            baseline=dict(tr.baseline),
        )


def _state_json(state: AlertState) -> str:
    return orjson.dumps(state.to_dict()).decode()


def states_json(verdict: Verdict) -> dict[str, str]:
    """The verdict's new states as Redis stores them: key -> JSON."""
    return {key: _state_json(st) for key, st in verdict.states.items()}


def event_fields(events: Iterable[AlertEvent]) -> list[dict[str, Any]]:
    return [{"id": e.id, "alert": e.model_dump_json()} for e in events]
