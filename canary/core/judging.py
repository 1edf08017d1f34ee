"""The judge inside an analysis: counter readings in, verdicts and evidence out (pure).

At the analysis start, and then at every step, the controller reads the cumulative
counters of each judged metric for the canary and the primary (:class:`JudgeReading`).
:func:`advance` differences each reading with the previous one, which the status keeps,
adds the step's counts to the metric's :class:`~canary.core.judge.JudgeState` (also kept
in the status) and assesses it. Everything the next step needs is in the returned
:class:`~canary.models.canary.JudgeStatus`, so a controller restarted between two steps
continues with exactly the same evidence.

A step gives no evidence for a metric when its counters could not be read, when
Prometheus has no series where it had some, when any series of either version vanished,
went down or came back after an absence since the previous reading (a pod went away,
restarted or missed a scrape: the difference of the sums would be biased), or when no
requests were seen (none on the canary while traffic was routed to it, or none at all).
The metric's next difference then starts from a reading that can be trusted. Such a step
is never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from canary.core.judge import (
    Assessment,
    Counts,
    Design,
    JudgeState,
    Outcome,
    Traffic,
    assess,
    ratio_for_absolute_effect,
    scheduled_power_check,
    slow_requests,
    split_alpha,
    update,
)
from canary.core.observation import Counters, JudgeReading
from canary.core.timefmt import format_time, parse_time
from canary.models.canary import (
    CanaryJudge,
    JudgeCounts,
    JudgedMetricStatus,
    JudgedMetricType,
    JudgeEvidence,
    JudgeMetric,
    JudgeOutcome,
    JudgePower,
    JudgeStateRecord,
    JudgeStatus,
)

#: The regression alternatives reach this ratio, or four times the minimum effect.
MAXIMUM_EFFECT = 20.0
#: The status's spelling of each outcome.
OUTCOMES: dict[Outcome, JudgeOutcome] = {
    Outcome.REGRESSION: "regression", Outcome.NO_REGRESSION_PROVEN: "no_regression_proven",
    Outcome.CONTINUE: "continue"}
#: Confidence of the upper bound on the primary's rate that converts +pp effects.
BASELINE_CONFIDENCE = 0.95
#: A step without canary requests is reported as such only if it lasted at least this
#: share of the analysis interval (shorter: the rest of a step after a check within it).
PARTIAL_STEP = 0.9
#: How far apart (seconds) a reading's ``since`` and the instant of the reading it
#: follows may be and still be the same instant (both are whole milliseconds).
SAME_INSTANT = 0.002


@dataclass(frozen=True)
class PowerPlan:
    """The analysis's schedule, for the power check: the canary's share of the requests
    in each step (None: as measured in the last step, e.g. while mirroring) and the
    length of a step in seconds."""

    shares: tuple[float | None, ...]
    interval: float


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
    #: One line per metric for events: the current evidence.
    summary: str = ""


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
                       beta=judge.beta, metrics=[_begin_metric(m) for m in judge.metrics])


def _begin_metric(metric: JudgeMetric) -> JudgedMetricStatus:
    effect = metric.effect()
    return JudgedMetricStatus(name=metric.name, type=metric.type, spec=setting(metric),
                              minimum_effect=effect.ratio, bound=metric.bound)


def design(minimum_effect: float) -> Design:
    return Design(minimum_effect=minimum_effect,
                  maximum_effect=max(MAXIMUM_EFFECT, 4 * minimum_effect))


def cumulative(reading: JudgeReading, metric: JudgedMetricStatus) -> Counts:
    """The reading as cumulative requests and events; ValueError when it cannot be."""
    if metric.type == JudgedMetricType.ERROR_RATE:
        return Counts(reading.canary.requests, reading.canary.errors,
                      reading.primary.requests, reading.primary.errors)
    assert metric.bound is not None
    canary = _slow(reading.canary, metric.bound)
    primary = _slow(reading.primary, metric.bound)
    return Counts(canary[0], canary[1], primary[0], primary[1])


def _slow(counters: Counters, bound: float) -> tuple[int, int]:
    if not counters.buckets:
        return 0, 0  # no series yet: nothing was counted
    return slow_requests(counters.buckets, bound)


def quantile_bound(buckets: Sequence[tuple[float, int]], quantile: float) -> float | None:
    """The smallest finite bucket bound holding at least ``quantile`` of the requests
    (the largest finite bound when the quantile lies beyond them all); None without
    requests or finite bounds."""
    ordered = sorted(buckets)
    total = next((count for le, count in ordered if math.isinf(le)), 0)
    finite = [(le, count) for le, count in ordered if math.isfinite(le)]
    if total <= 0 or not finite:
        return None
    for le, count in finite:
        if count >= quantile * total:
            return le
    return finite[-1][0]


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


def _absent(previous: JudgeCounts, reading: JudgeReading) -> str | None:
    """Why the reading lacks a version Prometheus had series of at the last reading."""
    for version, counters, before in (("canary", reading.canary, previous.canary_requests),
                                      ("primary", reading.primary, previous.primary_requests)):
        if before > 0 and not counters.present:
            return (f"the {version} had counted {before} requests at the last reading and "
                    "Prometheus has no series of it now")
    return None


def _unsound(metric: JudgedMetricStatus, reading: JudgeReading) -> str | None:
    """Why the difference between the last reading and this one would not be the step's
    counts: some series vanished, went down or came back, a series the last reading
    counted has been marked stale at its instant since, or the series could not be
    checked against it."""
    if reading.since is None or metric.reading_at is None or \
            reading.canary.lost is None or reading.primary.lost is None:
        return "the series could not be checked against the last reading"
    previous = parse_time(metric.reading_at).timestamp()
    if abs(reading.since - previous) > SAME_INSTANT:
        return (f"the series were checked against {instant(reading.since)}, not the last "
                f"reading ({metric.reading_at})")
    lost = [f"{n} of the {version}'s" for version, n in
            (("canary", reading.canary.lost), ("primary", reading.primary.lost)) if n]
    if lost:
        return (f"{' and '.join(lost)} series vanished, went down or came back since the "
                "last reading (a pod went away, restarted or missed a scrape)")
    assert metric.reading is not None
    for version, counters, counted in (
            ("canary", reading.canary, metric.reading.canary_requests),
            ("primary", reading.primary, metric.reading.primary_requests)):
        if counters.previous is not None and counters.previous < counted:
            return (f"Prometheus now shows {counters.previous} of the {version}'s requests "
                    f"at the last reading, which counted {counted}: a series it counted "
                    "was marked stale there afterwards (a failed scrape)")
    return None


def _clean_step(metric: JudgedMetricStatus, reading: JudgeReading | None) -> bool:
    """Whether ``reading`` makes a step with the metric's last reading that nothing
    would skip, with requests on the canary."""
    if reading is None or reading.error is not None or metric.reading is None or \
            metric.minimum_effect is None or \
            not (reading.canary.present or reading.primary.present) or \
            _absent(metric.reading, reading) is not None:
        return False
    try:
        if _unsound(metric, reading) is not None:
            return False
        step = Counts.between(as_counts(metric.reading), cumulative(reading, metric))
    except ValueError:
        return False
    return step.canary_requests > 0


def _no_requests(step: Counts, canary_traffic: bool) -> str | None:
    if step.canary_requests > 0:
        return None
    if step.primary_requests == 0:
        return ("no requests were seen on the canary or the primary in this step (is "
                "there traffic, and does Istio's telemetry reach the metrics server?)")
    if canary_traffic:
        return (f"no requests were seen on the canary in this step although traffic was "
                f"routed to it (the primary served {step.primary_requests}): are its "
                "requests reported with destination_workload set to its Deployment?")
    return None


def _prepare(metric: JudgedMetricStatus, spec: JudgeMetric, reading: JudgeReading
             ) -> str | None:
    """Fix the bound and the minimum effect from the primary's counters before the
    analysis, the first time they are available. Returns why it cannot be done yet."""
    if metric.bound is None and spec.quantile is not None:
        bound = quantile_bound(reading.primary.buckets, spec.quantile)
        if bound is None:
            return (f"waiting for the primary's latency histogram to place the "
                    f"{spec.quantile:g} quantile")
        metric.bound = bound
    if metric.minimum_effect is None:
        absolute = spec.effect().absolute
        assert absolute is not None
        try:
            baseline = cumulative(reading, metric)
        except ValueError as exc:
            return str(exc)
        if baseline.primary_requests == 0:
            return (f"waiting for the primary's requests to convert "
                    f"{spec.minimum_effect} to a ratio")
        metric.minimum_effect = ratio_for_absolute_effect(
            absolute, baseline.primary_requests, baseline.primary_events, BASELINE_CONFIDENCE)
    return None


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
    status.alpha = split_alpha(judge.alpha, len(judge.metrics))
    status.beta = judge.beta
    existing = {m.name: m for m in status.metrics}
    metrics: list[JudgedMetricStatus] = []
    for spec in judge.metrics:
        current = existing.get(spec.name)
        if current is None or current.spec != setting(spec):
            current = _begin_metric(spec)
        metrics.append(current)
    status.metrics = metrics
    by_name = {r.name: r for r in readings}
    skipped: list[Note] = []
    underpowered: list[Note] = []
    checked: list[str] = []
    no_requests: list[Note] = []
    regression: tuple[str, Assessment] | None = None
    judged_step = False
    for spec, metric in zip(judge.metrics, metrics, strict=True):
        reading = by_name.get(spec.name)
        if between_steps and not _clean_step(metric, reading):
            continue
        if reading is None or reading.error is not None:
            why = reading.error if reading is not None else "not read"
            _skip(metric, f"no data: {why}", skipped)
            continue
        if not (reading.canary.present or reading.primary.present):
            # An empty answer is a gap in Prometheus or missing telemetry, never zeros.
            why = ("no data: Prometheus has no series of the canary or the primary; no "
                   "requests were seen (is Istio's telemetry reaching the metrics server, "
                   "with destination_workload set to the Deployments' names?)")
            _skip(metric, why, skipped)
            no_requests.append(Note(metric.name, why))
            continue
        if metric.reading is not None:
            absent = _absent(metric.reading, reading)
            if absent is not None:
                _skip(metric, f"no data: {absent}", skipped)
                continue
        had_origin = metric.reading is not None
        origin_at = metric.reading_at
        waiting = _prepare(metric, spec, reading)
        if waiting is not None:
            metric.reading = None
            metric.reading_at = None
            metric.message = waiting
            continue
        try:
            counts = cumulative(reading, metric)
        except ValueError as exc:
            _skip(metric, f"unusable reading: {exc}", skipped)
            continue
        if metric.baseline is None:
            metric.baseline = as_record(counts)
        if not had_origin:
            _start_from(metric, counts, reading)
            metric.message = None
            power = _power_before(metric, counts, reading, plan, status)
            if power is not None:
                metric.power = power
                checked.append(metric.name)
                if not power.detectable:
                    underpowered.append(Note(metric.name, power.message))
            continue
        assert metric.reading is not None
        try:
            problem = _unsound(metric, reading)
            step_counts = Counts.between(as_counts(metric.reading), counts)
        except ValueError as exc:
            problem = str(exc)
        if problem is not None:
            _skip(metric, f"{problem}; the counts start again from this reading", skipped)
            _start_from(metric, counts, reading)
            continue
        idle = _no_requests(step_counts, canary_traffic)
        if idle is not None and _seconds_since(origin_at, reading, seconds) < \
                PARTIAL_STEP * plan.interval:
            # What is left of a step after a check within it took its requests: too
            # short to say that none arrive; the next reading continues from the last.
            continue
        if idle is not None:
            _skip(metric, f"{idle}; the counts start again from this reading", skipped)
            _start_from(metric, counts, reading)
            no_requests.append(Note(metric.name, idle))
            continue
        assert metric.minimum_effect is not None
        judged_step = True
        state = state_of(metric) or JudgeState.start(design(metric.minimum_effect))
        state = update(state, step_counts)
        assessment = assess(state, status.alpha, status.beta)
        _start_from(metric, counts, reading)
        metric.state = JudgeStateRecord.model_validate(state.to_dict())
        metric.evidence = evidence_record(assessment)
        metric.message = None
        if assessment.outcome is Outcome.NO_REGRESSION_PROVEN and metric.proven_at_step is None:
            metric.proven_at_step = state.steps
        if assessment.outcome is Outcome.REGRESSION and regression is None:
            regression = (metric.name, assessment)
        length = _seconds_since(origin_at, reading, seconds)
        power = _power(metric, state, step_counts, length, plan, status)
        if power is not None:
            metric.power = power
            checked.append(metric.name)
            if not power.detectable:
                underpowered.append(Note(metric.name, power.message))
    if judged_step:
        status.steps += 1
    if regression is not None:
        outcome = Outcome.REGRESSION
    elif all(m.proven_at_step is not None for m in metrics):
        outcome = Outcome.NO_REGRESSION_PROVEN
    else:
        outcome = Outcome.CONTINUE
    status.outcome = OUTCOMES[outcome]
    return status, Verdict(
        outcome=outcome, metric=regression[0] if regression else None,
        assessment=regression[1] if regression else None, skipped=tuple(skipped),
        underpowered=tuple(underpowered), power_checked=tuple(checked),
        no_requests=tuple(no_requests), summary="; ".join(describe(m) for m in metrics))


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


def _seconds_since(origin_at: str | None, reading: JudgeReading, default: float) -> float:
    """The length of a metric's step: from its last reading's instant to this one's."""
    if origin_at is None or reading.at is None:
        return default
    return reading.at - parse_time(origin_at).timestamp()


