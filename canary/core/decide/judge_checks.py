"""Applying the judge: its counter readings taken into the evidence at the end of each
step and, with ``checkInterval``, between steps."""

from __future__ import annotations

from dataclasses import replace

from canary.core import evidence
from canary.core.decide.draft import TRAFFIC_SUFFICIENT, Decision, Draft
from canary.core.decide.rollback import rollback
from canary.core.judge import Outcome
from canary.core.timefmt import parse_time
from canary.models.canary import Phase

#: The judge's checks between steps are at least this far apart (seconds).
MIN_JUDGE_CHECK_SECONDS = 1.0


def apply_judge(draft: Draft, between_steps: bool = False) -> evidence.Verdict | None:
    """Take this step's counter readings into the judge's evidence (in the status);
    ``between_steps``: a check within a step, which takes only clean readings."""
    judge_spec = draft.canary.spec.analysis.judge
    if judge_spec is None:
        if draft.status.judge is not None:  # the judge was removed from the spec
            draft.status.judge = None
            draft.drop_condition(TRAFFIC_SUFFICIENT)
        return None
    revision = str(draft.status.last_applied_spec)
    current = draft.status.judge
    if current is None or current.revision != revision:
        current = evidence.begin(judge_spec, revision)
    before = current.outcome
    updated, verdict = evidence.advance(judge_spec, current, draft.obs.judge or (), draft.now,
                                       _power_plan(draft), _canary_had_traffic(draft),
                                       between_steps=between_steps)
    draft.status.judge = updated
    for note in verdict.skipped:
        draft.event("Warning", "JudgeSkippedStep", f"No evidence from {note.metric} for "
                   f"{draft.target_name} in this step: {note.message}")
    if verdict.no_requests:
        draft.condition(TRAFFIC_SUFFICIENT, "False", "NoRequests", "; ".join(
            f"{n.metric}: {n.message}" for n in verdict.no_requests))
    elif verdict.power_checked:
        if verdict.underpowered:
            message = "; ".join(n.message for n in verdict.underpowered)
            if draft.condition(TRAFFIC_SUFFICIENT, "False", "InsufficientTraffic", message):
                draft.event("Warning", "InsufficientTraffic", f"{draft.target_name}: {message}")
        else:
            draft.condition(TRAFFIC_SUFFICIENT, "True", "SufficientTraffic", "; ".join(
                m.power.message for m in updated.metrics if m.power is not None))
    if verdict.outcome is Outcome.NO_REGRESSION_PROVEN and before != updated.outcome and \
            not judge_spec.promote_early:
        draft.event("Normal", "NoRegressionProven", f"The judge proved no regression of "
                   f"{draft.target_name} (promoteEarly is off: the analysis continues): "
                   f"{verdict.summary}")
    return verdict


def _canary_had_traffic(draft: Draft) -> bool:
    """Whether the step ending now routed (or mirrored) requests to the canary."""
    if draft.status.analysis_started_at is None:
        return False  # the reading before any traffic moves
    route = draft.analysis_route(draft.status.canary_weight or 0)
    return route.canary_weight > 0 or bool(route.mirror_percent) or route.match_to_canary


def _power_plan(draft: Draft) -> evidence.PowerPlan:
    """The canary's share of the requests in each step of the analysis."""
    analysis = draft.canary.spec.analysis
    if draft.strategy.iterative:
        shares: tuple[float | None, ...] = (None,) * (analysis.iterations or 1)
    else:
        shares = tuple(w / 100 for w in analysis.weight_steps())
        if analysis.mirror:
            shares = (None, *shares)
    return evidence.PowerPlan(shares=shares, interval=draft.interval())


def judge_check_interval(draft: Draft) -> float | None:
    """Seconds between the judge's checks within a step; None: once per step."""
    judge_spec = draft.canary.spec.analysis.judge
    every = judge_spec.check_interval_seconds() if judge_spec is not None else None
    if every is None or every >= draft.interval():
        return None
    return max(every, MIN_JUDGE_CHECK_SECONDS)


def with_judge_checks(decision: Decision, draft: Draft) -> Decision:
    """While the analysis runs, wake up for the judge's next check within the step."""
    every = judge_check_interval(draft)
    status = decision.status
    if every is None or decision.wake_after is None or status.phase != Phase.PROGRESSING or \
            status.analysis_started_at is None or status.judge is None:
        return decision
    return replace(decision, wake_after=min(decision.wake_after, every))


def between_steps(draft: Draft, due: float) -> Decision:
    """Wait for the step's end; with the judge's ``checkInterval``, read its counters in
    the meantime and roll back as soon as a regression is proven."""
    every = judge_check_interval(draft)
    if every is None or draft.status.judge is None:
        draft.wake_in(due)
        return draft.done()
    last = draft.status.judge.last_reading_at
    since = (draft.now - parse_time(last)).total_seconds() if last else every
    if since < every:
        draft.wake_in(min(due, every - since))
        return draft.done()
    if draft.obs.judge is None:
        return draft.done(needs_judge=True)
    verdict = apply_judge(draft, between_steps=True)
    if verdict is not None and verdict.outcome is Outcome.REGRESSION:
        assert verdict.assessment is not None
        rollback(draft, "RegressionDetected", f"Rolling back {draft.target_name}: the judge "
                  f"found a regression in {verdict.metric} between steps: "
                  f"{verdict.assessment.describe()}")
        return draft.done()
    draft.wake_in(min(due, every))
    return draft.done()
