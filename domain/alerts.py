"""Alert rules on the live figures: overdue spikes, missed online targets, near-due backlogs.

Pure core: no I/O and no clock reads; the clock T (integer epoch seconds, event time) is
always passed in. One `AlertState` per (kind, scope) is a small state machine, closed or
open; `evaluate(state, T, inputs)` returns the new state and the transitions ("opened",
"cleared") that happened up to T. The same sequence of (T, inputs) always gives the same
transitions with the same ids; a state serialised with `to_dict` and read back with
`from_dict` continues exactly as the uninterrupted one. This is the contract of the
alerts (docs/alerts.md explains the defaults and the delays):

Kinds and severities: `overdue_spike` (critical), `online_target` (warning),
`near_due_backlog` (warning).

Lifecycle of every kind: closed -> "opened" at instant a -> open -> "cleared" at instant
b -> closed, with `cooldown_until = b + cooldown_s`: no opening at an instant before it.
Transition ids are UUIDv5 (namespace `ID_NAMESPACE`): the incident id of
"{kind}|{scope}|{opened_at}" and the transition id of "{kind}|{scope}|{opened_at}|{action}",
so an incident replayed opens and clears with the ids it had. A T earlier than the last
T evaluated is stale: the state and the transitions stay as they are.

Overdue spike (tăng đột biến hồ sơ quá hạn), from the hourly `became_overdue` series
(hour bucket start -> count of instants <= T, zero buckets may be left out) and the
first bucket the series covers (`covers_from`; earlier buckets are unknown, not zero):
- Duty buckets. Decision: only hours in which a dossier can fall due count. A working
  day D (per the `WorkingCalendar`) has the working buckets: hour buckets [h, h+1h)
  with h <= D's `workday_end` and h + 1h > D's `workday_start` (calendar rules; with the
  defaults 08:00-17:00 that is the ten buckets 08:00 ... 17:00, the last holding an
  hour-limit due falling exactly at 17:00), and the closing bucket: 00:00-01:00 of the
  day after D, where day-limit dossiers whose appointment date (ngày hẹn trả) is D fall
  due (their due instant is 00:00 after it). N = working buckets + 1 duty buckets per
  working day (11 by default). Every other bucket (nights, weekends, holidays, 00:00
  after a day off) is off duty and ignored, in the window and in the baseline alike.
- Window at duty bucket h: the N duty buckets ending with h, one working day;
  x(h) = their count.
- Baseline at h: blocks k = 1 ... `baseline_days` of N duty buckets each, block k
  ending just before block k - 1 starts (block 0 is the window). A block counts when
  its first bucket is at or after `covers_from`; with the window not covered, or fewer
  than `min_baseline_days` blocks, the baseline is not ready and h decides nothing.
  m = median of the block counts (mean of the middle two for an even number),
  MAD = median of |block - m|, spread s = max(1.4826 * MAD, sqrt(m), 1).
- Levels: open level O = max(`min_count`, ceil(m + `open_k` * s)); close line
  C = floor(m + `close_k` * s); C < O always (open_k > close_k, s >= 1).
- Decisions, per duty bucket h in order: closed, h >= cooldown_until and x(h) >= O:
  "opened" at h (the bucket start). Open, bucket h complete (T >= h + 1h) and
  x(h) <= C with h's final count: "cleared" at h + 1h. Within a bucket x(h) only grows
  as T advances, so these instants do not depend on how often `evaluate` runs.
- Evaluating at T judges the duty buckets from the state's `resume_at` (a new state:
  the last duty bucket at or before T) up to T's bucket, then sets `resume_at` to T's
  bucket (judged again next time: it may be partial).

Online target (tỷ lệ hồ sơ trực tuyến), from `received` and `online` (online full +
online partial) over the thresholds' `window`; ratio = online / received, exact:
- Known iff received >= `min_received`. Below iff known and ratio < `target`.
- Closed: below starts a streak (`below_since` = the first T of the streak) unless one
  runs already; not below or not known ends it. "opened" at the first T with
  T - below_since >= `duration_s` and T >= cooldown_until.
- Open: known and ratio >= `target` + `clear_margin`: "cleared" at T. Not known changes
  nothing (a window that starts again, like a new quarter, neither opens nor clears).

Near-due backlog (tồn đọng hồ sơ sắp trễ), from `near_due_now` at T:
- Closed, T >= cooldown_until and near_due_now >= `open_at`: "opened" at T.
- Open and near_due_now <= `close_at`: "cleared" at T.

Decision (gauges): online target and near-due instants are the T of the evaluation that
saw them, so replays give the same ids when the worker evaluates at the same event-time
instants (a fixed grid of event time, e.g. every whole minute the clock crosses).

Thresholds: `AlertThresholds.defaults`, and per agency code the thresholds of the
`agency:{code}` scope (`AlertThresholds.for_scope`); `parse_thresholds` reads them from
JSON text. Decimal settings (open_k, target, ...) are taken as the decimal they are
written as (0.8 is exactly 4/5), so a ratio exactly at the target is not below it.
"""

