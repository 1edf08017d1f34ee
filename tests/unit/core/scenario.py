"""A small world for driving the decision: a Canary, its workloads and a clock."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from canary.core import (
    Decision,
    DecisionSettings,
    EnsurePrimary,
    MetricValue,
    Observation,
    Route,
    ScaleCanary,
    Workload,
    decide,
    evidence,
)
from canary.core.actions import CallHooks, ForgetRequest
from canary.core.observation import (
    MISSING,
    Counters,
    FieldOwner,
    HookResult,
    JudgeReading,
    ManualRequests,
    RouteHold,
)
from canary.models.canary import Canary, JudgedMetricStatus, JudgeStatus, Phase

SETTINGS = DecisionSettings(default_progress_deadline=60, min_interval=1)
START = datetime(2026, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def make_canary(**analysis: Any) -> Canary:
    spec_analysis = {"interval": "10s", "threshold": 2, "maxWeight": 30, "stepWeight": 10,
                     "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}
    spec_analysis.update(analysis)
    spec_analysis = {k: v for k, v in spec_analysis.items() if v is not None}
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop", "generation": 1},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                 "service": {"port": 80}, "analysis": spec_analysis,
                 "progressDeadlineSeconds": 60}})


@dataclass
class World:
    """What the cluster would do in response to the actions, simplified."""

    canary: Canary
    now: datetime = START
    target_revision: str = "rev-1"
    target_replicas: int = 2
    target_ready: bool = True
    #: False once the target Deployment is deleted.
    target_exists: bool = True
    primary_revision: str | None = None
    primary_ready: bool = False
    #: Whether the primary's pods become ready when it takes a new revision.
    primary_rolls_out: bool = True
    #: The primary's pods that can serve (its old ones while a rollout is incomplete).
    primary_available: int = 2
    #: Why the primary is not ready, as the controller words it.
    primary_detail: str = "0 of 2 replicas available"
    #: What the controller found wrong with the Canary's claims and references.
    conflict: str | None = None
    missing_references: tuple[str, ...] = ()
    invalid_references: tuple[str, ...] = ()
    #: Why the controller cannot route with the Canary's spec.provider.
    provider_problem: str | None = None
    #: Why the data plane does not follow the route yet (a Gateway refused it, or has not
    #: reported on it).
    route_pending: RouteHold | None = None
    #: Why the controller's caches may be out of date (a watch catching up).
    stale: str | None = None
    #: Why a new revision must wait for a rollout slot (the controller's limit on
    #: concurrent rollouts); None: it may start.
    rollout_slot: str | None = None
    weight: int = 0
    route: Route | None = None
    success_rate: float | None = 100.0
    #: Why the metrics server cannot answer the threshold queries (None: it answers).
    metrics_outage: str | None = None
    #: How each webhook type answers (True: 2xx); types absent are not configured.
    hooks: dict[str, bool] = field(default_factory=dict)
    hook_calls: list[str] = field(default_factory=list)
    requests: ManualRequests = field(default_factory=ManualRequests)
    decisions: list[Decision] = field(default_factory=list)
    #: Who else owns the target's spec.replicas, as its managedFields say (None: nobody).
    replicas_owner: FieldOwner | None = None
    #: The judged metrics' counters as the controller reads them with the metrics (None:
    #: the controller reads none, as for a Canary without a judge).
    judge_readings: Callable[[World], tuple[JudgeReading, ...]] | None = None

    def observe(self, metrics: bool = False, judge: bool = False) -> Observation:
        target = (Workload(True, self.target_revision, self.target_replicas,
                           ready=self.target_ready and self.target_replicas > 0)
                  if self.target_exists else MISSING)
        primary = (Workload(True, self.primary_revision, 2, ready=self.primary_ready,
                            available=self.primary_available,
                            detail="" if self.primary_ready else self.primary_detail)
                   if self.primary_revision else Workload(False))
        values = (self._measured(),) if metrics else None
        readings = (self.judge_readings(self) if (metrics or judge) and self.judge_readings
                    else None)
        return Observation(now=self.now, target=target, primary=primary, metrics=values,
                           generation=1, requests=self.requests, judge=readings,
                           conflict=self.conflict, missing_references=self.missing_references,
                           invalid_references=self.invalid_references,
                           provider_problem=self.provider_problem,
                           route_pending=self.route_pending, stale=self.stale,
                           rollout_slot=self.rollout_slot,
                           replicas_owner=self.replicas_owner)

    def _measured(self) -> MetricValue:
        if self.metrics_outage is not None:
            return MetricValue("request-success-rate", error=self.metrics_outage,
                               unavailable=True)
        return MetricValue("request-success-rate", self.success_rate)

    def step(self) -> Decision:
        """Decide (with metrics and webhook answers when asked, as the worker does), store
        the status and apply the actions."""
        observation = self.observe()
        decision = decide(self.canary, observation, SETTINGS)
        for _ in range(4):
            if not (decision.needs_metrics or decision.needs_hooks or decision.needs_judge):
                break
            answers = dict(observation.hooks or {})
            for type_ in decision.needs_hooks:
                self.hook_calls.append(type_)
                answers[type_] = (HookResult(type_, type_, self.hooks[type_], "answer"),)
            if decision.needs_judge and not decision.needs_metrics:
                observation = replace(observation, judge=self.observe(judge=True).judge)
            else:
                observation = replace(self.observe(metrics=True), hooks=answers)
            decision = decide(self.canary, observation, SETTINGS)
        assert not (decision.needs_metrics or decision.needs_hooks or decision.needs_judge)
        self.canary = self.canary.model_copy(update={"status": decision.status})
        for action in decision.actions:
            if isinstance(action, EnsurePrimary) and action.revision == self.target_revision:
                if self.primary_revision != action.revision:
                    self.primary_revision, self.primary_ready = (action.revision,
                                                                    self.primary_rolls_out)
            elif isinstance(action, ScaleCanary):
                replicas = 2 if action.replicas is None else action.replicas
                if replicas != self.target_replicas:
                    # Canary's write takes spec.replicas from whoever owned it.
                    self.target_replicas, self.replicas_owner = replicas, None
            elif isinstance(action, Route):
                self.weight = action.canary_weight
                self.route = action
            elif isinstance(action, CallHooks):
                self.hook_calls.append(f"called {action.type}")
            elif isinstance(action, ForgetRequest):
                field_name = f"{action.request}_revision"
                if getattr(self.requests, field_name) == action.revision:
                    self.requests = with_request(self.requests, action.request, None)
        self.decisions.append(decision)
        return decision

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def run_until_quiet(self, limit: int = 100) -> None:
        """Step, sleeping as asked, until nothing asks for a wake-up."""
        for _ in range(limit):
            decision = self.step()
            if decision.wake_after is None:
                return
            self.advance(decision.wake_after)
        raise AssertionError("never settled")

    def phase(self) -> Phase | None:
        """The Canary's phase as the last decision left it: a call, so that a type checker
        does not carry a comparison made before the steps in between over them."""
        return self.canary.status.phase

    def reasons(self) -> list[str]:
        return [e.reason for d in self.decisions for e in d.events]

    def fresh(self) -> World:
        return replace(self, decisions=[])


def with_request(requests: ManualRequests, kind: str, revision: str | None) -> ManualRequests:
    """``requests`` with the revision of one kind of request (``approve``, ``promote`` or
    ``abort``) set, or forgotten with ``None``."""
    match kind:
        case "approve":
            return replace(requests, approve_revision=revision)
        case "promote":
            return replace(requests, promote_revision=revision)
        case "abort":
            return replace(requests, abort_revision=revision)
    raise ValueError(f"no request of kind {kind!r}")


def present(value: T | None) -> T:
    """The value of an optional status field, failing the test where it is missing."""
    assert value is not None
    return value


def judge_of(world: World) -> JudgeStatus:
    """The judge's status, which a judged rollout under way must have."""
    return present(world.canary.status.judge)


