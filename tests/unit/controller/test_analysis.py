"""The analysis measures each metric; a query that cannot be rendered is that metric's
error, naming the MetricTemplate the placeholder is in."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.controller.analysis import Analyst
from canary.core import MetricValue
from canary.errors import ConfigError
from canary.kube.resources import Resource
from canary.metrics.queries import QueryContext, render
from canary.models.canary import Canary
from canary.settings import AnalysisSettings

QUERY = 'sum(rate(requests{code=~"{{ variables.codes }}"}[{{ interval }}]))'
TEMPLATES = {("shop", "errors"): QUERY, ("shared", "errors"): QUERY}


class FakePrometheus:
    """Answers every query with 1, recording the queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def query(self, name: str, promql: str) -> MetricValue:
        self.queries.append(promql)
        return MetricValue(name, 1.0, query=promql)


def cached(resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
    """The watch cache: the MetricTemplates of :data:`TEMPLATES`."""
    query = TEMPLATES.get((namespace, name))
    return None if query is None else {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": {"type": "prometheus"}, "query": query}}


def canary(*metrics: dict[str, Any], target: str = "web") -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"kind": "Deployment", "name": target},
                 "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10,
                              "metrics": list(metrics)}}})


def errors_metric(ref: dict[str, str] | None = None, **variables: str) -> dict[str, Any]:
    return {"name": "errors", "templateRef": ref or {"name": "errors"},
            "templateVariables": variables, "thresholdRange": {"max": 1}}


def measure(subject: Canary) -> tuple[tuple[MetricValue, ...], FakePrometheus]:
    prometheus = FakePrometheus()
    analyst = Analyst(None, AnalysisSettings(metrics_server="http://prom:9090"),  # type: ignore[arg-type]
                      querier_factory=lambda *_: prometheus,  # type: ignore[arg-type]
                      cached=cached)
    return asyncio.run(analyst.measure(subject)), prometheus


class TestRenderingErrors:
    def test_a_refused_variable_names_the_metric_template(self) -> None:
        (value,), prometheus = measure(canary(errors_metric(codes="nomatch|.*")))
        assert value.error is not None and prometheus.queries == []
        assert value.error.startswith("MetricTemplate shop/errors: templateVariables.codes "
                                      "'nomatch|.*' is in a label matcher's string (=~)")

    def test_the_template_is_named_in_the_namespace_it_was_read_from(self) -> None:
        (value,), _ = measure(canary(errors_metric({"name": "errors", "namespace": "shared"})))
        assert value.error == ("MetricTemplate shared/errors: the query uses "
                               "{{ variables.codes }} but templateVariables has no 'codes'")

    def test_a_built_in_querys_error_names_no_template(self) -> None:
        metric = {"name": "request-success-rate", "thresholdRange": {"min": 99}}
        (value,), _ = measure(canary(metric, target="Web"))
        assert value.error == "target 'Web' is not a valid Kubernetes name"

    @given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12))
    def test_the_error_is_renderings_after_the_template_and_only_then(
            self, codes: str) -> None:
        (value,), prometheus = measure(canary(errors_metric(codes=codes)))
        context = QueryContext("web", "shop", "web", "web", "1m", {"codes": codes})
        try:
            assert prometheus.queries == [render(QUERY, context)] and value.error is None
        except ConfigError as exc:
            assert value.error == f"MetricTemplate shop/errors: {exc}"
