"""The decision: given a Canary and what was observed, what should be true next.

Pure: no I/O, no clock (the time comes in the observation), no asyncio. The controller
calls :func:`decide` whenever something changed or a timer fired, writes the returned
status (guarded by resourceVersion) and then carries out the returned actions, which are
idempotent. Because every action follows from the status alone, a controller killed at
any moment and started again converges to the same place: no double promotion, no
forgotten rollback.

A weighted canary goes through these phases::

    Initializing -> Initialized -> Progressing -> Promoting -> Succeeded
                                        |                   \\-> Failed
                                        \\-> Failed (rolled back)

and from Initialized, Succeeded or Failed to Progressing again on a new revision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from canary.core import conditions, guards, judging
from canary.core.actions import (
    Action,
    CallHooks,
    EnsureAutoscaler,
    EnsurePrimary,
    ForgetRequest,
    Route,
    ScaleCanary,
)
from canary.core.analysis import NO_VALUES_CAUSES, failures, judge, scope
from canary.core.judge import Outcome
from canary.core.observation import HookResult, Observation
from canary.core.strategy import Strategy, infer
from canary.core.timefmt import format_time, parse_time
from canary.models.base import format_duration
from canary.models.canary import (
    AnalysisRecord,
    Canary,
    CanaryStatus,
    Condition,
    MetricResult,
    Phase,
    WebhookType,
)

#: Condition types canary maintains.
PROMOTED = "Promoted"
READY = "Ready"
PAUSED = "Paused"
#: Whether the traffic can detect the judge's minimum effects within the analysis.
TRAFFIC_SUFFICIENT = "TrafficSufficient"
#: The judge's checks between steps are at least this far apart (seconds).
MIN_JUDGE_CHECK_SECONDS = 1.0
#: The longest evidence a WeightIncreased event carries (characters).
EVIDENCE_LENGTH = 300


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
class _Step:
    """The decision being built."""

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


def decide(canary: Canary, obs: Observation, settings: DecisionSettings | None = None
           ) -> Decision:
    """The next status and the actions that make the cluster match it. A suspended
    Canary is frozen where it is: not even the primary's autoscaler copy is kept in step
    until it is resumed."""
    decision = _decide(canary, obs, settings)
    if canary.spec.suspend or obs.conflict or obs.target_problem:
        return decision  # nothing of the cluster is this Canary's to change
    decision = _with_autoscaler(decision, canary, obs)
    return replace(decision, actions=(*decision.actions, *_requests_to_forget(
        decision.status, obs)))


def _requests_to_forget(status: CanaryStatus, obs: Observation) -> tuple[ForgetRequest, ...]:
    """The person's requests that can no longer be served, judged from the state just
    decided (so a lost removal is asked for again by the next decision): an approval
    lives while its revision is held, a promote while its revision is analysed, an abort
    while either."""
    held = status.phase == Phase.WAITING
    analysed = status.phase == Phase.PROGRESSING and \
        status.last_applied_spec == obs.target.revision
    live = {"approve": held, "promote": analysed, "abort": held or analysed}
    requested = {"approve": obs.requests.approve_revision,
                 "promote": obs.requests.promote_revision,
                 "abort": obs.requests.abort_revision}
    forget: list[ForgetRequest] = []
    request: Literal["approve", "promote", "abort"]
    for request in ("approve", "promote", "abort"):
        revision = requested[request]
        if revision is not None and not (live[request] and revision == obs.target.revision):
            forget.append(ForgetRequest(request, revision))
    return tuple(forget)


def _decide(canary: Canary, obs: Observation, settings: DecisionSettings | None) -> Decision:
    step = _Step(canary, obs, settings or DecisionSettings(),
                 canary.status.model_copy(deep=True))
    step.status.observed_generation = obs.generation
    if canary.spec.suspend:
        return step.done()
    if obs.conflict:
        if step.condition(READY, "False", "Conflict", obs.conflict):
            step.event("Warning", "Conflict", obs.conflict)
        return step.done()
    if not obs.target.exists:
        message = f"Deployment {canary.namespace}/{step.target_name} not found"
        if step.condition(READY, "False", "TargetNotFound", message):
            step.event("Warning", "TargetNotFound", message)
        return step.done()
    if obs.target_problem:
        if step.condition(READY, "False", "UnsupportedTarget", obs.target_problem):
            step.event("Warning", "UnsupportedTarget", obs.target_problem)
        return step.done()
    if obs.requests.paused:
        if step.condition(PAUSED, "True", "PausedByUser", "paused with `canary pause`; "
                          "`canary resume` continues"):
            step.event("Normal", "Paused", f"{step.target_name}'s rollout is paused where it is")
        return step.done()
    if any(c.type == PAUSED and c.status == "True" for c in step.status.conditions or []):
        step.condition(PAUSED, "False", "Resumed", "resumed with `canary resume`")
        step.event("Normal", "Resumed", f"{step.target_name}'s rollout continues")
    step.status.strategy = str(step.strategy)
    _set_readiness(step)
    phase = step.status.phase
    if phase in (None, Phase.INITIALIZING):
        if not obs.missing_references:  # nothing is created on a spec that cannot run
            _initialize(step)
    elif phase in (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.WAITING):
        _steady(step)
    elif phase == Phase.PROGRESSING:
        if obs.requests.abort_revision == step.status.last_applied_spec and \
                obs.target.revision == step.status.last_applied_spec:
            _rollback(step, "AbortRequested", f"Rolling back {step.target_name}: aborted "
                      f"with `canary abort`")
            return step.done()
        if obs.requests.promote_revision == step.status.last_applied_spec and \
                obs.target.revision == step.status.last_applied_spec and obs.target.ready:
            if step.strategy.iterative:
                step.status.canary_weight = 100
                step.actions += [ScaleCanary(None), Route(100)]
            else:
                step.actions += [ScaleCanary(None), Route(step.status.canary_weight or 0)]
            _begin_promotion(step, "Promotion requested with `canary promote`")
            return step.done()
        return _with_judge_checks(_progress(step), step)
    elif phase in (Phase.PROMOTING, Phase.FINALISING):
        _promote(step)
    return step.done()


def _set_readiness(step: _Step) -> None:
    """The Ready condition: False while a reference is missing or the primary cannot
    serve (a Warning event when that starts, a Normal one when it ends)."""
    problem = guards.readiness_problem(step.obs, step.status.phase, step.primary_name)
    if problem is not None:
        if step.condition(READY, "False", problem.reason, problem.message):
            step.event("Warning", problem.reason, problem.message)
        return
    before = step.current_condition(READY)
    step.condition(READY, "True", "TargetFound",
                   f"Deployment {step.canary.namespace}/{step.target_name} found")
    if before is not None and before.reason in ("PrimaryUnavailable", "PrimaryNotReady"):
        step.event("Normal", "PrimaryReady", f"{step.primary_name} is ready again")


def _with_autoscaler(decision: Decision, canary: Canary, obs: Observation) -> Decision:
    """Once the primary exists, its autoscaler copy is kept in step in every phase."""
    if canary.spec.autoscaler_ref is None or not obs.primary.exists or decision.needs_metrics \
            or decision.needs_hooks:
        return decision
    return replace(decision, actions=(*decision.actions, EnsureAutoscaler()))


def _initialize(step: _Step) -> None:
    target, primary = step.obs.target, step.obs.primary
    assert target.revision is not None
    if step.status.phase is None:
        step.phase(Phase.INITIALIZING)
        step.start_step()
        step.condition(PROMOTED, "Unknown", "Initializing",
                       f"creating {step.target_name}-primary")
        step.event("Normal", "Initializing",
                   f"Creating {step.target_name}-primary and routing all traffic to it")
    step.actions.append(EnsurePrimary(target.revision))
    if primary.exists and primary.ready and primary.revision == target.revision:
        # Only now does the apex Service select the primary's pods: routing before the
        # primary is ready would leave the Service without endpoints.
        step.actions += [Route(0), ScaleCanary(0)]
        step.phase(Phase.INITIALIZED)
        step.status.last_applied_spec = target.revision
        step.status.last_promoted_spec = target.revision
        step.status.canary_weight = 0
        step.status.failed_checks = 0
        step.status.iterations = 0
        step.start_step()
        step.condition(PROMOTED, "True", "Initialized",
                       f"{step.target_name}-primary serves revision {target.revision}")
        step.event("Normal", "Initialized", f"{step.target_name}-primary is ready and takes "
                   f"all traffic; {step.target_name} is scaled to zero")
        return
    remaining = step.deadline() - step.seconds_in_step()
    if remaining <= 0:
        message = (f"{step.target_name}-primary not ready after {step.deadline():.0f}s: "
                   f"{primary.detail or 'waiting for its rollout'}")
        if step.condition(PROMOTED, "False", "ProgressDeadlineExceeded", message):
            step.event("Warning", "ProgressDeadlineExceeded", message)
    else:
        step.wake_in(remaining)


def _steady(step: _Step) -> None:
    _settle_traffic(step)
    revision = step.obs.target.revision
    if revision == step.status.last_applied_spec:
        if step.status.phase == Phase.WAITING:  # the change was withdrawn
            step.phase(Phase.SUCCEEDED if revision == step.status.last_promoted_spec
                       else Phase.FAILED)
        return
    if step.obs.requests.abort_revision == revision:
        # Refused before it started (typically while held by confirm-rollout): the
        # revision is recorded as failed, so only a newer one starts a rollout.
        step.status.last_applied_spec = revision
        step.status.failed_checks = 0
        step.status.iterations = 0
        step.start_step()
        _rollback(step, "AbortRequested", f"Revision {revision} of {step.target_name} "
                  "refused with `canary abort` before its rollout started")
        return
    if _revision_held(step, str(revision)):
        return
    approved = step.obs.requests.approve_revision == revision
    confirmed = True if approved else step.gate("confirm-rollout")
    if confirmed is None:
        return
    if not confirmed:
        message = (f"New revision {revision} of {step.target_name} waits for rollout "
                   f"approval: {step.gate_failures('confirm-rollout')}")
        if step.status.phase != Phase.WAITING:
            step.event("Normal", "WaitingForApproval", message)
        step.phase(Phase.WAITING)
        step.condition(PROMOTED, "Unknown", "WaitingForApproval", message)
        step.wake_in(step.interval())
        return
    _start_revision(step, f"New revision {revision} of {step.target_name} detected")


def _settle_traffic(step: _Step) -> None:
    """All traffic on the primary and the canary scaled to zero, unless the primary has
    no pod to serve it: a rollback then waits, with the canary still serving its share.
    EnsurePrimary restores the primary (a deleted one is recreated while the target still
    has the promoted template; its replicas are put back in any case)."""
    step.actions.append(EnsurePrimary(str(step.status.last_promoted_spec)))
    if (step.status.canary_weight or 0) > 0 and step.primary_unavailable() is not None:
        return
    step.status.canary_weight = 0
    step.actions += [Route(0), ScaleCanary(0)]


def _revision_held(step: _Step, revision: str) -> bool:
    """A new revision waits while the Canary is not Ready (a missing reference, a primary
    that cannot take the traffic back); said once per revision, in Ready and an event.
    ``skipAnalysis`` promotes it anyway: the way out when the primary cannot recover on
    its own template."""
    ready = step.current_condition(READY)
    if ready is None or ready.status == "True" or step.canary.spec.skip_analysis:
        return False
    message = f"{ready.message}; new revision {revision} of {step.target_name} waits"
    if ready.reason != "MissingReference":
        message += " (spec.skipAnalysis: true promotes it without analysis)"
    said = next((c for c in step.canary.status.conditions or [] if c.type == READY), None)
    step.condition(READY, "False", ready.reason, message)
    if said is None or said.message != message:
        step.event("Warning", "RevisionHeld", message)
    return True


def _start_revision(step: _Step, why: str) -> None:
    revision = step.obs.target.revision
    step.status.last_applied_spec = revision
    step.status.canary_weight = 0
    step.status.failed_checks = 0
    step.status.iterations = 0
    step.status.canary_unready_since = None
    step.status.analysis_started_at = None
    step.status.judge = None
    step.drop_condition(TRAFFIC_SUFFICIENT)
    step.start_step()
    step.actions = [a for a in step.actions if not isinstance(a, Route | ScaleCanary)]
    if step.canary.spec.skip_analysis:
        step.phase(Phase.PROMOTING)
        step.condition(PROMOTED, "Unknown", "Promoting", f"promoting revision {revision}")
        step.event("Normal", "Promoting", f"{why}; skipAnalysis is set: promoting it")
        step.actions += [Route(0), ScaleCanary(0), EnsurePrimary(str(revision))]
        step.wake_in(step.deadline())
        return
    step.phase(Phase.PROGRESSING)
    step.condition(PROMOTED, "Unknown", "Progressing", f"analysing revision {revision}")
    step.event("Normal", "NewRevision", f"{why}; starting canary analysis")
    unexcluded = _load_sent_to_the_canary(step)
    if unexcluded is not None:
        step.event("Warning", "JudgedLoadNotExcluded", unexcluded)
    step.actions += [Route(0), ScaleCanary(None)]
    step.wake_in(step.deadline())


#: The host of a webhook's URL.
_URL_HOST = re.compile(r"^https?://(?:[^@/?#]*@)?([^:/?#]+)")


def _load_sent_to_the_canary(step: _Step) -> str | None:
    """Why the judge would see load that only the canary gets: a rollout or pre-rollout
    hook's command (a load tester's ``hey ... http://<service>-canary...``) targets the
    canary's Service, and the load tester (named after the hook's host) is not in
    ``excludeSources``. None when nothing suggests so."""
    analysis = step.canary.spec.analysis
    if analysis.judge is None:
        return None
    service = step.canary.spec.service.name or step.target_name
    canary_host = re.compile(rf"(?<![-a-z0-9.]){re.escape(service)}-canary(?![-a-z0-9])")
    excluded = set(analysis.judge.exclude_sources or ())
    for hook in analysis.webhooks or ():
        if hook.type not in (WebhookType.ROLLOUT, WebhookType.PRE_ROLLOUT) or \
                not canary_host.search((hook.metadata or {}).get("cmd", "")):
            continue
        host = _URL_HOST.match(hook.url)
        source = host.group(1).split(".")[0] if host else None
        if source is not None and source in excluded:
            continue
        who = f"probably {source}, the workload behind {host.group(1)}" if host and source \
            else "the load tester's workload"
        return (f"The {hook.type} hook {hook.name} sends load straight to {service}-canary, "
                f"which only the canary serves, while the judge compares {step.target_name} "
                f"with its primary on requests that reach either at random: add the load "
                f"tester ({who}) to analysis.judge.excludeSources, or its requests bias the "
                "comparison (docs/judge.md)")
    return None


def _progress(step: _Step) -> Decision:
    target = step.obs.target
    if target.revision != step.status.last_applied_spec:
        _start_revision(step, f"New revision {target.revision} of {step.target_name} "
                              "detected during analysis; restarting the analysis")
        return step.done()
    weight = step.status.canary_weight or 0
    started = step.status.analysis_started_at is not None
    step.actions += [EnsurePrimary(str(step.status.last_promoted_spec)), ScaleCanary(None),
                     step.analysis_route(weight) if started else Route(0)]
    if step.primary_unavailable() is not None:
        # Ready says why; the weights hold until the primary can serve again, and the
        # deadline waits too: a rollback would send everything to it.
        step.wake_in(step.interval())
        return step.done()
    if not target.ready:
        if step.status.canary_unready_since is None:
            step.status.canary_unready_since = format_time(step.now, precise=True)
        elapsed = (step.now - parse_time(step.status.canary_unready_since)).total_seconds()
        _wait_or_roll_back(step, elapsed, f"{step.target_name} not ready for "
                           f"{step.deadline():.0f}s: {target.detail or 'waiting for its rollout'}")
        return step.done()
    step.status.canary_unready_since = None
    steps = step.canary.spec.analysis.weight_steps()
    if not started:
        if step.status.failed_checks and step.seconds_in_step() < step.interval():
            step.wake_in(step.interval() - step.seconds_in_step())
            return step.done()
        ready_to_start = step.gate("pre-rollout")
        if ready_to_start is None:
            return step.done()
        if not ready_to_start:
            _failed_check(step, f"pre-rollout hooks failed: {step.gate_failures('pre-rollout')}")
            return step.done()
        mirror_first = not step.strategy.iterative and bool(step.canary.spec.analysis.mirror)
        if not step.strategy.iterative and not mirror_first and \
                not _traffic_increase_confirmed(step, steps[0]):
            return step.done()
        judge_spec = step.canary.spec.analysis.judge
        if judge_spec is not None:
            # The judge's counts start from the counters as they are before any traffic
            # reaches the canary.
            if step.obs.judge is None:
                return step.done(needs_metrics=True)
            step.status.judge = judging.begin(judge_spec, str(step.status.last_applied_spec))
            _judge(step)
        # Traffic reaches the canary only now, so the first interval starts now too.
        step.status.analysis_started_at = format_time(step.now, precise=True)
        if step.strategy.iterative:
            _start_iterations(step)
        elif mirror_first:
            _start_mirroring(step)
        else:
            _set_weight(step, steps[0])
        return step.done()
    due = step.interval() - step.seconds_in_step()
    if due > 0:
        return _between_steps(step, due)
    rollback_requests = step.hook_results("rollback")
    rollout_hooks = step.hook_results("rollout")
    if step.obs.metrics is None or rollback_requests is None or rollout_hooks is None:
        return step.done(needs_metrics=step.obs.metrics is None)
    requested = [r for r in rollback_requests if r.passed]
    if requested:
        _rollback(step, "RollbackRequested", f"Rolling back {step.target_name}: requested by "
                  f"the rollback hook {', '.join(r.name for r in requested)}")
        return step.done()
    results = _analyse(step)
    verdict = _judge(step)
    failed = failures(results)
    step.start_step()
    step.wake_in(step.interval())
    if verdict is not None and verdict.outcome is Outcome.REGRESSION:
        assert verdict.assessment is not None
        _rollback(step, "RegressionDetected", f"Rolling back {step.target_name}: the judge "
                  f"found a regression in {verdict.metric}: {verdict.assessment.describe()}")
        return step.done()
    if failed:
        _failed_check(step, _summary(failed))
        return step.done()
    judge_spec = step.canary.spec.analysis.judge
    if verdict is not None and verdict.outcome is Outcome.NO_REGRESSION_PROVEN and \
            judge_spec is not None and judge_spec.promote_early and \
            _steps_after_this(step) > 0 and _promotion_confirmed(step):
        _promote_early(step, verdict)
        return step.done()
    if step.strategy.iterative:
        done = (step.status.iterations or 0) + 1
        step.status.iterations = done
        total = step.canary.spec.analysis.iterations or 1
        if done < total:
            step.event("Normal", "IterationPassed", f"Analysis of {step.target_name} passed "
                       f"({done}/{total} iterations)")
            return step.done()
        if not _promotion_confirmed(step):
            return step.done()
        # Blue/green and A/B: all traffic switches to the canary at once while the
        # primary takes on the new template.
        step.status.canary_weight = 100
        step.set_route(Route(100))
        _begin_promotion(step, f"Analysis passed {done}/{total} iterations; all traffic "
                         f"switched to {step.target_name}")
        return step.done()
    later = [w for w in steps if w > weight]
    if later:
        if _traffic_increase_confirmed(step, later[0]):
            _set_weight(step, later[0])
    elif _promotion_confirmed(step):
        _begin_promotion(step, f"Analysis passed at weight {weight}")
    return step.done()


def _judge_check_interval(step: _Step) -> float | None:
    """Seconds between the judge's checks within a step; None: once per step."""
    judge_spec = step.canary.spec.analysis.judge
    every = judge_spec.check_interval_seconds() if judge_spec is not None else None
    if every is None or every >= step.interval():
        return None
    return max(every, MIN_JUDGE_CHECK_SECONDS)


