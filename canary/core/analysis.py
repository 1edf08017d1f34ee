"""Verdicts on measured values."""

from __future__ import annotations

from canary.core.observation import MetricValue
from canary.models.canary import CanaryMetric, MetricResult


def judge(metric: CanaryMetric, measured: MetricValue) -> MetricResult:
    """Compare one measurement with its metric's bounds."""
    low, high = metric.bounds()
    result = MetricResult(name=metric.name, value=measured.value, min=low, max=high,
                          verdict="Passed", query=measured.query)
    if measured.error is not None:
        return result.model_copy(update={"verdict": "Error", "message": measured.error})
    if measured.value is None:
        return result.model_copy(update={"verdict": "NoValues",
                                          "message": "the query returned no values"})
    value = measured.value
    if low is not None and value < low:
        return result.model_copy(update={
            "verdict": "Failed", "message": f"{metric.name} {value:g} < {low:g}"})
    if high is not None and value > high:
        return result.model_copy(update={
            "verdict": "Failed", "message": f"{metric.name} {value:g} > {high:g}"})
    return result


def failures(results: list[MetricResult]) -> list[MetricResult]:
    return [r for r in results if r.verdict != "Passed"]
