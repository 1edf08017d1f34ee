"""Threshold checks: a measured value against its metric's bounds."""

from __future__ import annotations

from canary.core.observation import MetricValue
from canary.models.canary import CanaryMetric, MetricResult

#: Why a query usually has no values; said once however many metrics had none.
NO_VALUES_CAUSES = ("usual causes: no traffic to the canary in the interval; "
                    "VirtualService not bound to the `mesh` gateway (in-mesh calls skip "
                    "it); wrong namespace/target labels")


def check_threshold(metric: CanaryMetric, measured: MetricValue, scope: str) -> MetricResult:
    """Compare one measurement with its metric's bounds; ``scope`` says what was queried
    (the workload, namespace and interval), for a query that returned no values."""
    low, high = metric.bounds()
    result = MetricResult(name=metric.name, value=measured.value, min=low, max=high,
                          verdict="Passed", query=measured.query)
    if measured.unavailable:
        return result.model_copy(update={"verdict": "Unavailable", "message": measured.error})
    if measured.error is not None:
        return result.model_copy(update={"verdict": "Error", "message": measured.error})
    if measured.value is None:
        return result.model_copy(update={"verdict": "NoValues",
                                          "message": f"no values for {scope}"})
    value = measured.value
    if low is not None and value < low:
        return result.model_copy(update={
            "verdict": "Failed", "message": f"{metric.name} {value:g} < {low:g}"})
    if high is not None and value > high:
        return result.model_copy(update={
            "verdict": "Failed", "message": f"{metric.name} {value:g} > {high:g}"})
    return result


def failures(results: list[MetricResult]) -> list[MetricResult]:
    """The checks that failed; an unavailable metric is no failure (no evidence at all)."""
    return [r for r in results if r.verdict not in ("Passed", "Unavailable")]


def scope(namespace: str, target: str, interval: str) -> str:
    """What a metric's query selects, in words."""
    return f"workload {target} in namespace {namespace} over {interval}"