def _power(metric: JudgedMetricStatus, state: JudgeState, step: Counts, seconds: float,
           plan: PowerPlan, status: JudgeStatus) -> JudgePower | None:
    """Whether the traffic of the last step can detect the minimum effect within the
    analysis (its whole schedule, from its start)."""
    if seconds <= 0 or not plan.shares or step.requests == 0:
        return None
    baseline = metric.baseline
    requests = state.totals.primary_requests + (baseline.primary_requests if baseline else 0)
    events = state.totals.primary_events + (baseline.primary_events if baseline else 0)
    return _power_estimate(
        metric, state.design, step.canary_requests / seconds,
        step.primary_requests / seconds, events / requests if requests else 0.0, plan,
        status, "LastStep")


def _power_before(metric: JudgedMetricStatus, counts: Counts, reading: JudgeReading,
                  plan: PowerPlan, status: JudgeStatus) -> JudgePower | None:
    """The power check before the first judged step, from the traffic of the interval
    before the reading (``reading.earlier``). Only for schedules whose canary share is
    known in advance (weighted steps): with matches or mirroring the canary's traffic is
    known once it flows."""
    earlier = reading.earlier
    known_shares = bool(plan.shares) and all(share is not None for share in plan.shares)
    if metric.state is not None or earlier is None or earlier.error is not None or \
            earlier.at is None or reading.at is None or not earlier.primary.present or \
            not known_shares or metric.minimum_effect is None:
        return None
    seconds = reading.at - earlier.at
    try:
        before = cumulative(earlier, metric)
    except ValueError:
        return None
    canary = max(counts.canary_requests - before.canary_requests, 0)
    primary = max(counts.primary_requests - before.primary_requests, 0)
    if seconds <= 0 or canary + primary == 0:
        return None
    base_rate = counts.primary_events / counts.primary_requests if counts.primary_requests \
        else 0.0
    return _power_estimate(metric, design(metric.minimum_effect), canary / seconds,
                           primary / seconds, base_rate, plan, status, "BeforeRollout")


