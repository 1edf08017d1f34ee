"""References of the spec are checked from the caches before any traffic moves."""

from __future__ import annotations

from typing import Any

import pytest

from canary.controller.references import invalid_variables, missing, missing_configs
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


# -- the configs the target's pods need --------------------------------------------------

def target(**pod: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [{"name": "app"}], **pod}}}}


def configs(*present: tuple[str, str]) -> Any:
    return lambda kind, name: {} if (kind, name) in present else None


NEEDS_BOTH = target(volumes=[{"name": "a", "configMap": {"name": "settings"}},
                             {"name": "b", "secret": {"secretName": "token"}}])


def test_a_config_the_pods_need_that_does_not_exist_is_missing() -> None:
    assert missing_configs(NEEDS_BOTH, configs(("ConfigMap", "settings")), everywhere) == (
        "spec.targetRef: Deployment shop/web refers to Secret shop/token, not found",)
    assert missing_configs(NEEDS_BOTH, configs(("ConfigMap", "settings"), ("Secret", "token")),
                           everywhere) == ()


def test_an_optional_config_may_be_absent() -> None:
    optional = target(containers=[{"name": "app", "envFrom": [
        {"configMapRef": {"name": "flags", "optional": True}}], "env": [
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k",
                                                     "optional": True}}}]}])
    assert missing_configs(optional, configs(), everywhere) == ()


def test_configs_of_an_unwatched_namespace_or_a_missing_target_are_not_called_missing(
        ) -> None:
    assert missing_configs(NEEDS_BOTH, configs(), lambda namespace: False) == ()
    assert missing_configs(None, configs(), everywhere) == ()


# -- template variables that would change their query ------------------------------------

NUMBER = store(("shop", "errors", "sum(vector({{ variables.code }}))"),
               ("shared", "latency", "y"))


@pytest.mark.parametrize("value", ["1 or up", "1)) or vector(1", '"} or up{', "1 # x"])
def test_a_variable_that_would_change_its_query_names_its_field(value: str) -> None:
    problems = invalid_variables(canary_with_code(value), NUMBER)
    assert len(problems) == 1
    assert problems[0].startswith("spec.analysis.metrics[0].templateVariables.code: ")
    assert repr(value) in problems[0]
    assert problems[0].endswith("(in the query of MetricTemplate shop/errors)")


def test_variables_that_fit_and_templates_not_found_are_no_problem() -> None:
    assert invalid_variables(canary_with_code("42"), NUMBER) == ()
    assert invalid_variables(canary(), TEMPLATES) == ()
    assert invalid_variables(canary_with_code("1 or up"), store()) == ()


def canary_with_code(value: str) -> Canary:
    found = canary()
    metric = found.spec.analysis.metrics[0]  # type: ignore[index]
    metric.template_variables = {"code": value}
    return found
