"""An analysis in progress: starting it, then at the end of each step checking, judging and
moving the canary on (or back)."""

from __future__ import annotations

from canary.core import evidence
from canary.core.actions import EnsurePrimary, Route, ScaleCanary
from canary.core.decide.bake import BakeStep, bake_step, bake_summary, baking, begin_bake
from canary.core.decide.checks import analyse, failed_check, findings, summarise_failures
from canary.core.decide.draft import Decision, Draft
from canary.core.decide.judge_checks import apply_judge, between_steps
from canary.core.decide.metrics_outage import hold_for_metrics, metrics_outage
from canary.core.decide.no_evidence import evidence_returned, hold_for_evidence, without_evidence
from canary.core.decide.no_requests import hold_weight, requests_returned, without_requests
from canary.core.decide.promotion import (
    begin_promotion,
    promote_early,
    promotion_confirmed,
    steps_after_this,
)
from canary.core.decide.rollback import rollback, wait_or_roll_back
from canary.core.decide.routing import route_in_force
from canary.core.decide.steady import start_revision
from canary.core.judge import Outcome
from canary.core.strategy import Strategy
from canary.core.thresholds import failures
from canary.core.timefmt import format_time, parse_time
from canary.models.canary import JudgeBake


def progress(draft: Draft) -> Decision:
    """One decision while the revision is analysed: hold the traffic where it is, start
    the analysis once the canary is ready, then wait for each step's end and act on it,
    once the route is in force."""
    target = draft.obs.target
    if target.revision != draft.status.last_applied_spec:
        start_revision(draft, f"New revision {target.revision} of {draft.target_name} "
                              "detected during analysis; restarting the analysis")
        return draft.done()
    started = draft.status.analysis_started_at is not None
    _hold_traffic(draft, started)
    if draft.primary_unavailable() is not None:
        # Ready says why; the weights hold until the primary can serve again, and the
        # deadline waits too: a rollback would send everything to it.
        draft.wake_in(draft.interval())
        return draft.done()
    if not _canary_ready(draft):
        return draft.done()
    due = draft.interval() - draft.seconds_in_step()
    if started and due > 0:
        return between_steps(draft, due)
    # Weights move, and steps are judged, only on a route the data plane follows.
    if not route_in_force(draft):
        return draft.done()
    return _end_step(draft) if started else _start_analysis(draft)


def _hold_traffic(draft: Draft, started: bool) -> None:
    """Keep the primary, the canary and the routing as the analysis has them."""
    weight = draft.status.canary_weight or 0
    draft.actions += [EnsurePrimary(str(draft.status.last_promoted_spec)), ScaleCanary(None),
                     draft.analysis_route(weight) if started else Route(0)]


def _canary_ready(draft: Draft) -> bool:
    """Whether the canary's rollout is complete; while it is not, wait for it until the
    progress deadline, then roll back."""
    target = draft.obs.target
    if target.ready:
        draft.status.canary_unready_since = None
        return True
    if draft.status.canary_unready_since is None:
        draft.status.canary_unready_since = format_time(draft.now, precise=True)
    elapsed = (draft.now - parse_time(draft.status.canary_unready_since)).total_seconds()
    wait_or_roll_back(draft, elapsed, f"{draft.target_name} not ready for "
                      f"{draft.deadline():.0f}s: {target.detail or 'waiting for its rollout'}")
    return False


