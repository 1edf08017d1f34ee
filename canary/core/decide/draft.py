"""The decision being built, and what a decision returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from canary.core import conditions, guards
from canary.core.actions import Action, Route
from canary.core.observation import HookResult, Observation
from canary.core.strategy import Strategy, infer
from canary.core.timefmt import format_time, parse_time
from canary.models.canary import Canary, CanaryStatus, Condition, Phase

#: Condition types canary maintains.
PROMOTED = "Promoted"


READY = "Ready"


PAUSED = "Paused"


#: kstatus's conditions (abnormal-true: present only while True); see kstatus.py.
RECONCILING = "Reconciling"


STALLED = "Stalled"


#: Whether the traffic can detect the judge's minimum effects within the analysis.
TRAFFIC_SUFFICIENT = "TrafficSufficient"


@dataclass(frozen=True)
class DecisionSettings:
    """Controller-wide settings the decision depends on (seconds)."""

    #: Wait used when a Canary sets no progressDeadlineSeconds (Flagger's default).
    default_progress_deadline: float = 600.0
    #: The shortest analysis interval honoured; shorter ones are raised to it. Flagger's
    #: floor is 10 s; tests and demos lower it to compress time.
    min_interval: float = 10.0


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: CanaryStatus
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    #: Run the analysis and decide again with its results.
    needs_metrics: bool = False
    #: Call the webhooks of these types and decide again with their answers.
    needs_hooks: tuple[str, ...] = ()
    #: Read the judge's counters (only) and decide again: a check between steps.
    needs_judge: bool = False
    #: Decide again after this many seconds even if nothing changes.
    wake_after: float | None = None


@dataclass
class Draft:
    """The decision being built: one call of :func:`~canary.core.decide.decide` gathers
    the new status, actions and events here, and the questions it asks of the observation
    (webhooks to call, when to wake)."""

    canary: Canary
    obs: Observation
    settings: DecisionSettings
    status: CanaryStatus
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wake_after: float | None = None
    needs_hooks: list[str] = field(default_factory=list)
    #: The confirm-promotion gate's answer, once asked in this decision.
    promotion_gate: bool | None = None

    @property
    def now(self) -> datetime:
        return self.obs.now

    @property
    def target_name(self) -> str:
        return self.canary.spec.target_ref.name

    @property
    def primary_name(self) -> str:
        return f"{self.canary.spec.target_ref.name}-primary"

    def current_condition(self, type_: str) -> Condition | None:
        return next((c for c in self.status.conditions or [] if c.type == type_), None)

    def primary_unavailable(self) -> str | None:
        """Why the primary cannot serve at all; None while it can."""
        return guards.primary_unavailable(self.obs, self.status.phase, self.primary_name)

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def phase(self, phase: Phase) -> None:
        if self.status.phase != phase:
            self.status.phase = phase
            self.status.last_transition_time = format_time(self.now)

    def condition(self, type_: str, status: Literal["True", "False", "Unknown"], reason: str,
                  message: str) -> bool:
        """Set a condition; True if its status or reason changed."""
        current = list(self.status.conditions or [])
        existing = next((c for c in current if c.type == type_), None)
        changed = existing is None or existing.status != status or existing.reason != reason
        updated = conditions.condition(type_, status, reason, message, previous=existing,
                                       generation=self.obs.generation, now=self.now)
        current = [c for c in current if c.type != type_] + [updated]
        self.status.conditions = sorted(current, key=lambda c: c.type)
        return changed

    def drop_condition(self, type_: str) -> None:
        conditions = [c for c in self.status.conditions or [] if c.type != type_]
        self.status.conditions = conditions or None

    def seconds_in_step(self) -> float:
        started = parse_time(self.status.step_started_at) if self.status.step_started_at else None
        return (self.now - started).total_seconds() if started else 0.0

    def deadline(self) -> float:
        seconds = self.canary.spec.progress_deadline_seconds
        return float(seconds) if seconds else self.settings.default_progress_deadline

    def interval(self) -> float:
        return max(self.canary.spec.analysis.interval_seconds(), self.settings.min_interval)

    @property
    def strategy(self) -> Strategy:
        return infer(self.canary.spec.analysis)

    def analysis_route(self, weight: int) -> Route:
        """How traffic flows while the canary is analysed."""
        analysis = self.canary.spec.analysis
        if self.strategy is Strategy.AB_TESTING:
            return Route(0, match_to_canary=True)
        if self.strategy is Strategy.BLUE_GREEN_MIRRORING or (analysis.mirror and weight == 0):
            # A weighted canary with mirror: true spends its first step on copied traffic.
            return Route(0, mirror_percent=float(analysis.mirror_weight or 100))
        affinity = analysis.session_affinity
        if affinity is not None and weight > 0:
            return Route(weight, sticky_cookie=f"{affinity.cookie_name}="
                         f"{self.status.last_applied_spec}",
                         sticky_max_age=affinity.max_age or 86400)
        return Route(weight)

    def set_route(self, route: Route) -> None:
        """Replace whatever routing this decision asked for with ``route``."""
        self.actions = [a for a in self.actions if not isinstance(a, Route)] + [route]

    def start_step(self) -> None:
        self.status.step_started_at = format_time(self.now, precise=True)

    def wake_in(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.wake_after = seconds if self.wake_after is None else min(self.wake_after, seconds)

    def hook_results(self, type_: str) -> tuple[HookResult, ...] | None:
        """The answers of the webhooks of ``type_`` (empty when there are none), or None
        when they have not been called yet: the decision then asks for them."""
        if not any(h.type == type_ for h in self.canary.spec.analysis.webhooks or []):
            return ()
        results = (self.obs.hooks or {}).get(type_)
        if results is None and type_ not in self.needs_hooks:
            self.needs_hooks.append(type_)
        return results

    def gate(self, type_: str) -> bool | None:
        """Open (every webhook of the type answered 2xx), closed, or None: not asked yet."""
        results = self.hook_results(type_)
        return None if results is None else all(r.passed for r in results)

    def gate_failures(self, type_: str) -> str:
        return "; ".join(f"{r.name}: {r.message}" for r in (self.obs.hooks or {}).get(type_, ())
                         if not r.passed)

    def done(self, needs_metrics: bool = False, needs_judge: bool = False) -> Decision:
        return Decision(status=self.status, actions=tuple(self.actions),
                        events=tuple(self.events), needs_metrics=needs_metrics,
                        needs_hooks=tuple(self.needs_hooks), wake_after=self.wake_after,
                        needs_judge=needs_judge)