def _with_judge_checks(decision: Decision, step: _Step) -> Decision:
    """While the analysis runs, wake up for the judge's next check within the step."""
    every = _judge_check_interval(step)
    status = decision.status
    if every is None or decision.wake_after is None or status.phase != Phase.PROGRESSING or \
            status.analysis_started_at is None or status.judge is None:
        return decision
    return replace(decision, wake_after=min(decision.wake_after, every))


def _between_steps(step: _Step, due: float) -> Decision:
    """Wait for the step's end; with the judge's ``checkInterval``, read its counters in
    the meantime and roll back as soon as a regression is proven."""
    every = _judge_check_interval(step)
    if every is None or step.status.judge is None:
        step.wake_in(due)
        return step.done()
    last = step.status.judge.last_reading_at
    since = (step.now - parse_time(last)).total_seconds() if last else every
    if since < every:
        step.wake_in(min(due, every - since))
        return step.done()
    if step.obs.judge is None:
        return step.done(needs_judge=True)
    verdict = _judge(step, between_steps=True)
    if verdict is not None and verdict.outcome is Outcome.REGRESSION:
        assert verdict.assessment is not None
        _rollback(step, "RegressionDetected", f"Rolling back {step.target_name}: the judge "
                  f"found a regression in {verdict.metric} between steps: "
                  f"{verdict.assessment.describe()}")
        return step.done()
    step.wake_in(min(due, every))
    return step.done()


