"""Promotion: the primary takes the analysed revision, then all the traffic back."""

from __future__ import annotations

from datetime import timedelta

from canary.core.actions import CallHooks, EnsurePrimary, Route, ScaleCanary
from canary.core.decide.draft import PROMOTED, Draft
from canary.core.decide.rollback import wait_or_roll_back
from canary.core.decide.steady import start_revision
from canary.core.timefmt import format_time, parse_time
from canary.models.canary import Phase


def promotion_confirmed(draft: Draft) -> bool:
    if draft.promotion_gate is not None:  # already asked (and reported) in this decision
        return draft.promotion_gate
    confirmed = draft.gate("confirm-promotion")
    if confirmed is False:
        draft.event("Normal", "WaitingForApproval", f"Promotion of {draft.target_name} waits "
                   f"for approval: {draft.gate_failures('confirm-promotion')}")
    if confirmed is not None:
        draft.promotion_gate = confirmed
    return bool(confirmed)


def begin_promotion(draft: Draft, why: str) -> None:
    draft.phase(Phase.PROMOTING)
    draft.start_step()
    draft.condition(PROMOTED, "Unknown", "Promoting",
                   f"copying revision {draft.status.last_applied_spec} to the primary")
    draft.event("Normal", "Promoting", f"{why}; copying {draft.target_name}'s template to "
               f"{draft.target_name}-primary")
    draft.actions.append(EnsurePrimary(str(draft.status.last_applied_spec)))
    draft.wake_in(draft.deadline())


def steps_after_this(draft: Draft) -> int:
    """How many analysis steps the schedule has after the one ending now."""
    analysis = draft.canary.spec.analysis
    if draft.strategy.iterative:
        return (analysis.iterations or 1) - (draft.status.iterations or 0) - 1
    weight = draft.status.canary_weight or 0
    return len([w for w in analysis.weight_steps() if w > weight])


def promote_early(draft: Draft, why: str, remaining: int) -> None:
    """Every judged metric proved no regression, again at the final weight, and
    promoteEarly is set: skip the rest of the schedule."""
    if draft.strategy.iterative:
        draft.status.iterations = (draft.status.iterations or 0) + 1
        draft.status.canary_weight = 100
        draft.set_route(Route(100))
    begin_promotion(draft, f"The judge proved no regression {why}; skipping the remaining "
                    f"{remaining} step{'s' if remaining != 1 else ''}")


def promote(draft: Draft) -> None:
    """Wait for the primary to roll out the analysed revision (rolling back at the
    deadline), hand the traffic back to it, then finish."""
    target, primary = draft.obs.target, draft.obs.primary
    revision = str(draft.status.last_applied_spec)
    if target.revision != revision:
        start_revision(draft, f"New revision {target.revision} of {draft.target_name} "
                             "detected during promotion; restarting the analysis")
        return
    if primary.ready and primary.revision == revision:
        if _returning_traffic(draft, revision):
            return
        if draft.status.phase == Phase.FINALISING:
            _complete(draft, revision)
        else:
            _finalise(draft, revision)
        return
    draft.actions += [EnsurePrimary(revision), Route(draft.status.canary_weight or 0),
                     ScaleCanary(0 if draft.canary.spec.skip_analysis else None)]
    _report_unready_primary(draft, revision)
    wait_or_roll_back(draft, draft.seconds_in_step(),
                      f"{draft.target_name}-primary did not finish rolling out revision "
                      f"{revision} in {draft.deadline():.0f}s: "
                      f"{primary.detail or 'rollout incomplete'}")


def _returning_traffic(draft: Draft, revision: str) -> bool:
    """Gradual promotion: the primary, now on the new template, takes traffic back
    stepWeightPromotion at a time. True while the canary still has a share."""
    weight = draft.status.canary_weight or 0
    promotion_step = draft.canary.spec.analysis.step_weight_promotion
    if not promotion_step or weight <= 0:
        return False
    draft.actions += [EnsurePrimary(revision), ScaleCanary(None), Route(weight)]
    due = draft.interval() - draft.seconds_in_step()
    if due > 0:
        draft.wake_in(due)
        return True
    weight = max(0, weight - promotion_step)
    draft.status.canary_weight = weight
    draft.start_step()
    draft.set_route(Route(weight))
    draft.event("Normal", "WeightDecreased", f"Promotion: {draft.target_name}-primary "
               f"takes {100 - weight}% of traffic")
    if weight > 0:
        draft.wake_in(draft.interval())
        return True
    return False


def _finalise(draft: Draft, revision: str) -> None:
    """The primary serves the revision: all traffic goes to it. Succeeded is said on the
    next decision, once this one's routing is written, so that a Canary seen Succeeded
    never still sends users to the canary."""
    draft.phase(Phase.FINALISING)
    draft.status.canary_weight = 0
    draft.set_route(Route(0))
    draft.actions = [EnsurePrimary(revision), *draft.actions]
    draft.wake_in(0)


def _complete(draft: Draft, revision: str) -> None:
    """The primary serves the revision and takes all traffic: the rollout succeeded."""
    draft.phase(Phase.SUCCEEDED)
    draft.status.canary_weight = 0
    draft.status.last_promoted_spec = revision
    draft.actions += [EnsurePrimary(revision), Route(0), ScaleCanary(0),
                     CallHooks("post-rollout")]
    message = (f"Promotion of {draft.target_name} revision {revision} completed"
               f"{_recovered_checks(draft)}")
    draft.condition(PROMOTED, "True", "Succeeded", message)
    draft.event("Normal", "Promoted", message)


def _recovered_checks(draft: Draft) -> str:
    """A promoted revision's failed checks leave failedChecks, where next to Succeeded
    they would read as a failure, for the Promoted message, where they read as what they
    were."""
    checks = draft.status.failed_checks or 0
    draft.status.failed_checks = 0
    if not checks:
        return ""
    return f" ({checks} failed check{'s' if checks != 1 else ''} in the analysis, recovered)"


def _report_unready_primary(draft: Draft, revision: str) -> None:
    """The primary has not finished taking the promoted revision: once an analysis
    interval has passed, say why on the Promoted condition, with one event, rather than
    nothing until the deadline."""
    elapsed, grace = draft.seconds_in_step(), draft.interval()
    if elapsed < grace:
        draft.wake_in(grace - elapsed)
        return
    if elapsed >= draft.deadline():
        return  # rolled back now, which says why
    started = parse_time(draft.status.step_started_at) if draft.status.step_started_at \
        else draft.now
    deadline = format_time(started + timedelta(seconds=draft.deadline()))
    message = (f"{draft.target_name}-primary has not finished rolling out revision "
               f"{revision}: {draft.obs.primary.detail or 'rollout incomplete'}; the "
               f"promotion is rolled back if it has not by {deadline}")
    if draft.condition(PROMOTED, "Unknown", "WaitingForPrimary", message):
        draft.event("Warning", "PrimaryNotReady", message)