def _start_analysis(draft: Draft) -> Decision:
    """The first traffic to the canary, once the pre-rollout gate (and, for a weighted
    canary, the traffic-increase gate) lets it, and the judge has its starting counts."""
    if draft.status.failed_checks and draft.seconds_in_step() < draft.interval():
        draft.wake_in(draft.interval() - draft.seconds_in_step())
        return draft.done()
    ready_to_start = draft.gate("pre-rollout")
    if ready_to_start is None:
        return draft.done()
    if not ready_to_start:
        failed_check(draft, f"pre-rollout hooks failed: {draft.gate_failures('pre-rollout')}")
        return draft.done()
    steps = draft.canary.spec.analysis.weight_steps()
    mirror_first = not draft.strategy.iterative and bool(draft.canary.spec.analysis.mirror)
    if not draft.strategy.iterative and not mirror_first and \
            not _traffic_increase_confirmed(draft, steps[0]):
        return draft.done()
    judge_spec = draft.canary.spec.analysis.judge
    if judge_spec is not None:
        # The judge's counts start from the counters as they are before any traffic
        # reaches the canary.
        if draft.obs.judge is None:
            return draft.done(needs_metrics=True)
        draft.status.judge = evidence.begin(judge_spec, str(draft.status.last_applied_spec))
        apply_judge(draft)
    # Traffic reaches the canary only now, so the first interval starts now too.
    draft.status.analysis_started_at = format_time(draft.now, precise=True)
    if draft.strategy.iterative:
        _start_iterations(draft)
    elif mirror_first:
        _start_mirroring(draft)
    else:
        _set_weight(draft, steps[0])
    return draft.done()


def _end_step(draft: Draft) -> Decision:
    """A step is over: with the metrics and the hooks' answers, roll back on a rollback
    request, a regression or too many failed checks; else move on."""
    rollback_requests = draft.hook_results("rollback")
    rollout_hooks = draft.hook_results("rollout")
    if draft.obs.metrics is None or rollback_requests is None or rollout_hooks is None:
        return draft.done(needs_metrics=draft.obs.metrics is None)
    requested = [r for r in rollback_requests if r.passed]
    if requested:
        rollback(draft, "RollbackRequested", f"Rolling back {draft.target_name}: requested by "
                 f"the rollback hook {', '.join(r.name for r in requested)}")
        return draft.done()
    results, outage = metrics_outage(draft, analyse(draft))
    verdict = apply_judge(draft)
    failed = failures(results)
    step_began = draft.status.step_started_at
    draft.start_step()
    draft.wake_in(draft.interval())
    if verdict is not None and verdict.outcome is Outcome.REGRESSION:
        assert verdict.assessment is not None
        rollback(draft, "RegressionDetected", f"Rolling back {draft.target_name}: the judge "
                 f"found a regression in {verdict.metric}: {verdict.assessment.describe()}")
    elif failed:
        failed_check(draft, summarise_failures(failed))
    elif outage:
        hold_for_metrics(draft, outage)
    elif without_requests(verdict):
        assert verdict is not None
        hold_weight(draft, verdict, step_began)
    elif without_evidence(verdict):
        assert verdict is not None
        hold_for_evidence(draft, verdict, step_began)
    else:
        requests_returned(draft)
        evidence_returned(draft)
        _move_on(draft, verdict)
    return draft.done()


def _move_on(draft: Draft, verdict: evidence.Verdict | None) -> None:
    """A step passed: bake, promote early, count the iteration, or take the next weight."""
    bake = baking(draft)
    if bake is not None:
        _bake(draft, bake)
    elif verdict is not None and _bakes(draft, verdict):
        _begin_bake(draft, verdict)
    elif draft.strategy.iterative:
        _next_iteration(draft)
    else:
        _next_weight(draft)


def _bakes(draft: Draft, verdict: evidence.Verdict) -> bool:
    """The judge proved no regression, promoteEarly is set and steps remain to be
    skipped: the canary goes on to bake at its final weight."""
    judge_spec = draft.canary.spec.analysis.judge
    return verdict.outcome is Outcome.NO_REGRESSION_PROVEN and judge_spec is not None and \
        judge_spec.promote_early and steps_after_this(draft) > 0


def _begin_bake(draft: Draft, verdict: evidence.Verdict) -> None:
    """The proof counts as a passed step; a weighted canary takes maxWeight at once
    (once the traffic-increase gate lets it)."""
    if draft.strategy.iterative:
        begin_bake(draft, verdict.summary)
        _next_iteration(draft)
        return
    top = draft.canary.spec.analysis.weight_steps()[-1]
    if _traffic_increase_confirmed(draft, top):
        begin_bake(draft, verdict.summary)
        _set_weight(draft, top)