def _failed_check(step: _Step, summary: str) -> None:
    checks = (step.status.failed_checks or 0) + 1
    step.status.failed_checks = checks
    threshold = step.canary.spec.analysis.threshold
    step.start_step()
    step.wake_in(step.interval())
    if checks >= threshold:
        _rollback(step, "AnalysisFailed", f"Rolling back {step.target_name}: {summary} "
                  f"(failed checks {checks}/{threshold})")
    else:
        step.event("Warning", "AnalysisFailed", f"Halt advancement of {step.target_name}: "
                   f"{summary} (failed checks {checks}/{threshold})")


def _traffic_increase_confirmed(step: _Step, weight: int) -> bool:
    confirmed = step.gate("confirm-traffic-increase")
    if confirmed is False:
        step.event("Normal", "WaitingForApproval", f"Weight {weight} for {step.target_name} "
                   f"waits for approval: {step.gate_failures('confirm-traffic-increase')}")
        step.start_step()
        step.wake_in(step.interval())
    return bool(confirmed)


def _promotion_confirmed(step: _Step) -> bool:
    if step.promotion_gate is not None:  # already asked (and reported) in this decision
        return step.promotion_gate
    confirmed = step.gate("confirm-promotion")
    if confirmed is False:
        step.event("Normal", "WaitingForApproval", f"Promotion of {step.target_name} waits "
                   f"for approval: {step.gate_failures('confirm-promotion')}")
    if confirmed is not None:
        step.promotion_gate = confirmed
    return bool(confirmed)