def _power_estimate(metric: JudgedMetricStatus, plan_design: Design, canary_rps: float,
                    primary_rps: float, base_rate: float, plan: PowerPlan,
                    status: JudgeStatus, measured: Literal["BeforeRollout", "LastStep"]
                    ) -> JudgePower:
    """The power check of ``plan`` at these rates, with the status's message."""
    total = canary_rps + primary_rps
    schedule = []
    for share in plan.shares:
        if share is None:
            traffic = Traffic(canary_rps, primary_rps, base_rate)
        else:
            traffic = Traffic(total * share, total * (1 - share), base_rate)
        schedule.append((traffic, plan.interval))
    check = scheduled_power_check(plan_design, schedule, status.alpha, status.beta)
    effect = f"x{plan_design.minimum_effect:.3g}"
    when = " before the rollout" if measured == "BeforeRollout" else ""
    if base_rate == 0:
        message = (f"{metric.name}: the primary shows no events, so a regression of "
                   f"{effect} cannot be measured (a canary failing where the primary does "
                   "not is still detected)")
    elif check.detectable:
        message = (f"{metric.name}: a regression of {effect} would be detected in about "
                   f"{check.seconds_to_detect:.0f}s of the {check.remaining_seconds:.0f}s "
                   f"analysis at {total:.3g} req/s{when}")
    else:
        needed = ("never" if math.isinf(check.seconds_to_detect)
                  else f"about {check.seconds_to_detect:.0f}s")
        message = (f"{metric.name}: at {total:.3g} req/s{when} with {base_rate:.3%} events "
                   f"on the primary, a regression of {effect} would take {needed} to "
                   f"detect; the analysis lasts {check.remaining_seconds:.0f}s")
    return JudgePower(
        measured=measured, detectable=check.detectable and base_rate > 0,
        seconds_to_detect=_finite(check.seconds_to_detect),
        seconds_to_prove=_finite(check.seconds_to_prove),
        analysis_seconds=check.remaining_seconds, canary_rps=canary_rps,
        primary_rps=primary_rps, base_rate=base_rate, message=message)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