from __future__ import annotations

import json
import math
import uuid
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, time, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import cache
from types import MappingProxyType
from typing import Any, Final, Self, TypeVar

from domain.calendar import WorkingCalendar
from domain.errors import DomainError
from schemas.serving import WINDOWS

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ID_NAMESPACE",
    "SEVERITY",
    "AlertAction",
    "AlertConfigError",
    "AlertError",
    "AlertInputError",
    "AlertKind",
    "AlertState",
    "AlertStatus",
    "AlertThresholds",
    "Evidence",
    "Inputs",
    "NearDueInput",
    "NearDueThresholds",
    "ScopeThresholds",
    "Severity",
    "SpikeInput",
    "SpikeThresholds",
    "TargetInput",
    "TargetThresholds",
    "Transition",
    "duty_buckets",
    "evaluate",
    "parse_thresholds",
]

HOUR: Final = 3600
_DAY = 86400
_VN_OFFSET = 7 * HOUR  # Vietnam is UTC+7 all year: local hours are whole UTC hours
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MAD_SCALE = Fraction("1.4826")  # MAD * 1.4826 estimates the standard deviation (normal data)
STATE_VERSION: Final = 1

# Transition ids: UUIDv5 in this namespace, stable across processes and replays.
ID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:dossier-stream:alerts:v1")


class AlertError(DomainError):
    """Base of the errors of the alert rules."""


class AlertConfigError(AlertError, ValueError):
    """Bad thresholds: a value out of range, an unknown key, a wrong type."""


class AlertInputError(AlertError, ValueError):
    """Bad input to `evaluate`: negative counts, a state of another kind, a bad state dict."""


class AlertKind(StrEnum):
    OVERDUE_SPIKE = "overdue_spike"
    ONLINE_TARGET = "online_target"
    NEAR_DUE_BACKLOG = "near_due_backlog"


class AlertStatus(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class AlertAction(StrEnum):
    OPENED = "opened"
    CLEARED = "cleared"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


# Dossiers already late are harm done (critical); a ratio below target and a near-due
# backlog are warnings that leave time to act.
SEVERITY: Final[Mapping[AlertKind, Severity]] = MappingProxyType(
    {
        AlertKind.OVERDUE_SPIKE: Severity.CRITICAL,
        AlertKind.ONLINE_TARGET: Severity.WARNING,
        AlertKind.NEAR_DUE_BACKLOG: Severity.WARNING,
    }
)


# -- thresholds -----------------------------------------------------------------------


@cache
def _exact(x: float) -> Fraction:
    """A decimal setting as the decimal it is written as (0.8 -> 4/5, not the float)."""
    return Fraction(str(x))


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise AlertConfigError(message)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: object) -> bool:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    return math.isfinite(x)


@dataclass(frozen=True)
class SpikeThresholds:
    """Settings of the overdue-spike rule (see the module docstring)."""

    min_count: int = 5
    open_k: float = 4.0
    close_k: float = 2.0
    baseline_days: int = 20
    min_baseline_days: int = 10
    cooldown_s: int = 6 * HOUR

    def __post_init__(self) -> None:
        for name in ("min_count", "baseline_days", "min_baseline_days", "cooldown_s"):
            _need(_is_int(getattr(self, name)), f"{name} must be an integer")
        for name in ("open_k", "close_k"):
            _need(_is_number(getattr(self, name)), f"{name} must be a number")
        _need(self.min_count >= 1, "min_count must be >= 1")
        _need(0 <= self.close_k < self.open_k, "need 0 <= close_k < open_k")
        _need(self.baseline_days >= 1, "baseline_days must be >= 1")
        _need(
            1 <= self.min_baseline_days <= self.baseline_days,
            "need 1 <= min_baseline_days <= baseline_days",
        )
        _need(self.cooldown_s >= 0, "cooldown_s must be >= 0")


