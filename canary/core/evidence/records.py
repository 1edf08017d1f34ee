"""The judge's evidence as the status keeps it: the records of counts, state and evidence,
and each metric's evidence in a line."""

from __future__ import annotations

from datetime import UTC, datetime

from canary.core.judge import Assessment, Counts, Design, JudgeState, Outcome, split_alpha
from canary.core.timefmt import format_time, parse_time
from canary.models.canary import (
    CanaryJudge,
    JudgeCounts,
    JudgedMetricStatus,
    JudgeEvidence,
    JudgeMetric,
    JudgeOutcome,
    JudgeStatus,
)

#: The regression alternatives reach this ratio, or four times the minimum effect.
MAXIMUM_EFFECT = 20.0


#: The status's spelling of each outcome.
OUTCOMES: dict[Outcome, JudgeOutcome] = {
    Outcome.REGRESSION: "regression", Outcome.NO_REGRESSION_PROVEN: "no_regression_proven",
    Outcome.CONTINUE: "continue"}


def setting(metric: JudgeMetric) -> str:
    """How the metric is configured; a change restarts its evidence."""
    where = ""
    if metric.bound is not None:
        where = f" le={metric.bound:g}ms"
    elif metric.quantile is not None:
        where = f" quantile={metric.quantile:g}"
    return f"{metric.type.value}{where} minimumEffect={metric.minimum_effect}"


def begin(judge: CanaryJudge, revision: str) -> JudgeStatus:
    """A judge with no evidence yet, for ``revision``."""
    return JudgeStatus(revision=revision, alpha=split_alpha(judge.alpha, len(judge.metrics)),
                       beta=judge.beta, metrics=[begin_metric(m) for m in judge.metrics])


def begin_metric(metric: JudgeMetric) -> JudgedMetricStatus:
    effect = metric.effect()
    return JudgedMetricStatus(name=metric.name, type=metric.type, spec=setting(metric),
                              minimum_effect=effect.ratio, bound=metric.bound)


def design(minimum_effect: float) -> Design:
    return Design(minimum_effect=minimum_effect,
                  maximum_effect=max(MAXIMUM_EFFECT, 4 * minimum_effect))


def as_record(counts: Counts) -> JudgeCounts:
    return JudgeCounts(canary_requests=counts.canary_requests,
                       canary_events=counts.canary_events,
                       primary_requests=counts.primary_requests,
                       primary_events=counts.primary_events)


def as_counts(record: JudgeCounts) -> Counts:
    return Counts(record.canary_requests, record.canary_events, record.primary_requests,
                  record.primary_events)


def evidence_record(assessment: Assessment) -> JudgeEvidence:
    return JudgeEvidence.model_validate(assessment.to_dict())


def state_of(metric: JudgedMetricStatus) -> JudgeState | None:
    if metric.state is None:
        return None
    return JudgeState.from_dict(metric.state.to_api())


def instant(at: float) -> str:
    """Unix seconds (whole milliseconds) as the status keeps a reading's instant."""
    milliseconds = round(at * 1000)
    moment = datetime.fromtimestamp(milliseconds // 1000, UTC).replace(
        microsecond=milliseconds % 1000 * 1000)
    return format_time(moment, precise=True)


def previous_reading(status: JudgeStatus | None, metric: str) -> float | None:
    """When ``metric``'s last reading was evaluated (unix seconds): the next reading
    checks every series against that instant. None when there is no such reading."""
    for judged in status.metrics if status is not None else ():
        if judged.name == metric and judged.reading is not None and judged.reading_at:
            return parse_time(judged.reading_at).timestamp()
    return None


def has_judged(status: JudgeStatus | None, metric: str) -> bool:
    """Whether ``metric`` has evidence from a judged step (after which the power check
    uses the steps' traffic, not the traffic before the rollout)."""
    return any(judged.name == metric and judged.state is not None
               for judged in (status.metrics if status is not None else ()))


def describe(metric: JudgedMetricStatus) -> str:
    """One metric's evidence in a line."""
    if metric.evidence is None:
        return f"{metric.name}: no evidence yet" + (f" ({metric.message})"
                                                    if metric.message else "")
    e = metric.evidence
    ratio = "n/a" if e.ratio is None else f"{e.ratio:.2f}"
    upper = "inf" if e.ratio_upper is None else f"{e.ratio_upper:.2f}"
    proven = "no regression proven" if metric.proven_at_step is not None else e.outcome
    effect = f"x{metric.minimum_effect:.3g}" if metric.minimum_effect else "?"
    return (f"{metric.name} ({proven}, minimum effect {effect}): canary "
            f"{e.canary_events}/{e.canary_requests}, primary {e.primary_events}/"
            f"{e.primary_requests}; ratio {ratio} in [{e.ratio_lower:.2f}, {upper}]; "
            f"regression evidence {e.log_regression:.2f} of {e.log_regression_bound:.2f}, "
            f"no-regression evidence {e.log_no_regression:.2f} of "
            f"{e.log_no_regression_bound:.2f}")
