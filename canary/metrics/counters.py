"""The judge's counters from Prometheus samples (pure).

:func:`canary.metrics.judgequery.judge_query` asks for each workload's cumulative counters,
grouped by ``destination_workload`` (and ``le`` for histograms), each series labelled with
the part of the answer it is (``requests``, ``errors``, ``buckets``, ``lost``,
``previous``); here the
samples of one instant become :class:`~canary.core.observation.Counters` for the canary
and the primary. A workload without series has counted nothing, as far as Prometheus
knows: its counters say so (``present``), so that the judge never mistakes a gap in
Prometheus for zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from canary.core.judge import as_count
from canary.core.observation import Counters, JudgeReading
from canary.metrics.judgequery import JUDGE_PART, JUDGE_PARTS

#: One series at one instant: its labels and value.
Sample = tuple[Mapping[str, str], float]


class Workloads(NamedTuple):
    """The Deployments whose counters are compared."""

    canary: str
    primary: str


def parts(samples: Sequence[Sample], metric_type: str) -> dict[str, list[Sample]]:
    """The samples of one answer of :func:`~canary.metrics.judgequery.judge_query`, by the
    part they belong to; ValueError for a series of no known part."""
    if metric_type not in JUDGE_PARTS:
        raise ValueError(f"unknown judged metric type {metric_type!r}")
    known = (*JUDGE_PARTS[metric_type], "lost", "previous")
    found: dict[str, list[Sample]] = {what: [] for what in known}
    for labels, value in samples:
        what = labels.get(JUDGE_PART, "")
        if what not in found:
            raise ValueError(f"a series of no known part ({JUDGE_PART}={what!r})")
        found[what].append(({k: v for k, v in labels.items() if k != JUDGE_PART}, value))
    return found


def _by_workload(samples: Sequence[Sample], what: str, workloads: Workloads
                 ) -> dict[str, int]:
    """Each workload's value; workloads without a series are left out."""
    totals: dict[str, int] = {}
    for labels, value in samples:
        workload = labels.get("destination_workload", "")
        if workload not in workloads:
            raise ValueError(f"{what}: a series for an unexpected workload {workload!r}")
        if workload in totals:
            raise ValueError(f"{what}: two series for {workload}")
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
             workloads: Workloads, checked: bool = False) -> tuple[Counters, Counters]:
    """The canary's and the primary's counters from the samples of each part of
    ``judge_query`` (see :func:`parts`); ``checked`` when the answer has the ``lost``
    and ``previous`` parts (a workload without a series there lost none, and shows no
    requests at the previous reading's instant). ValueError when they cannot be counts."""
    lost = _by_workload(samples.get("lost", ()), "lost series", workloads)
    previous = _by_workload(samples.get("previous", ()), "previous requests", workloads)

    def check(workload: str) -> tuple[int | None, int | None]:
        if not checked:
            return None, None
        return lost.get(workload, 0), previous.get(workload, 0)

    if metric_type == "errorRate":
        requests = _by_workload(samples["requests"], "requests", workloads)
        errors = _by_workload(samples["errors"], "errors", workloads)
        out = tuple(Counters(requests.get(w, 0), errors.get(w, 0), present=w in requests,
                             lost=check(w)[0], previous=check(w)[1]) for w in workloads)
        for workload, c in zip(workloads, out, strict=True):
            if c.errors > c.requests:
                raise ValueError(f"{workload} has more errors ({c.errors}) than requests "
                                 f"({c.requests})")
        return out[0], out[1]
    if metric_type == "latency":
        buckets = _buckets(samples["buckets"], workloads)
        canary, primary = (Counters(requests=_total(buckets[w]), buckets=buckets[w],
                                    present=bool(buckets[w]), lost=check(w)[0],
                                    previous=check(w)[1])
                           for w in workloads)
        return canary, primary
    raise ValueError(f"unknown judged metric type {metric_type!r}")


def _total(buckets: tuple[tuple[float, int], ...]) -> int:
    return next((count for le, count in buckets if math.isinf(le)), 0)


def reading(name: str, metric_type: str, samples: Sequence[Sample], workloads: Workloads,
            query: str, at: float | None = None, since: float | None = None
            ) -> JudgeReading:
    """A :class:`JudgeReading` from the answer to ``query`` evaluated at ``at``, whose
    ``lost`` part (if ``since`` is set) compared it with ``since``; with the reason when
    the samples are not counts."""
    try:
        canary, primary = counters(metric_type, parts(samples, metric_type), workloads,
                                   checked=since is not None)
    except ValueError as exc:
        return JudgeReading(name, error=str(exc), queries=(query,), at=at, since=since)
    return JudgeReading(name, canary, primary, queries=(query,), at=at, since=since)
