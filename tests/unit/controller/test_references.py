"""References of the spec are checked from the caches before any traffic moves."""

from __future__ import annotations

from typing import Any

from canary.controller.references import missing
from canary.models.canary import Canary


def canary(**spec: Any) -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "service": {"port": 80},
                 "analysis": {"interval": "10s", "threshold": 2, "metrics": [
                     {"name": "errors", "templateRef": {"name": "errors"},
                      "templateVariables": {"code": "5.."}, "thresholdRange": {"max": 1}},
                     {"name": "latency", "templateRef": {"name": "latency",
                                                         "namespace": "shared"},
                      "thresholdRange": {"max": 500}}]},
                 **spec}})


def store(*objects: tuple[str, str, str]) -> Any:
    found = {(ns, name): {"spec": {"query": query}} for ns, name, query in objects}
    return lambda namespace, name: found.get((namespace, name))


def everywhere(namespace: str) -> bool:
    return True


TEMPLATES = store(("shop", "errors", 'x{code=~"{{ variables.code }}"}'),
                  ("shared", "latency", "y"))


def test_every_reference_found_is_no_problem() -> None:
    assert missing(canary(), TEMPLATES, store(), everywhere) == ()


def test_each_missing_reference_names_its_field_and_object() -> None:
    problems = missing(canary(autoscalerRef={"kind": "HorizontalPodAutoscaler",
                                             "name": "web"}),
                       store(("shop", "errors",
                              "{{ variables.code | regex }} {{ variables.zone }}")),
                       store(), everywhere)
    assert problems == (
        "spec.analysis.metrics[0].templateVariables: MetricTemplate shop/errors uses "
        "{{ variables.zone }}, which is not set",
        "spec.analysis.metrics[1].templateRef: MetricTemplate shared/latency not found",
        "spec.autoscalerRef: HorizontalPodAutoscaler shop/web not found")


def test_a_template_in_an_unwatched_namespace_is_not_called_missing() -> None:
    """It is read from the API at the analysis: the cache cannot tell."""
    problems = missing(canary(), store(("shop", "errors", "x")), store(),
                       lambda namespace: namespace == "shop")
    assert problems == ()
