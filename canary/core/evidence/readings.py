"""Counter readings: what they count, and whether the difference between two is a step's counts."""

from __future__ import annotations

import math
from collections.abc import Sequence

from canary.core.evidence.records import as_counts, instant
from canary.core.judge import Counts, ratio_for_absolute_effect, slow_requests
from canary.core.observation import Counters, JudgeReading
from canary.core.timefmt import parse_time
from canary.models.canary import JudgeCounts, JudgedMetricStatus, JudgedMetricType, JudgeMetric

#: Confidence of the upper bound on the primary's rate that converts +pp effects.
BASELINE_CONFIDENCE = 0.95


#: How far apart (seconds) a reading's ``since`` and the instant of the reading it
#: follows may be and still be the same instant (both are whole milliseconds).
SAME_INSTANT = 0.002


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


def absent_version(previous: JudgeCounts, reading: JudgeReading) -> str | None:
    """Why the reading lacks a version Prometheus had series of at the last reading."""
    for version, counters, before in (("canary", reading.canary, previous.canary_requests),
                                      ("primary", reading.primary, previous.primary_requests)):
        if before > 0 and not counters.present:
            return (f"the {version} had counted {before} requests at the last reading and "
                    "Prometheus has no series of it now")
    return None


def unsound(metric: JudgedMetricStatus, reading: JudgeReading) -> str | None:
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


def clean_step(metric: JudgedMetricStatus, reading: JudgeReading | None) -> bool:
    """Whether ``reading`` makes a step with the metric's last reading that nothing
    would skip, with requests on the canary."""
    if reading is None or reading.error is not None or metric.reading is None or \
            metric.minimum_effect is None or \
            not (reading.canary.present or reading.primary.present) or \
            absent_version(metric.reading, reading) is not None:
        return False
    try:
        if unsound(metric, reading) is not None:
            return False
        step = Counts.between(as_counts(metric.reading), cumulative(reading, metric))
    except ValueError:
        return False
    return step.canary_requests > 0


def missing_requests(step: Counts, canary_traffic: bool) -> str | None:
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


def prepare(metric: JudgedMetricStatus, spec: JudgeMetric, reading: JudgeReading
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


def seconds_since(origin_at: str | None, reading: JudgeReading, default: float) -> float:
    """The length of a metric's step: from its last reading's instant to this one's."""
    if origin_at is None or reading.at is None:
        return default
    return reading.at - parse_time(origin_at).timestamp()
