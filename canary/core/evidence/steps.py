"""Taking one step's counter readings into the judge's evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from canary.core.evidence.power_plan import PowerPlan, power_after_step, power_before
from canary.core.evidence.readings import (
    absent_version,
    clean_step,
    cumulative,
    missing_requests,
    prepare,
    seconds_since,
    unsound,
)
from canary.core.evidence.records import (
    OUTCOMES,
    as_counts,
    as_record,
    begin_metric,
    describe,
    design,
    evidence_record,
    instant,
    setting,
    state_of,
)
from canary.core.judge import Assessment, Counts, JudgeState, Outcome, assess, split_alpha, update
from canary.core.observation import JudgeReading
from canary.core.timefmt import format_time, parse_time
from canary.models.canary import (
    CanaryJudge,
    JudgedMetricStatus,
    JudgeMetric,
    JudgePower,
    JudgeStateRecord,
    JudgeStatus,
)

#: A step without canary requests is reported as such only if it lasted at least this
#: share of the analysis interval (shorter: the rest of a step after a check within it).
PARTIAL_STEP = 0.9


@dataclass(frozen=True)
class Note:
    """Something a person should hear about one metric at this step."""

    metric: str
    message: str


@dataclass(frozen=True)
class Verdict:
    """The judge's answer at one step, over every judged metric."""

    outcome: Outcome
    #: For a regression: the metric and its evidence.
    metric: str | None = None
    assessment: Assessment | None = None
    #: Metrics that gave no evidence this step, and why.
    skipped: tuple[Note, ...] = ()
    #: Metrics whose minimum effect the traffic cannot detect within the analysis.
    underpowered: tuple[Note, ...] = ()
    #: Metrics whose power was checked this step (with or without a warning).
    power_checked: tuple[str, ...] = ()
    #: Metrics for which no requests were seen this step (no evidence either).
    no_requests: tuple[Note, ...] = ()
    #: Metrics that judged no step at this reading for want of a usable reading (failed,
    #: unusable, or the first after one, which only starts the counts again), and why;
    #: those without requests are in ``no_requests`` instead.
    unjudged: tuple[Note, ...] = ()
    #: One line per metric for events: the current evidence.
    summary: str = ""


def advance(judge: CanaryJudge, status: JudgeStatus, readings: Sequence[JudgeReading],
            now: datetime, plan: PowerPlan, canary_traffic: bool = False,
            between_steps: bool = False) -> tuple[JudgeStatus, Verdict]:
    """Take one step's readings into the evidence; return the new status and verdict.
    ``canary_traffic``: traffic was routed to the canary during the step that ends now
    (so a step without a canary request is no evidence).

    ``between_steps``: a check within an analysis step. Only a metric whose reading
    differences cleanly with its last one, with requests on the canary, is taken in;
    any other is left as it was, silently, for the step's end to take in or report."""
    status = status.model_copy(deep=True)
    previous_at = parse_time(status.last_reading_at) if status.last_reading_at else None
    seconds = (now - previous_at).total_seconds() if previous_at else 0.0
    status.last_reading_at = format_time(now, precise=True)
    _follow_spec(judge, status)
    taking = _Taking(status, plan, canary_traffic, seconds)
    by_name = {r.name: r for r in readings}
    for spec, metric in zip(judge.metrics, status.metrics, strict=True):
        reading = by_name.get(spec.name)
        if between_steps and not clean_step(metric, reading):
            continue
        _take(taking, spec, metric, reading)
    if taking.judged_step:
        status.steps += 1
    return status, taking.verdict()


def _follow_spec(judge: CanaryJudge, status: JudgeStatus) -> None:
    """The status's error rates and metrics as the spec has them now; a metric whose
    setting changed starts again without evidence."""
    status.alpha = split_alpha(judge.alpha, len(judge.metrics))
    status.beta = judge.beta
    existing = {m.name: m for m in status.metrics}
    metrics: list[JudgedMetricStatus] = []
    for spec in judge.metrics:
        current = existing.get(spec.name)
        if current is None or current.spec != setting(spec):
            current = begin_metric(spec)
        metrics.append(current)
    status.metrics = metrics


@dataclass
class _Taking:
    """One call of :func:`advance`: its context, and what the metrics said."""

    status: JudgeStatus
    plan: PowerPlan
    canary_traffic: bool
    #: Seconds since the last reading of the judge (a metric's own may be older).
    seconds: float
    skipped: list[Note] = field(default_factory=list)
    underpowered: list[Note] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    no_requests: list[Note] = field(default_factory=list)
    #: Metrics that only started their counts (or wait to) at this reading.
    restarted: list[Note] = field(default_factory=list)
    regression: tuple[str, Assessment] | None = None
    judged_step: bool = False

    def skip(self, metric: JudgedMetricStatus, why: str) -> None:
        _skip(metric, why, self.skipped)

    def power(self, metric: JudgedMetricStatus, power: JudgePower | None) -> None:
        """Keep a power check's result, and note it for the verdict."""
        if power is None:
            return
        metric.power = power
        self.checked.append(metric.name)
        if not power.detectable:
            self.underpowered.append(Note(metric.name, power.message))

    def verdict(self) -> Verdict:
        """Regression if any metric found one; proven when every metric proved none."""
        metrics = self.status.metrics
        if self.regression is not None:
            outcome = Outcome.REGRESSION
        elif all(m.proven_at_step is not None for m in metrics):
            outcome = Outcome.NO_REGRESSION_PROVEN
        else:
            outcome = Outcome.CONTINUE
        self.status.outcome = OUTCOMES[outcome]
        regression = self.regression
        idle = {n.metric for n in self.no_requests}
        unjudged = [n for n in self.skipped if n.metric not in idle] + self.restarted
        return Verdict(
            outcome=outcome, metric=regression[0] if regression else None,
            assessment=regression[1] if regression else None, skipped=tuple(self.skipped),
            underpowered=tuple(self.underpowered), power_checked=tuple(self.checked),
            no_requests=tuple(self.no_requests), unjudged=tuple(unjudged),
            summary="; ".join(describe(m) for m in metrics))