@dataclass(frozen=True)
class TargetThresholds:
    """Settings of the online-target rule; `window` is the figures' window to feed it."""

    target: float = 0.80
    clear_margin: float = 0.02
    window: str = "qtd"
    min_received: int = 30
    duration_s: int = 86400
    cooldown_s: int = 0

    def __post_init__(self) -> None:
        for name in ("target", "clear_margin"):
            _need(_is_number(getattr(self, name)), f"{name} must be a number")
        for name in ("min_received", "duration_s", "cooldown_s"):
            _need(_is_int(getattr(self, name)), f"{name} must be an integer")
        _need(0 < self.target <= 1, "target must be in (0, 1]")
        _need(
            self.clear_margin >= 0 and _exact(self.target) + _exact(self.clear_margin) <= 1,
            "need clear_margin >= 0 and target + clear_margin <= 1",
        )
        _need(self.window in WINDOWS, f"window must be one of {', '.join(WINDOWS)}")
        _need(self.min_received >= 1, "min_received must be >= 1")
        _need(self.duration_s >= 0, "duration_s must be >= 0")
        _need(self.cooldown_s >= 0, "cooldown_s must be >= 0")


@dataclass(frozen=True)
class NearDueThresholds:
    """Settings of the near-due backlog rule."""

    open_at: int = 20
    close_at: int = 10
    cooldown_s: int = HOUR

    def __post_init__(self) -> None:
        for name in ("open_at", "close_at", "cooldown_s"):
            _need(_is_int(getattr(self, name)), f"{name} must be an integer")
        _need(self.open_at >= 1, "open_at must be >= 1")
        _need(0 <= self.close_at < self.open_at, "need 0 <= close_at < open_at")
        _need(self.cooldown_s >= 0, "cooldown_s must be >= 0")


@dataclass(frozen=True)
class ScopeThresholds:
    """The thresholds of every kind for one scope."""

    overdue_spike: SpikeThresholds = field(default_factory=SpikeThresholds)
    online_target: TargetThresholds = field(default_factory=TargetThresholds)
    near_due_backlog: NearDueThresholds = field(default_factory=NearDueThresholds)


@dataclass(frozen=True)
class AlertThresholds:
    """Default thresholds and per-agency ones (agency code -> thresholds of `agency:{code}`)."""

    defaults: ScopeThresholds = field(default_factory=ScopeThresholds)
    agencies: Mapping[str, ScopeThresholds] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "agencies", MappingProxyType(dict(self.agencies)))

    def for_scope(self, scope: str) -> ScopeThresholds:
        """The agency's own thresholds for `agency:{code}`, else the defaults."""
        if scope.startswith("agency:"):
            own = self.agencies.get(scope.removeprefix("agency:"))
            if own is not None:
                return own
        return self.defaults


DEFAULT_THRESHOLDS: Final = AlertThresholds()

_T = TypeVar("_T", SpikeThresholds, TargetThresholds, NearDueThresholds)


def _override(base: _T, data: object, where: str) -> _T:
    if not isinstance(data, Mapping):
        raise AlertConfigError(f"{where}: expected an object")
    known = {f.name for f in fields(base)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise AlertConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(sorted(known))}"
        )
    for key, value in data.items():
        default = getattr(base, key)
        if isinstance(default, str):
            ok, kind = isinstance(value, str), "a string"
        elif isinstance(default, float):
            ok, kind = _is_number(value), "a number"
        else:
            ok, kind = _is_int(value), "an integer"
        if not ok:
            raise AlertConfigError(f"{where}.{key}: expected {kind}, got {value!r}")
    try:
        return replace(base, **dict(data))
    except AlertConfigError as exc:
        raise AlertConfigError(f"{where}: {exc}") from exc