def _judge(step: _Step, between_steps: bool = False) -> judging.Verdict | None:
    """Take this step's counter readings into the judge's evidence (in the status);
    ``between_steps``: a check within a step, which takes only clean readings."""
    judge_spec = step.canary.spec.analysis.judge
    if judge_spec is None:
        if step.status.judge is not None:  # the judge was removed from the spec
            step.status.judge = None
            step.drop_condition(TRAFFIC_SUFFICIENT)
        return None
    revision = str(step.status.last_applied_spec)
    current = step.status.judge
    if current is None or current.revision != revision:
        current = judging.begin(judge_spec, revision)
    before = current.outcome
    updated, verdict = judging.advance(judge_spec, current, step.obs.judge or (), step.now,
                                       _power_plan(step), _canary_had_traffic(step),
                                       between_steps=between_steps)
    step.status.judge = updated
    for note in verdict.skipped:
        step.event("Warning", "JudgeSkippedStep", f"No evidence from {note.metric} for "
                   f"{step.target_name} in this step: {note.message}")
    if verdict.no_requests:
        step.condition(TRAFFIC_SUFFICIENT, "False", "NoRequests", "; ".join(
            f"{n.metric}: {n.message}" for n in verdict.no_requests))
    elif verdict.power_checked:
        if verdict.underpowered:
            message = "; ".join(n.message for n in verdict.underpowered)
            if step.condition(TRAFFIC_SUFFICIENT, "False", "InsufficientTraffic", message):
                step.event("Warning", "InsufficientTraffic", f"{step.target_name}: {message}")
        else:
            step.condition(TRAFFIC_SUFFICIENT, "True", "SufficientTraffic", "; ".join(
                m.power.message for m in updated.metrics if m.power is not None))
    if verdict.outcome is Outcome.NO_REGRESSION_PROVEN and before != updated.outcome and \
            not judge_spec.promote_early:
        step.event("Normal", "NoRegressionProven", f"The judge proved no regression of "
                   f"{step.target_name} (promoteEarly is off: the analysis continues): "
                   f"{verdict.summary}")
    return verdict