def _bake(draft: Draft, bake: JudgeBake) -> None:
    """A step of the bake passed: promote early once it is proven, else go on as the
    schedule would (the iterations count on; the skipped weights' time runs out)."""
    step = bake_step(draft, bake)
    if step is BakeStep.PROVEN:
        if promotion_confirmed(draft):
            promote_early(draft, bake_summary(draft, bake), max(bake.steps_left - 1, 0))
    elif draft.strategy.iterative:
        _next_iteration(draft)
    elif step is BakeStep.SCHEDULE_OVER and promotion_confirmed(draft):
        begin_promotion(draft, f"Analysis passed at weight {draft.status.canary_weight}, "
                        "the bake having lasted the skipped steps")


def _next_iteration(draft: Draft) -> None:
    """Blue/green and A/B: count the passed iteration; after the last, all traffic
    switches to the canary at once while the primary takes on the new template."""
    done = (draft.status.iterations or 0) + 1
    draft.status.iterations = done
    total = draft.canary.spec.analysis.iterations or 1
    if done < total:
        draft.event("Normal", "IterationPassed", f"Analysis of {draft.target_name} passed "
                   f"({done}/{total} iterations)")
        return
    if not promotion_confirmed(draft):
        return
    draft.status.canary_weight = 100
    draft.set_route(Route(100))
    begin_promotion(draft, f"Analysis passed {done}/{total} iterations; all traffic "
                    f"switched to {draft.target_name}")


def _next_weight(draft: Draft) -> None:
    """A weighted canary: the next weight, or the promotion after the last."""
    weight = draft.status.canary_weight or 0
    later = [w for w in draft.canary.spec.analysis.weight_steps() if w > weight]
    if later:
        if _traffic_increase_confirmed(draft, later[0]):
            _set_weight(draft, later[0])
    elif promotion_confirmed(draft):
        begin_promotion(draft, f"Analysis passed at weight {weight}")


def _start_iterations(draft: Draft) -> None:
    draft.start_step()
    route = draft.analysis_route(0)
    draft.set_route(route)
    if draft.strategy is Strategy.AB_TESTING:
        how = "matching requests go to the canary"
    elif draft.strategy is Strategy.BLUE_GREEN_MIRRORING:
        how = f"{route.mirror_percent or 100:g}% of requests are mirrored to the canary"
    else:
        how = "the primary keeps all traffic"
    draft.event("Normal", "AnalysisStarted", f"Analysing {draft.target_name} "
               f"({draft.strategy}, {draft.canary.spec.analysis.iterations} iterations): {how}")
    draft.wake_in(draft.interval())


def _start_mirroring(draft: Draft) -> None:
    """The first step of a weighted canary with ``mirror: true``: users are served by the
    primary while a copy of their requests exercises the canary."""
    draft.start_step()
    route = draft.analysis_route(0)
    draft.set_route(route)
    draft.event("Normal", "AnalysisStarted", f"Analysing {draft.target_name}: "
               f"{route.mirror_percent or 100:g}% of requests are mirrored to the canary "
               "before any weight moves to it")
    draft.wake_in(draft.interval())


def _set_weight(draft: Draft, weight: int) -> None:
    found = findings(draft)
    draft.status.canary_weight = weight
    draft.start_step()
    draft.set_route(draft.analysis_route(weight))
    draft.event("Normal", "WeightIncreased", f"Advance {draft.target_name} canary weight to "
               f"{weight}" + (f": {found}" if found else ""))
    draft.wake_in(draft.interval())


def _traffic_increase_confirmed(draft: Draft, weight: int) -> bool:
    confirmed = draft.gate("confirm-traffic-increase")
    if confirmed is False:
        draft.event("Normal", "WaitingForApproval", f"Weight {weight} for {draft.target_name} "
                   f"waits for approval: {draft.gate_failures('confirm-traffic-increase')}")
        draft.start_step()
        draft.wake_in(draft.interval())
    return bool(confirmed)