def _scope_overrides(base: ScopeThresholds, data: object, where: str) -> ScopeThresholds:
    if not isinstance(data, Mapping):
        raise AlertConfigError(f"{where}: expected an object")
    unknown = sorted(set(data) - {k.value for k in AlertKind})
    if unknown:
        raise AlertConfigError(
            f"{where}: unknown kind(s) {', '.join(map(repr, unknown))}; "
            f"expected {', '.join(k.value for k in AlertKind)}"
        )
    out = base
    for kind in AlertKind:
        if kind.value in data:
            current = getattr(out, kind.value)
            where_kind = f"{where}.{kind.value}"
            out = replace(out, **{kind.value: _override(current, data[kind.value], where_kind)})
    return out


def parse_thresholds(text: str, *, base: AlertThresholds = DEFAULT_THRESHOLDS) -> AlertThresholds:
    """Thresholds from JSON text; errors name the path of the bad entry.

    `{"defaults": {kind: {setting: value}}, "agencies": {code: {kind: {setting: value}}}}`,
    every part optional: file defaults replace `base.defaults` setting by setting, and an
    agency's settings replace those of the resulting defaults.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AlertConfigError(f"alert thresholds: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise AlertConfigError("alert thresholds: expected a JSON object")
    unknown = sorted(set(data) - {"defaults", "agencies"})
    if unknown:
        raise AlertConfigError(
            f"alert thresholds: unknown key(s) {', '.join(map(repr, unknown))}; "
            "expected defaults, agencies"
        )
    defaults = _scope_overrides(base.defaults, data.get("defaults", {}), "defaults")
    agencies_data = data.get("agencies", {})
    if not isinstance(agencies_data, dict):
        raise AlertConfigError("agencies: expected an object (agency code -> overrides)")
    agencies = dict(base.agencies)
    for code, entry in agencies_data.items():
        if not code:
            raise AlertConfigError("agencies: an agency code is empty")
        agencies[code] = _scope_overrides(defaults, entry, f"agencies.{code}")
    return AlertThresholds(defaults=defaults, agencies=agencies)


# -- inputs, state, transitions -------------------------------------------------------


@dataclass(frozen=True)
class SpikeInput:
    """The hourly `became_overdue` series of a scope at T, and the first bucket it covers."""

    series: Mapping[int, int]
    covers_from: int


@dataclass(frozen=True)
class TargetInput:
    """Dossiers received, and those received online (full + partial), over the window."""

    received: int
    online: int


@dataclass(frozen=True)
class NearDueInput:
    """The scope's `near_due_now` gauge at T."""

    near_due_now: int


Inputs = SpikeInput | TargetInput | NearDueInput
_INPUT_KIND: Final[Mapping[type, AlertKind]] = MappingProxyType(
    {
        SpikeInput: AlertKind.OVERDUE_SPIKE,
        TargetInput: AlertKind.ONLINE_TARGET,
        NearDueInput: AlertKind.NEAR_DUE_BACKLOG,
    }
)

# Figures and baselines in transitions: integers, decimal strings (6 digits) or None.
Evidence = Mapping[str, int | str | None]

_KIND_VALUES = frozenset(k.value for k in AlertKind)
_STATUS_VALUES = frozenset(s.value for s in AlertStatus)
_STATE_INTS = ("opened_at", "changed_at", "cooldown_until", "evaluated_at", "resume_at")
_STATE_KEYS = frozenset({"v", "kind", "scope", "status", *_STATE_INTS, "below_since"})