def _canary_had_traffic(step: _Step) -> bool:
    """Whether the step ending now routed (or mirrored) requests to the canary."""
    if step.status.analysis_started_at is None:
        return False  # the reading before any traffic moves
    route = step.analysis_route(step.status.canary_weight or 0)
    return route.canary_weight > 0 or bool(route.mirror_percent) or route.match_to_canary


def _power_plan(step: _Step) -> judging.PowerPlan:
    """The canary's share of the requests in each step of the analysis."""
    analysis = step.canary.spec.analysis
    if step.strategy.iterative:
        shares: tuple[float | None, ...] = (None,) * (analysis.iterations or 1)
    else:
        shares = tuple(w / 100 for w in analysis.weight_steps())
        if analysis.mirror:
            shares = (None, *shares)
    return judging.PowerPlan(shares=shares, interval=step.interval())


def _steps_after_this(step: _Step) -> int:
    """How many analysis steps the schedule has after the one ending now."""
    analysis = step.canary.spec.analysis
    if step.strategy.iterative:
        return (analysis.iterations or 1) - (step.status.iterations or 0) - 1
    weight = step.status.canary_weight or 0
    return len([w for w in analysis.weight_steps() if w > weight])


def _promote_early(step: _Step, verdict: judging.Verdict) -> None:
    """Every judged metric proved no regression and promoteEarly is set: skip the rest of
    the schedule."""
    remaining = _steps_after_this(step)
    if step.strategy.iterative:
        step.status.iterations = (step.status.iterations or 0) + 1
        step.status.canary_weight = 100
        step.set_route(Route(100))
    _begin_promotion(step, f"The judge proved no regression ({verdict.summary}); skipping "
                     f"the remaining {remaining} step{'s' if remaining != 1 else ''}")


