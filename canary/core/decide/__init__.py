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

and from Initialized, Succeeded or Failed to Progressing again on a new revision: at
once, or after Waiting (a confirm-rollout gate) or Queued (the controller's limit on
concurrent rollouts is reached; see canary.core.queue).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from canary.core.actions import EnsureAutoscaler, ForgetRequest, Route, ScaleCanary
from canary.core.decide.draft import PAUSED, READY, Decision, DecisionSettings, Draft, Event
from canary.core.decide.field_conflict import settle_field_conflict
from canary.core.decide.judge_checks import with_judge_checks
from canary.core.decide.kstatus import summarise
from canary.core.decide.progress import progress
from canary.core.decide.promotion import begin_promotion, promote
from canary.core.decide.readiness import set_readiness
from canary.core.decide.rollback import rollback
from canary.core.decide.routing import note_route_accepted
from canary.core.decide.steady import initialize, steady
from canary.core.decide.target_gone import traffic_back_to_primary
from canary.core.observation import Observation
from canary.models.canary import Canary, CanaryStatus, Phase

__all__ = ["Decision", "DecisionSettings", "Event", "decide"]


def decide(canary: Canary, obs: Observation, settings: DecisionSettings | None = None
           ) -> Decision:
    """The next status and the actions that make the cluster match it. A suspended
    Canary is frozen where it is: not even the primary's autoscaler copy is kept in step
    until it is resumed. Every status carries the conditions GitOps tools wait on
    (see kstatus.py). The target's replicas are left to another manager that keeps
    setting them (see field_conflict.py)."""
    decision = _decide(canary, obs, settings)
    decision = replace(decision, status=summarise(canary, obs, decision.status))
    if canary.spec.suspend or obs.provider_problem or obs.conflict or obs.target_problem:
        return decision  # nothing of the cluster is this Canary's to change
    decision = settle_field_conflict(canary, obs, decision)
    decision = _with_autoscaler(decision, canary, obs)
    return replace(decision, actions=(*decision.actions, *_requests_to_forget(
        decision.status, obs)))


def _requests_to_forget(status: CanaryStatus, obs: Observation) -> tuple[ForgetRequest, ...]:
    """The person's requests that can no longer be served, judged from the state just
    decided (so a lost removal is asked for again by the next decision): an approval
    lives while its revision is held (by a gate, or in the rollout queue, where it still
    stands for the gate), a promote while its revision is analysed, an abort while
    either."""
    held = status.phase in (Phase.WAITING, Phase.QUEUED)
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
    draft = Draft(canary, obs, settings or DecisionSettings(),
                canary.status.model_copy(deep=True))
    draft.status.observed_generation = obs.generation
    if canary.spec.suspend or _stopped(draft):
        return draft.done()
    draft.status.strategy = str(draft.strategy)
    set_readiness(draft)
    note_route_accepted(draft)
    phase = draft.status.phase
    if phase in (None, Phase.INITIALIZING):
        # nothing is created on a spec that cannot run
        if not obs.missing_references and not obs.invalid_references:
            initialize(draft)
    elif phase in (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.WAITING,
                   Phase.QUEUED):
        steady(draft)
    elif phase == Phase.PROGRESSING:
        return _progressing(draft)
    elif phase in (Phase.PROMOTING, Phase.FINALISING):
        promote(draft)
    return draft.done()


def _stopped(draft: Draft) -> bool:
    """Whether the Canary may not move now (a provider canary cannot route with, a
    conflict, a missing or unsupported target, a pause), said in a condition and, when
    that changes, an event. Also notes a resume."""
    obs = draft.obs
    if obs.provider_problem:
        if draft.condition(READY, "False", "UnsupportedProvider", obs.provider_problem):
            draft.event("Warning", "UnsupportedProvider", obs.provider_problem)
        return True
    if obs.conflict:
        if draft.condition(READY, "False", "Conflict", obs.conflict):
            draft.event("Warning", "Conflict", obs.conflict)
        return True
    if not obs.target.exists:
        message = f"Deployment {draft.canary.namespace}/{draft.target_name} not found"
        if draft.condition(READY, "False", "TargetNotFound", message):
            draft.event("Warning", "TargetNotFound", message)
        traffic_back_to_primary(draft, message)
        return True
    if obs.target_problem:
        if draft.condition(READY, "False", "UnsupportedTarget", obs.target_problem):
            draft.event("Warning", "UnsupportedTarget", obs.target_problem)
        return True
    if obs.requests.paused:
        if draft.condition(PAUSED, "True", "PausedByUser", "paused with `canary pause`; "
                          "`canary resume` continues"):
            draft.event("Normal", "Paused", f"{draft.target_name}'s rollout is paused where it is")
        return True
    if any(c.type == PAUSED and c.status == "True" for c in draft.status.conditions or []):
        draft.condition(PAUSED, "False", "Resumed", "resumed with `canary resume`")
        draft.event("Normal", "Resumed", f"{draft.target_name}'s rollout continues")
    return False


def _progressing(draft: Draft) -> Decision:
    """An analysis in progress, unless a person asked to abort or promote it."""
    obs, analysed = draft.obs, draft.status.last_applied_spec
    if obs.requests.abort_revision == analysed and obs.target.revision == analysed:
        rollback(draft, "AbortRequested", f"Rolling back {draft.target_name}: aborted "
                 f"with `canary abort`")
        return draft.done()
    if obs.requests.promote_revision == analysed and obs.target.revision == analysed and \
            obs.target.ready:
        if draft.strategy.iterative:
            draft.status.canary_weight = 100
            draft.actions += [ScaleCanary(None), Route(100)]
        else:
            draft.actions += [ScaleCanary(None), Route(draft.status.canary_weight or 0)]
        begin_promotion(draft, "Promotion requested with `canary promote`")
        return draft.done()
    return with_judge_checks(progress(draft), draft)


def _with_autoscaler(decision: Decision, canary: Canary, obs: Observation) -> Decision:
    """Once the primary exists, its autoscaler copy is kept in step in every phase."""
    if canary.spec.autoscaler_ref is None or not obs.primary.exists or decision.needs_metrics \
            or decision.needs_hooks:
        return decision
    return replace(decision, actions=(*decision.actions, EnsureAutoscaler()))