@dataclass(frozen=True)
class AlertState:
    """The state machine of one alert kind in one scope; persist it with `to_dict`."""

    kind: AlertKind
    scope: str
    status: AlertStatus = AlertStatus.CLOSED
    opened_at: int | None = None  # when the open incident opened
    changed_at: int | None = None  # instant of the last transition
    cooldown_until: int | None = None  # no opening at an instant before this
    evaluated_at: int | None = None  # the last T evaluated
    resume_at: int | None = None  # overdue_spike: first hour bucket not yet judged final
    below_since: int | None = None  # online_target: first T of the running below streak

    def __post_init__(self) -> None:
        # Accept the plain strings a caller may pass; compare as enum members afterwards.
        # (Members are kept as they are: a state is made per scope and flush, and an
        # Enum call runs in Python even compiled.)
        if type(self.kind) is not AlertKind:
            object.__setattr__(self, "kind", AlertKind(self.kind))
        if type(self.status) is not AlertStatus:
            object.__setattr__(self, "status", AlertStatus(self.status))

    @classmethod
    def new(cls, kind: AlertKind | str, scope: str) -> Self:
        """A closed state that has seen nothing yet."""
        return cls(kind=AlertKind(kind), scope=scope)

    @property
    def key(self) -> str:
        """`{kind}|{scope}`: one state per key."""
        return f"{self.kind}|{self.scope}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (strings, integers, None)."""
        out: dict[str, Any] = {
            "v": STATE_VERSION,
            "kind": self.kind.value,
            "scope": self.scope,
            "status": self.status.value,
        }
        for name in (*_STATE_INTS, "below_since"):
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read a dict written by `to_dict`; missing optional instants are None."""
        if not isinstance(data, Mapping):
            raise AlertInputError(f"alert state: expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - _STATE_KEYS)
        if unknown:
            raise AlertInputError(f"alert state: unknown key(s) {', '.join(map(repr, unknown))}")
        if data.get("v") != STATE_VERSION:
            raise AlertInputError(f"alert state: version {data.get('v')!r} is not {STATE_VERSION}")
        scope = data.get("scope")
        if not isinstance(scope, str) or not scope:
            raise AlertInputError("alert state: scope must be a non-empty string")
        kind_text, status_text = data.get("kind"), data.get("status")
        if not (
            isinstance(kind_text, str)
            and isinstance(status_text, str)
            and kind_text in _KIND_VALUES
            and status_text in _STATUS_VALUES
        ):
            raise AlertInputError(f"alert state: bad kind {kind_text!r} or status {status_text!r}")
        kind, status = AlertKind(kind_text), AlertStatus(status_text)
        instants: dict[str, int | None] = {}
        for name in (*_STATE_INTS, "below_since"):
            value = data.get(name)
            if value is not None and not _is_int(value):
                raise AlertInputError(f"alert state: {name} must be an integer or null")
            instants[name] = value
        if (status is AlertStatus.OPEN) != (instants["opened_at"] is not None):
            raise AlertInputError("alert state: opened_at is set iff the status is open")
        return cls(kind=kind, scope=scope, status=status, **instants)


@dataclass(frozen=True)
class Transition:
    """One alert opening or clearing; `id` is the same on every replay."""

    id: str
    incident_id: str
    kind: AlertKind
    scope: str
    severity: Severity
    action: AlertAction
    at: int  # event-time instant of the transition, epoch seconds
    opened_at: int  # the incident's opening instant (== at for "opened")
    figures: Evidence  # what triggered it
    baseline: Evidence  # what it was compared with

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "kind": self.kind.value,
            "scope": self.scope,
            "severity": self.severity.value,
            "action": self.action.value,
            "at": self.at,
            "opened_at": self.opened_at,
            "figures": dict(self.figures),
            "baseline": dict(self.baseline),
        }


def _fixed6(x: Fraction) -> str:
    """A non-negative rational as a decimal with 6 digits, rounded half up (as Redis ratios)."""
    q = (x.numerator * 2_000_000 + x.denominator) // (2 * x.denominator)
    return f"{q // 1_000_000}.{q % 1_000_000:06d}"


def _transition(
    state: AlertState,
    action: AlertAction,
    at: int,
    opened_at: int,
    figures: dict[str, int | str | None],
    baseline: dict[str, int | str | None],
) -> Transition:
    incident = f"{state.kind.value}|{state.scope}|{opened_at}"
    return Transition(
        id=str(uuid.uuid5(ID_NAMESPACE, f"{incident}|{action.value}")),
        incident_id=str(uuid.uuid5(ID_NAMESPACE, incident)),
        kind=state.kind,
        scope=state.scope,
        severity=SEVERITY[state.kind],
        action=action,
        at=at,
        opened_at=opened_at,
        figures=MappingProxyType(figures),
        baseline=MappingProxyType(baseline),
    )


def _opened(state: AlertState, at: int) -> AlertState:
    return replace(state, status=AlertStatus.OPEN, opened_at=at, changed_at=at)


def _cleared(state: AlertState, at: int, cooldown_s: int) -> AlertState:
    return replace(
        state,
        status=AlertStatus.CLOSED,
        opened_at=None,
        changed_at=at,
        cooldown_until=at + cooldown_s,
        below_since=None,
    )


def _cooled(state: AlertState, at: int) -> bool:
    return state.cooldown_until is None or at >= state.cooldown_until


def _evaluated(
    state: AlertState, t: int, *, resume_at: int | None, below_since: int | None
) -> AlertState:
    """`state` evaluated at t. (Every rule makes one per scope and flush: a direct
    construction, which costs a fraction of `dataclasses.replace`.)"""
    return AlertState(
        kind=state.kind,
        scope=state.scope,
        status=state.status,
        opened_at=state.opened_at,
        changed_at=state.changed_at,
        cooldown_until=state.cooldown_until,
        evaluated_at=t,
        resume_at=resume_at,
        below_since=below_since,
    )


# -- the step function ----------------------------------------------------------------


def evaluate(
    state: AlertState,
    t: int,
    inputs: Inputs,
    *,
    thresholds: AlertThresholds = DEFAULT_THRESHOLDS,
    calendar: WorkingCalendar | None = None,
) -> tuple[AlertState, list[Transition]]:
    """Advance one alert to clock t with the figures at t: (new state, transitions).

    `inputs` must match the state's kind; `calendar` (the one the figures use) is needed
    for `overdue_spike`. The thresholds used are `thresholds.for_scope(state.scope)`.
    """
    if not _is_int(t):
        raise AlertInputError(f"t must be integer epoch seconds, got {t!r}")
    kind = _INPUT_KIND.get(type(inputs))
    if kind is None:
        raise AlertInputError(f"inputs must be SpikeInput, TargetInput or NearDueInput: {inputs!r}")
    if kind is not state.kind:
        raise AlertInputError(f"{type(inputs).__name__} given to a {state.kind} state")
    if state.evaluated_at is not None and t < state.evaluated_at:
        return state, []  # stale: the clock has been further already
    own = thresholds.for_scope(state.scope)
    if isinstance(inputs, SpikeInput):
        if calendar is None:
            raise AlertInputError("overdue_spike needs the working calendar")
        return _spike(state, t, inputs, own.overdue_spike, calendar)
    if isinstance(inputs, TargetInput):
        return _target(state, t, inputs, own.online_target)
    return _near_due(state, t, inputs, own.near_due_backlog)


def _near_due(
    state: AlertState, t: int, inp: NearDueInput, th: NearDueThresholds
) -> tuple[AlertState, list[Transition]]:
    n = inp.near_due_now
    if not _is_int(n) or n < 0:
        raise AlertInputError(f"near_due_now must be an integer >= 0, got {n!r}")
    out: list[Transition] = []
    if state.status is AlertStatus.CLOSED:
        if n >= th.open_at and _cooled(state, t):
            state = _opened(state, t)
            out.append(_transition(state, AlertAction.OPENED, t, t, *_near_due_details(n, th)))
    elif n <= th.close_at:
        assert state.opened_at is not None
        details = _near_due_details(n, th)
        out.append(_transition(state, AlertAction.CLEARED, t, state.opened_at, *details))
        state = _cleared(state, t, th.cooldown_s)
    return _evaluated(state, t, resume_at=state.resume_at, below_since=state.below_since), out


def _near_due_details(
    n: int, th: NearDueThresholds
) -> tuple[dict[str, int | str | None], dict[str, int | str | None]]:
    """A near-due transition's figures and baseline (made only for a transition)."""
    return {"near_due_now": n}, {"open_at": th.open_at, "close_at": th.close_at}