def _start_iterations(step: _Step) -> None:
    step.start_step()
    route = step.analysis_route(0)
    step.set_route(route)
    if step.strategy is Strategy.AB_TESTING:
        how = "matching requests go to the canary"
    elif step.strategy is Strategy.BLUE_GREEN_MIRRORING:
        how = f"{route.mirror_percent or 100:g}% of requests are mirrored to the canary"
    else:
        how = "the primary keeps all traffic"
    step.event("Normal", "AnalysisStarted", f"Analysing {step.target_name} "
               f"({step.strategy}, {step.canary.spec.analysis.iterations} iterations): {how}")
    step.wake_in(step.interval())


def _start_mirroring(step: _Step) -> None:
    """The first step of a weighted canary with ``mirror: true``: users are served by the
    primary while a copy of their requests exercises the canary."""
    step.start_step()
    route = step.analysis_route(0)
    step.set_route(route)
    step.event("Normal", "AnalysisStarted", f"Analysing {step.target_name}: "
               f"{route.mirror_percent or 100:g}% of requests are mirrored to the canary "
               "before any weight moves to it")
    step.wake_in(step.interval())


def _begin_promotion(step: _Step, why: str) -> None:
    step.phase(Phase.PROMOTING)
    step.start_step()
    step.condition(PROMOTED, "Unknown", "Promoting",
                   f"copying revision {step.status.last_applied_spec} to the primary")
    step.event("Normal", "Promoting", f"{why}; copying {step.target_name}'s template to "
               f"{step.target_name}-primary")
    step.actions.append(EnsurePrimary(str(step.status.last_applied_spec)))
    step.wake_in(step.deadline())


