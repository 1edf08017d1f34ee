"""The judge's counters from Prometheus samples (pure).

:func:`canary.metrics.queries.judge_queries` asks for each workload's cumulative counters,
grouped by ``destination_workload`` (and ``le`` for histograms); here the samples of one
instant become :class:`~canary.core.observation.Counters` for the canary and the
primary. A workload without series has counted nothing yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from canary.core.judge import as_count
from canary.core.observation import Counters, JudgeReading

#: One series at one instant: its labels and value.
Sample = tuple[Mapping[str, str], float]


class Workloads(NamedTuple):
    """The Deployments whose counters are compared."""

    canary: str
    primary: str


def _by_workload(samples: Sequence[Sample], what: str, workloads: Workloads
                 ) -> dict[str, int]:
    totals = {workload: 0 for workload in workloads}
    for labels, value in samples:
        workload = labels.get("destination_workload", "")
        if workload not in totals:
            raise ValueError(f"{what}: a series for an unexpected workload {workload!r}")
        totals[workload] = as_count(value, f"{what} of {workload}")
    return totals


def _buckets(samples: Sequence[Sample], workloads: Workloads
             ) -> dict[str, tuple[tuple[float, int], ...]]:
    found: dict[str, dict[float, int]] = {workload: {} for workload in workloads}
    for labels, value in samples:
        workload = labels.get("destination_workload", "")
        if workload not in found:
            raise ValueError(f"buckets: a series for an unexpected workload {workload!r}")
        try:
            le = float(labels["le"])
        except (KeyError, ValueError):
            raise ValueError(f"buckets: a series without a numeric le: {dict(labels)}") from None
        if math.isnan(le):
            raise ValueError("buckets: le is NaN")
        found[workload][le] = as_count(value, f"bucket le={le:g} of {workload}")
    out = {}
    for workload, buckets in found.items():
        if buckets and math.inf not in buckets:
            raise ValueError(f"buckets of {workload} lack le=+Inf")
        out[workload] = tuple(sorted(buckets.items()))
    return out


def counters(metric_type: str, samples: Mapping[str, Sequence[Sample]],
             workloads: Workloads) -> tuple[Counters, Counters]:
    """The canary's and the primary's counters from the samples of each query of
    ``judge_queries`` (by the query's key); ValueError when they cannot be counts."""
    if metric_type == "errorRate":
        requests = _by_workload(samples["requests"], "requests", workloads)
        errors = _by_workload(samples["errors"], "errors", workloads)
        canary, primary = (Counters(requests[w], errors[w]) for w in workloads)
        for workload, c in zip(workloads, (canary, primary), strict=True):
            if c.errors > c.requests:
                raise ValueError(f"{workload} has more errors ({c.errors}) than requests "
                                 f"({c.requests})")
        return canary, primary
    if metric_type == "latency":
        buckets = _buckets(samples["buckets"], workloads)
        canary_buckets, primary_buckets = (buckets[w] for w in workloads)
        return (Counters(requests=_total(canary_buckets), buckets=canary_buckets),
                Counters(requests=_total(primary_buckets), buckets=primary_buckets))
    raise ValueError(f"unknown judged metric type {metric_type!r}")


def _total(buckets: tuple[tuple[float, int], ...]) -> int:
    return next((count for le, count in buckets if math.isinf(le)), 0)


def reading(name: str, metric_type: str, samples: Mapping[str, Sequence[Sample]],
            workloads: Workloads, queries: Sequence[str]) -> JudgeReading:
    """A :class:`JudgeReading`, with the reason when the samples are not counts."""
    try:
        canary, primary = counters(metric_type, samples, workloads)
    except ValueError as exc:
        return JudgeReading(name, error=str(exc), queries=tuple(queries))
    return JudgeReading(name, canary, primary, queries=tuple(queries))