def _target(
    state: AlertState, t: int, inp: TargetInput, th: TargetThresholds
) -> tuple[AlertState, list[Transition]]:
    received, online = inp.received, inp.online
    if not (_is_int(received) and _is_int(online) and 0 <= online <= received):
        raise AlertInputError(f"need integers 0 <= online <= received, got {online}, {received}")
    known = received >= th.min_received
    ratio = Fraction(online, received) if received else None
    target = _exact(th.target)
    clear_at = target + _exact(th.clear_margin)
    out: list[Transition] = []
    below_since = state.below_since
    if state.status is AlertStatus.CLOSED:
        if not known or ratio is None or ratio >= target:
            below_since = None
        else:
            if below_since is None:
                below_since = t
            if t - below_since >= th.duration_s and _cooled(state, t):
                state = _opened(state, t)
                figures, baseline = _target_details(inp, ratio, target, clear_at, th)
                figures["below_since"] = below_since
                out.append(_transition(state, AlertAction.OPENED, t, t, figures, baseline))
    elif known and ratio is not None and ratio >= clear_at:
        assert state.opened_at is not None
        details = _target_details(inp, ratio, target, clear_at, th)
        out.append(_transition(state, AlertAction.CLEARED, t, state.opened_at, *details))
        state = _cleared(state, t, th.cooldown_s)
        below_since = state.below_since
    return _evaluated(state, t, resume_at=state.resume_at, below_since=below_since), out