def _set_weight(step: _Step, weight: int) -> None:
    evidence = _evidence(step)
    step.status.canary_weight = weight
    step.start_step()
    step.set_route(step.analysis_route(weight))
    step.event("Normal", "WeightIncreased", f"Advance {step.target_name} canary weight to "
               f"{weight}" + (f": {evidence}" if evidence else ""))
    step.wake_in(step.interval())


def _evidence(step: _Step) -> str:
    """What the analysis of this decision found (each check against its bound, then the
    judge's summary), cut at EVIDENCE_LENGTH; empty when none ran in it (the first step)."""
    record = step.status.last_analysis
    if record is None or record.revision != step.status.last_applied_spec or \
            record.time != format_time(step.now, precise=True):
        return ""
    parts = [_passed(r) for r in record.results]
    if step.status.judge is not None:
        parts += [judging.describe(m) for m in step.status.judge.metrics]
    text = "; ".join(parts)
    return text if len(text) <= EVIDENCE_LENGTH else text[:EVIDENCE_LENGTH] + "..."


def _passed(result: MetricResult) -> str:
    """A passed check: its value against its bounds."""
    if result.value is None:
        return f"{result.name} {result.verdict.lower()}"
    bounds = [f">= {result.min:g}" if result.min is not None else "",
              f"<= {result.max:g}" if result.max is not None else ""]
    shown = ", ".join(b for b in bounds if b)
    return f"{result.name} {result.value:g}" + (f" ({shown})" if shown else "")


def _analyse(step: _Step) -> list[MetricResult]:
    measured = {m.name: m for m in step.obs.metrics or ()}
    results = [MetricResult(name=f"webhook/{hook.name}",
                            verdict="Passed" if hook.passed else "Failed",
                            message=hook.message or None)
               for hook in (step.obs.hooks or {}).get("rollout", ())]
    for metric in step.canary.spec.analysis.metrics or []:
        value = measured.get(metric.name)
        if value is None:
            results.append(MetricResult(name=metric.name, verdict="Error",
                                        message="the metric was not measured"))
        else:
            interval = metric.interval or format_duration(step.interval())
            results.append(judge(metric, value, scope(step.canary.namespace,
                                                      step.target_name, interval)))
    step.status.last_analysis = AnalysisRecord(
        time=format_time(step.now, precise=True), revision=str(step.status.last_applied_spec),
        weight=step.status.canary_weight or 0, results=results)
    return results


def _summary(failed: list[MetricResult]) -> str:
    """The failed checks in a line. Metrics without values are named together by what
    they selected (no traffic usually empties them all), then the usual causes, once."""
    parts = [_describe(r) for r in failed if r.verdict != "NoValues"]
    empty: dict[str, list[str]] = {}
    for result in failed:
        if result.verdict == "NoValues":
            empty.setdefault(result.message or "no values", []).append(result.name)
    parts += [f"{', '.join(names)}: {message}" for message, names in empty.items()]
    text = "; ".join(parts)
    return f"{text} ({NO_VALUES_CAUSES})" if empty else text


def _describe(result: MetricResult) -> str:
    if result.verdict in ("NoValues", "Error") or result.value is None:
        return f"{result.name}: {result.message}"
    bound = (f">= {result.min:g}" if result.min is not None and result.value is not None
             and result.value < result.min else f"<= {result.max:g}")
    return f"{result.name} {result.value:g} (must be {bound})"