def first_metric(world: World) -> JudgedMetricStatus:
    """The status of the judge's first (usually only) metric."""
    return judge_of(world).metrics[0]


def initialized(**analysis: Any) -> World:
    """A world whose Canary is Initialized, with its history cleared."""
    world = World(make_canary(**analysis))
    world.run_until_quiet()
    assert world.canary.status.phase == Phase.INITIALIZED
    world.decisions.clear()
    return world


def promoting_on_an_unready_primary() -> World:
    """An Initialized world whose next revision passed its analysis and is being promoted
    to a primary whose pods never become ready."""
    world = initialized()
    world.target_revision = "rev-2"
    world.primary_rolls_out = False
    decision = world.step()
    while world.canary.status.phase != Phase.PROMOTING:
        world.advance(decision.wake_after or 1)
        decision = world.step()
    return world


@dataclass
class Service:
    """Istio's cumulative counters for the canary and the primary, as Prometheus would
    return them: requests arrive at ``rps`` and split by the world's canary weight (or
    reach the canary as mirrored copies); errors and requests slower than 500 ms fail
    independently (seeded), the canary ``ratio`` times as often as the primary.

    Each reading is checked against the metric's previous one, as the controller asks:
    series lost in between (:meth:`reset_canary`, :meth:`lose_pod`) are reported."""

    rps: float = 200.0
    error_rate: float = 0.05
    slow_rate: float = 0.05
    ratio: float = 1.0
    seed: int = 0
    #: Seconds the primary served alone before the first reading.
    history: float = 60.0
    #: Metrics whose readings fail (Prometheus unreachable, say).
    failing: set[str] = field(default_factory=set)
    #: Why Prometheus cannot answer at all (None: it answers): every reading fails so.
    outage: str | None = None
    #: Metrics for which Prometheus answers with no series at all (a gap in its data,
    #: telemetry off).
    empty: set[str] = field(default_factory=set)
    #: Versions ("canary", "primary") whose requests never reach Prometheus under the
    #: labels the judge asks for.
    unreported: set[str] = field(default_factory=set)
    last: datetime | None = None
    canary: list[int] = field(default_factory=lambda: [0, 0, 0])  # requests, errors, slow
    primary: list[int] = field(default_factory=lambda: [0, 0, 0])
    #: When series were lost, and whose ("canary" or "primary").
    losses: list[tuple[datetime, str]] = field(default_factory=list)
    #: The requests of each version Prometheus shows at each instant read so far.
    shown: dict[float, dict[str, int]] = field(default_factory=dict)
    #: The counters after each advance: (unix seconds, canary, primary).
    history_of_counts: list[tuple[float, list[int], list[int]]] = field(default_factory=list)
    rng: random.Random = field(init=False)
    _carry: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _serve(self, counters: list[int], requests: int, ratio: float) -> None:
        counters[0] += requests
        counters[1] += sum(self.rng.random() < self.error_rate * ratio for _ in range(requests))
        counters[2] += sum(self.rng.random() < self.slow_rate * ratio for _ in range(requests))

    def advance(self, world: World) -> None:
        """Serve the requests of the time since the last reading, at the current route."""
        if self.last is not None:
            due = self._carry + self.rps * (world.now - self.last).total_seconds()
            total = int(due)
            self._carry = due - total
            route = world.route
            if route is not None and route.mirror_percent:
                canary = round(total * route.mirror_percent / 100)
                self._serve(self.primary, total, 1.0)
                self._serve(self.canary, canary, self.ratio)
            else:
                canary = sum(self.rng.random() < world.weight / 100 for _ in range(total))
                self._serve(self.canary, canary, self.ratio)
                self._serve(self.primary, total - canary, 1.0)
        else:
            self.history_of_counts.append(
                ((world.now.timestamp() - self.history), [0, 0, 0], [0, 0, 0]))
            self._serve(self.primary, round(self.rps * self.history), 1.0)
        self.last = world.now
        self.history_of_counts.append((world.now.timestamp(), list(self.canary),
                                       list(self.primary)))

    def counts_at(self, at: float) -> tuple[list[int], list[int]] | None:
        """The counters at ``at``, interpolated between advances (requests are served
        evenly between them); None before the history starts."""
        for (t0, c0, p0), (t1, c1, p1) in zip(self.history_of_counts,
                                              self.history_of_counts[1:], strict=False):
            if t0 <= at <= t1:
                share = (at - t0) / (t1 - t0) if t1 > t0 else 1.0
                return ([round(a + (b - a) * share) for a, b in zip(c0, c1, strict=True)],
                        [round(a + (b - a) * share) for a, b in zip(p0, p1, strict=True)])
        return None

    def _lost(self, version: str) -> None:
        self.losses.append(((self.last or START) + timedelta(microseconds=1), version))

    def reset_canary(self) -> None:
        """The canary's pods restart: its counters start again from zero."""
        self.canary = [0, 0, 0]
        self._lost("canary")

    def lose_pod(self, version: str, requests: int, errors: int, slow: int = 0) -> None:
        """One of ``version``'s pods goes away with the counts it served: they leave the
        sum over its series."""
        counters = self.canary if version == "canary" else self.primary
        for index, count in enumerate((requests, errors, slow)):
            counters[index] -= count
        assert min(counters) >= 0
        self._lost(version)

    @staticmethod
    def buckets(counters: list[int]) -> tuple[tuple[float, int], ...]:
        requests, slow = counters[0], counters[2]
        if requests == 0:
            return ()
        return ((100.0, (requests - slow) // 2), (500.0, requests - slow),
                (float("inf"), requests))

    def _counters(self, version: str, counters: list[int], latency: bool, since: float | None,
                  at: float) -> Counters:
        if version in self.unreported:
            return Counters(present=False, lost=None if since is None else 0,
                            previous=None if since is None else 0)
        self.shown.setdefault(at, {})[version] = counters[0]
        lost = previous = None
        if since is not None:
            lost = sum(1 for moment, who in self.losses
                       if who == version and since < moment.timestamp() <= at)
            previous = self.shown.get(since, {}).get(version, 0)
        if latency:
            return Counters(requests=counters[0], buckets=self.buckets(counters),
                            present=counters[0] > 0, lost=lost, previous=previous)
        return Counters(counters[0], counters[1], present=counters[0] > 0, lost=lost,
                        previous=previous)

    def stale_afterwards(self, version: str, requests: int) -> None:
        """A scrape that failed before the last reading is known only now: Prometheus
        marks one of ``version``'s series stale at that reading, ``requests`` fewer."""
        last = max(self.shown)
        self.shown[last][version] -= requests

    def readings(self, world: World) -> tuple[JudgeReading, ...]:
        self.advance(world)
        judge = world.canary.spec.analysis.judge
        at = math.floor(world.now.timestamp() * 1000) / 1000
        out = []
        for metric in judge.metrics if judge else []:
            # What the controller checks the series against: the metric's last reading.
            since = evidence.previous_reading(world.canary.status.judge, metric.name)
            if self.outage is not None:
                out.append(JudgeReading(metric.name, error=self.outage, unavailable=True))
                continue
            if metric.name in self.failing:
                out.append(JudgeReading(metric.name, error="query failed: timed out"))
                continue
            if metric.name in self.empty:
                out.append(JudgeReading(metric.name, Counters(present=False),
                                        Counters(present=False), at=at, since=since))
                continue
            latency = metric.type == "latency"
            earlier = None
            window = world.canary.spec.analysis.interval_seconds()
            past = self.counts_at(at - window)
            if past is not None and not evidence.has_judged(world.canary.status.judge,
                                                            metric.name):
                # What the controller also reads before the first judged step.
                earlier = JudgeReading(
                    metric.name, self._past("canary", past[0], latency),
                    self._past("primary", past[1], latency), at=at - window)
            out.append(JudgeReading(
                metric.name, self._counters("canary", self.canary, latency, since, at),
                self._counters("primary", self.primary, latency, since, at), at=at,
                since=since, earlier=earlier))
        return tuple(out)

    def _past(self, version: str, counters: list[int], latency: bool) -> Counters:
        if version in self.unreported:
            return Counters(present=False)
        if latency:
            return Counters(requests=counters[0], buckets=self.buckets(counters),
                            present=counters[0] > 0)
        return Counters(counters[0], counters[1], present=counters[0] > 0)


def judged(service: Service | None = None, **judge: Any) -> World:
    """An Initialized world whose analysis has a judge (an error-rate metric unless
    ``metrics`` says otherwise) and whose traffic comes from ``service``."""
    spec = {"metrics": [{"name": "error-rate", "type": "errorRate"}], **judge}
    world = initialized(judge=spec, metrics=[], stepWeight=5, maxWeight=50)
    service = service or Service()
    world.judge_readings = service.readings
    return world