def _target_details(
    inp: TargetInput,
    ratio: Fraction | None,
    target: Fraction,
    clear_at: Fraction,
    th: TargetThresholds,
) -> tuple[dict[str, int | str | None], dict[str, int | str | None]]:
    """An online-target transition's figures and baseline (made only for a transition)."""
    figures: dict[str, int | str | None] = {
        "window": th.window,
        "received": inp.received,
        "online": inp.online,
        "online_ratio": None if ratio is None else _fixed6(ratio),
    }
    baseline: dict[str, int | str | None] = {
        "target": _fixed6(target),
        "clear_at": _fixed6(clear_at),
        "min_received": th.min_received,
        "duration_s": th.duration_s,
    }
    return figures, baseline


# -- overdue spikes: duty buckets -----------------------------------------------------


def _vn_date(x: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + (x + _VN_OFFSET) // _DAY)


def _midnight(d: date) -> int:
    return (d.toordinal() - _EPOCH_ORDINAL) * _DAY - _VN_OFFSET


def _seconds(t: time) -> int:
    return t.hour * HOUR + t.minute * 60 + t.second


def _working_offsets(calendar: WorkingCalendar) -> tuple[int, ...]:
    """Offsets from local midnight of a working day's working buckets."""
    start = _seconds(calendar.rules.workday_start)
    end = _seconds(calendar.rules.workday_end)
    if start < HOUR:
        raise AlertConfigError(
            "overdue_spike needs workday_start at 01:00 or later: the 00:00 bucket is where "
            "day-limit dossiers fall due"
        )
    return tuple(h for h in range(0, _DAY, HOUR) if h <= end and h + HOUR > start)


def duty_buckets(calendar: WorkingCalendar, d: date) -> list[int]:
    """Start instants of the duty buckets of local date d (none unless d is a working day):
    its working buckets, then its closing bucket (00:00 of the next day)."""
    if not calendar.is_working_day(d):
        return []
    m = _midnight(d)
    return [m + o for o in _working_offsets(calendar)] + [_midnight(d + timedelta(days=1))]


def _duty_span(calendar: WorkingCalendar, first: date, last: date) -> list[int]:
    out: list[int] = []
    d = first
    while d <= last:
        out.extend(duty_buckets(calendar, d))
        d += timedelta(days=1)
    return out


def _twice_median(xs: list[int]) -> int:
    """Twice the median of integers (an integer: the median may end in .5)."""
    s = sorted(xs)
    n = len(s)
    return s[(n - 1) // 2] + s[n // 2]


def _sqrt(x: Fraction) -> Fraction:
    """Square root, exact when x is the square of a rational."""
    p, q = math.isqrt(x.numerator), math.isqrt(x.denominator)
    if p * p == x.numerator and q * q == x.denominator:
        return Fraction(p, q)
    return Fraction(math.sqrt(x))


def _check_series(series: Mapping[int, int]) -> None:
    for h, c in series.items():
        if not _is_int(h) or h % HOUR:
            raise AlertInputError(f"series keys must be hour bucket starts (epoch s), got {h!r}")
        if not _is_int(c) or c < 0:
            raise AlertInputError(f"series counts must be integers >= 0, got {c!r} at {h}")


def _spike(
    state: AlertState, t: int, inp: SpikeInput, th: SpikeThresholds, calendar: WorkingCalendar
) -> tuple[AlertState, list[Transition]]:
    _check_series(inp.series)
    bucket_t = t // HOUR * HOUR
    n = len(_working_offsets(calendar)) + 1
    first = bucket_t if state.resume_at is None else state.resume_at
    # Enough working days back for the window and every baseline block of `first`.
    lo = calendar.add_working_days(_vn_date(first) - timedelta(days=1), -(th.baseline_days + 2))
    buckets = _duty_span(calendar, lo, _vn_date(bucket_t))
    buckets = buckets[: bisect_right(buckets, bucket_t)]
    # A new state judges the current window only.
    start = len(buckets) - 1 if state.resume_at is None else bisect_right(buckets, first - 1)
    counts = [inp.series.get(h, 0) for h in buckets]
    prefix = [0]
    for c in counts:
        prefix.append(prefix[-1] + c)

    out: list[Transition] = []
    for i in range(max(start, 0), len(buckets)):
        h = buckets[i]
        judged = _judge(i, buckets, prefix, n, inp.covers_from, th)
        if judged is None:
            continue  # baseline not ready: this bucket decides nothing
        x, level_open, line_close, _ = judged
        if state.status is AlertStatus.CLOSED:
            if x >= level_open and _cooled(state, h):
                state = _opened(state, h)
                figures, baseline = _spike_details(buckets, i, n, judged)
                out.append(_transition(state, AlertAction.OPENED, h, h, figures, baseline))
        elif t >= h + HOUR and x <= line_close:
            assert state.opened_at is not None
            at = h + HOUR
            figures, baseline = _spike_details(buckets, i, n, judged)
            tr = _transition(state, AlertAction.CLEARED, at, state.opened_at, figures, baseline)
            out.append(tr)
            state = _cleared(state, at, th.cooldown_s)
    return _evaluated(state, t, resume_at=bucket_t, below_since=state.below_since), out


def _spike_details(
    buckets: list[int],
    i: int,
    n: int,
    judged: tuple[int, int, int, tuple[int, Fraction, Fraction, Fraction]],
) -> tuple[dict[str, int | str | None], dict[str, int | str | None]]:
    """A spike transition's figures and baseline (made only for a transition)."""
    x, level_open, line_close, (blocks, m, mad, spread) = judged
    figures: dict[str, int | str | None] = {
        "became_overdue": x,
        "window_from": buckets[i - n + 1],
        "window_to": buckets[i],
        "window_buckets": n,
    }
    baseline: dict[str, int | str | None] = {
        "blocks": blocks,
        "median": _fixed6(m),
        "mad": _fixed6(mad),
        "spread": _fixed6(spread),
        "open_level": level_open,
        "close_line": line_close,
    }
    return figures, baseline


def _judge(
    i: int, buckets: list[int], prefix: list[int], n: int, covers_from: int, th: SpikeThresholds
) -> tuple[int, int, int, tuple[int, Fraction, Fraction, Fraction]] | None:
    """Window count, open level, close line and the baseline's (blocks, median, MAD,
    spread) at duty bucket i; None if not ready."""
    end = i + 1
    if end - n < 0 or buckets[end - n] < covers_from:
        return None
    x = prefix[end] - prefix[end - n]
    blocks: list[int] = []
    for k in range(1, th.baseline_days + 1):
        lo, hi = end - (k + 1) * n, end - k * n
        if lo < 0 or buckets[lo] < covers_from:
            break
        blocks.append(prefix[hi] - prefix[lo])
    if len(blocks) < th.min_baseline_days:
        return None
    # The median and the MAD on integers (doubled, then quadrupled) and made exact
    # rationals after: sorting Fractions cost a replaying worker a sixth of its time.
    twice_m = _twice_median(blocks)
    m = Fraction(twice_m, 2)
    mad = Fraction(_twice_median([abs(2 * b - twice_m) for b in blocks]), 4)
    spread = max(_MAD_SCALE * mad, _sqrt(m), Fraction(1))
    level_open = max(th.min_count, math.ceil(m + _exact(th.open_k) * spread))
    line_close = math.floor(m + _exact(th.close_k) * spread)
    return x, level_open, line_close, (len(blocks), m, mad, spread)