def _rollback(step: _Step, reason: str, message: str) -> None:
    step.phase(Phase.FAILED)
    step.status.canary_unready_since = None
    unavailable = step.primary_unavailable()
    if unavailable is not None and (step.status.canary_weight or 0) > 0:
        # Rolling back onto a primary with no pod would fail every request: the canary
        # keeps its share until the primary is restored (see _settle_traffic).
        step.actions = [EnsurePrimary(str(step.status.last_promoted_spec))]
        message += (f"; traffic stays {step.status.canary_weight}% on {step.target_name} "
                    f"until the primary can serve: {unavailable}")
    else:
        step.status.canary_weight = 0
        step.actions = [Route(0), ScaleCanary(0)]
    step.condition(PROMOTED, "False", reason, message)
    step.event("Warning", "RolledBack", message)
    step.actions.append(CallHooks("post-rollout"))
    step.wake_after = None


def _promote(step: _Step) -> None:
    target, primary = step.obs.target, step.obs.primary
    revision = str(step.status.last_applied_spec)
    if target.revision != revision:
        _start_revision(step, f"New revision {target.revision} of {step.target_name} "
                              "detected during promotion; restarting the analysis")
        return
    weight = step.status.canary_weight or 0
    promotion_step = step.canary.spec.analysis.step_weight_promotion
    if primary.ready and primary.revision == revision and promotion_step and weight > 0:
        # Gradual promotion: the primary, now on the new template, takes traffic back
        # stepWeightPromotion at a time.
        step.actions += [EnsurePrimary(revision), ScaleCanary(None), Route(weight)]
        due = step.interval() - step.seconds_in_step()
        if due > 0:
            step.wake_in(due)
            return
        weight = max(0, weight - promotion_step)
        step.status.canary_weight = weight
        step.start_step()
        step.set_route(Route(weight))
        step.event("Normal", "WeightDecreased", f"Promotion: {step.target_name}-primary "
                   f"takes {100 - weight}% of traffic")
        if weight > 0:
            step.wake_in(step.interval())
            return
    if primary.ready and primary.revision == revision:
        step.phase(Phase.SUCCEEDED)
        step.status.canary_weight = 0
        step.status.last_promoted_spec = revision
        step.actions += [EnsurePrimary(revision), Route(0), ScaleCanary(0),
                         CallHooks("post-rollout")]
        message = (f"Promotion of {step.target_name} revision {revision} completed"
                   f"{_recovered_checks(step)}")
        step.condition(PROMOTED, "True", "Succeeded", message)
        step.event("Normal", "Promoted", message)
        return
    step.actions += [EnsurePrimary(revision), Route(weight),
                     ScaleCanary(0 if step.canary.spec.skip_analysis else None)]
    _report_unready_primary(step, revision)
    _wait_or_roll_back(step, step.seconds_in_step(),
                       f"{step.target_name}-primary did not finish rolling out revision "
                       f"{revision} in {step.deadline():.0f}s: "
                       f"{primary.detail or 'rollout incomplete'}")


def _recovered_checks(step: _Step) -> str:
    """A promoted revision's failed checks leave failedChecks, where next to Succeeded
    they would read as a failure, for the Promoted message, where they read as what they
    were."""
    checks = step.status.failed_checks or 0
    step.status.failed_checks = 0
    if not checks:
        return ""
    return f" ({checks} failed check{'s' if checks != 1 else ''} in the analysis, recovered)"


def _report_unready_primary(step: _Step, revision: str) -> None:
    """The primary has not finished taking the promoted revision: once an analysis
    interval has passed, say why on the Promoted condition, with one event, rather than
    nothing until the deadline."""
    elapsed, grace = step.seconds_in_step(), step.interval()
    if elapsed < grace:
        step.wake_in(grace - elapsed)
        return
    if elapsed >= step.deadline():
        return  # rolled back now, which says why
    started = parse_time(step.status.step_started_at) if step.status.step_started_at \
        else step.now
    deadline = format_time(started + timedelta(seconds=step.deadline()))
    message = (f"{step.target_name}-primary has not finished rolling out revision "
               f"{revision}: {step.obs.primary.detail or 'rollout incomplete'}; the "
               f"promotion is rolled back if it has not by {deadline}")
    if step.condition(PROMOTED, "Unknown", "WaitingForPrimary", message):
        step.event("Warning", "PrimaryNotReady", message)


def _wait_or_roll_back(step: _Step, elapsed: float, message: str) -> None:
    """Past the progress deadline: roll back with ``message``; before it: wake at it."""
    if elapsed >= step.deadline():
        _rollback(step, "ProgressDeadlineExceeded", message)
    else:
        step.wake_in(step.deadline() - elapsed)