def _take(taking: _Taking, spec: JudgeMetric, metric: JudgedMetricStatus,
          reading: JudgeReading | None) -> None:
    """One metric's reading into its evidence, or the reason it gives none."""
    if reading is None or reading.error is not None:
        why = reading.error if reading is not None else "not read"
        taking.skip(metric, f"no data: {why}")
        return
    if _no_data(taking, metric, reading):
        return
    had_origin = metric.reading is not None
    origin_at = metric.reading_at
    waiting = prepare(metric, spec, reading)
    if waiting is not None:
        metric.reading = None
        metric.reading_at = None
        metric.message = waiting
        taking.restarted.append(Note(metric.name, waiting))
        return
    try:
        counts = cumulative(reading, metric)
    except ValueError as exc:
        taking.skip(metric, f"unusable reading: {exc}")
        return
    if metric.baseline is None:
        metric.baseline = as_record(counts)
    if not had_origin:
        _start_from(metric, counts, reading)
        metric.message = None
        taking.restarted.append(Note(metric.name, "its counts start from this reading"))
        taking.power(metric, power_before(metric, counts, reading, taking.plan, taking.status))
        return
    step = _step_counts(taking, metric, counts, reading)
    if step is None or _idle(taking, metric, counts, step, reading, origin_at):
        return
    _judge_step(taking, metric, counts, step, reading, origin_at)


def _no_data(taking: _Taking, metric: JudgedMetricStatus, reading: JudgeReading) -> bool:
    """Whether Prometheus lacks series the reading needs: none of either version (a gap
    or missing telemetry, never zeros), or none of a version it had some of before."""
    if not (reading.canary.present or reading.primary.present):
        why = ("no data: Prometheus has no series of the canary or the primary; no "
               "requests were seen (is Istio's telemetry reaching the metrics server, "
               "with destination_workload set to the Deployments' names?)")
        taking.skip(metric, why)
        taking.no_requests.append(Note(metric.name, why))
        return True
    if metric.reading is not None:
        absent = absent_version(metric.reading, reading)
        if absent is not None:
            taking.skip(metric, f"no data: {absent}")
            return True
    return False


def _step_counts(taking: _Taking, metric: JudgedMetricStatus, counts: Counts,
                 reading: JudgeReading) -> Counts | None:
    """The step's counts: this reading less the metric's last. None when that would not
    be the step's counts: the step is skipped and the next starts from this reading."""
    assert metric.reading is not None
    try:
        problem = unsound(metric, reading)
        step = Counts.between(as_counts(metric.reading), counts)
    except ValueError as exc:
        problem = str(exc)
    if problem is not None:
        taking.skip(metric, f"{problem}; the counts start again from this reading")
        _start_from(metric, counts, reading)
        return None
    return step


def _idle(taking: _Taking, metric: JudgedMetricStatus, counts: Counts, step: Counts,
          reading: JudgeReading, origin_at: str | None) -> bool:
    """Whether the step lacked requests (on the canary while routed to it, or at all):
    a whole step is skipped and reported."""
    idle = missing_requests(step, taking.canary_traffic)
    if idle is None:
        return False
    if seconds_since(origin_at, reading, taking.seconds) < PARTIAL_STEP * taking.plan.interval:
        # What is left of a step after a check within it took its requests: too
        # short to say that none arrive; the next reading continues from the last.
        return True
    taking.skip(metric, f"{idle}; the counts start again from this reading")
    _start_from(metric, counts, reading)
    taking.no_requests.append(Note(metric.name, idle))
    return True


def _judge_step(taking: _Taking, metric: JudgedMetricStatus, counts: Counts, step: Counts,
                reading: JudgeReading, origin_at: str | None) -> None:
    """The judge takes the step's counts: the metric's state, evidence and power."""
    assert metric.minimum_effect is not None
    taking.judged_step = True
    state = state_of(metric) or JudgeState.start(design(metric.minimum_effect))
    state = update(state, step)
    assessment = assess(state, taking.status.alpha, taking.status.beta)
    _start_from(metric, counts, reading)
    metric.state = JudgeStateRecord.model_validate(state.to_dict())
    metric.evidence = evidence_record(assessment)
    metric.message = None
    if assessment.outcome is Outcome.NO_REGRESSION_PROVEN and metric.proven_at_step is None:
        metric.proven_at_step = state.steps
    if assessment.outcome is Outcome.REGRESSION and taking.regression is None:
        taking.regression = (metric.name, assessment)
    length = seconds_since(origin_at, reading, taking.seconds)
    taking.power(metric, power_after_step(metric, state, step, length, taking.plan,
                                          taking.status))


def _skip(metric: JudgedMetricStatus, why: str, notes: list[Note]) -> None:
    """No evidence this step; the next reading starts a new difference."""
    metric.reading = None
    metric.reading_at = None
    metric.skipped_steps += 1
    metric.message = why
    notes.append(Note(metric.name, why))


def _start_from(metric: JudgedMetricStatus, counts: Counts, reading: JudgeReading) -> None:
    """The next difference starts from this reading."""
    metric.reading = as_record(counts)
    metric.reading_at = instant(reading.at) if reading.at is not None else None
