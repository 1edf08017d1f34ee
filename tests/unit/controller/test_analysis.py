"""The analysis measures each metric; a query that cannot be rendered is that metric's
error, naming the MetricTemplate the placeholder is in."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.controller.analysis import Analyst
from canary.core import MetricValue
from canary.errors import ConfigError
from canary.kube.resources import Resource
from canary.metrics.prometheus import MetricsUnavailable, QueryFailed
from canary.metrics.queries import QueryContext, render
from canary.models.canary import Canary, CanaryJudge, Provider
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


async def cached(resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
    """The watch cache: the MetricTemplates of :data:`TEMPLATES`."""
    query = TEMPLATES.get((namespace, name))
    return None if query is None else {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": {"type": "prometheus"}, "query": query}}


def canary(*metrics: dict[str, Any]) -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                 "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10,
                              "metrics": list(metrics)}}})


def errors_metric(ref: dict[str, str] | None = None, **variables: str) -> dict[str, Any]:
    return {"name": "errors", "templateRef": ref or {"name": "errors"},
            "templateVariables": variables, "thresholdRange": {"max": 1}}


def analyst_of(prometheus: Any, mesh_provider: str = "istio") -> Analyst:
    """An Analyst asking ``prometheus``, for Canaries without a provider ``mesh_provider``."""
    return Analyst(None, AnalysisSettings(metrics_server="http://prom:9090"),  # type: ignore[arg-type]
                   querier_factory=lambda *_: prometheus, cached=cached,
                   mesh_provider=mesh_provider)


def measure(subject: Canary) -> tuple[tuple[MetricValue, ...], FakePrometheus]:
    prometheus = FakePrometheus()
    return asyncio.run(analyst_of(prometheus).measure(subject)), prometheus


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
        # The schema refuses such a name; one stored before it did still reaches here.
        subject = canary(metric)
        target = subject.spec.target_ref.model_copy(update={"name": "Web"})
        subject = subject.model_copy(update={"spec": subject.spec.model_copy(
            update={"target_ref": target})})
        (value,), _ = measure(subject)
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


def routed_canary(provider: str | None, implementation: str | None = None,
                  judge: bool = False) -> Canary:
    """A Canary checking both built-ins (and judging the error rate, with ``judge``),
    routed by ``provider`` with ``spec.service.gatewayImplementation``."""
    subject = canary({"name": "request-success-rate", "thresholdRange": {"min": 99}},
                     {"name": "request-duration", "thresholdRange": {"max": 500}})
    if provider is not None:
        subject.spec.provider = Provider(provider)
    subject.spec.service.gateway_implementation = implementation
    if judge:
        subject.spec.analysis.judge = CanaryJudge.model_validate(
            {"metrics": [{"name": "errors", "type": "errorRate"}]})
    return subject


def measure_under(subject: Canary, mesh_provider: str) -> tuple[MetricValue, ...]:
    return asyncio.run(analyst_of(FakePrometheus(), mesh_provider).measure(subject))


class TestBuiltinsFollowTheRouting:
    @pytest.mark.parametrize(("provider", "default", "implementation", "metric"), [
        ("istio", "gatewayapi:v1", "envoy-gateway", "istio_requests_total"),
        ("gatewayapi:v1", "istio", None, "istio_requests_total"),
        ("gatewayapi:v1", "istio", "istio", "istio_requests_total"),
        ("gatewayapi:v1", "istio", "envoy-gateway", "envoy_cluster_upstream_rq_xx"),
        (None, "gatewayapi:v1", "envoy-gateway", "envoy_cluster_upstream_rq_xx"),
    ])
    def test_the_data_plane_of_the_route_is_measured(
            self, provider: str | None, default: str, implementation: str | None,
            metric: str) -> None:
        success, duration = measure_under(routed_canary(provider, implementation), default)
        assert success.error is None and metric in (success.query or "")
        assert duration.error is None
        assert ("envoy_cluster_upstream_rq_time_bucket" in (duration.query or "")) == \
            (metric != "istio_requests_total")

    @pytest.mark.parametrize("default", ["istio", "gatewayapi:v1"])
    def test_another_implementation_makes_each_builtin_an_error_naming_it(
            self, default: str) -> None:
        provider = "gatewayapi:v1" if default == "istio" else None
        values = measure_under(routed_canary(provider, "contour"), default)
        for index, value in enumerate(values):
            assert value.query is None and value.error is not None
            assert value.error.startswith(f"spec.analysis.metrics[{index}].name: "
                                          f"{value.name} is not built in here")
            assert "spec.service.gatewayImplementation is 'contour'" in value.error
            assert "templateRef" in value.error

    @pytest.mark.parametrize("provider", ["kubernetes", None])
    def test_kubernetes_reads_what_the_pods_sidecars_report(
            self, provider: str | None) -> None:
        values = measure_under(routed_canary(provider, "envoy-gateway"), "kubernetes")
        assert all(v.error is None and "reporter=\"destination\"" in (v.query or "")
                   for v in values)


class RecordingQuerier:
    """Answers every judge query with no samples, recording it."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    async def samples(self, promql: str, at: float) -> list[Any]:
        self.queries.append(promql)
        return []


def read_under(subject: Canary, mesh_provider: str) -> tuple[Any, RecordingQuerier]:
    querier = RecordingQuerier()
    return asyncio.run(analyst_of(querier, mesh_provider).read_counters(subject)), querier


class TestTheJudgeFollowsTheRouting:
    def test_on_envoy_gateway_it_reads_the_clusters_of_canarys_route(self) -> None:
        readings, querier = read_under(routed_canary("gatewayapi:v1", "envoy-gateway",
                                                     judge=True), "istio")
        assert readings and all(r.error is None for r in readings)
        assert querier.queries and all(
            'envoy_cluster_name=~"(httproute|grpcroute)/shop/web/rule/[0-9]+/backend/(0|1)"'
            in q and "istio_" not in q for q in querier.queries)

    def test_on_istio_it_reads_istio(self) -> None:
        _, querier = read_under(routed_canary(None, judge=True), "gatewayapi:v1")
        assert querier.queries and all("istio_requests_total" in q for q in querier.queries)

    def test_without_known_metrics_every_reading_is_an_error_and_nothing_is_asked(
            self) -> None:
        readings, querier = read_under(routed_canary("gatewayapi:v1", "contour", judge=True),
                                       "istio")
        assert readings and querier.queries == []
        assert all((r.error or "").startswith("spec.analysis.judge: nothing to judge with")
                   for r in readings)


class FailingQuerier:
    """Fails every judge query with ``failure``."""

    def __init__(self, failure: QueryFailed) -> None:
        self.failure = failure

    async def samples(self, promql: str, at: float) -> list[Any]:
        raise self.failure


class TestJudgeReadingsWithoutPrometheus:
    """A reading the server could not answer is marked as an outage; one it refused is a
    plain error."""

    def read(self, failure: QueryFailed) -> Any:
        return asyncio.run(analyst_of(FailingQuerier(failure)).read_counters(
            routed_canary(None, judge=True)))

    def test_an_outage_marks_the_readings_unavailable(self) -> None:
        readings = self.read(MetricsUnavailable("Prometheus at prom:9090: connection refused"))
        assert readings and all(r.unavailable and "connection refused" in (r.error or "")
                                for r in readings)

    def test_a_refused_query_is_an_error_only(self) -> None:
        readings = self.read(QueryFailed("Prometheus at prom:9090: HTTP 400, bad query: x"))
        assert readings and all(not r.unavailable and r.error for r in readings)


class TestGrpcOnEnvoyGateway:
    """A Canary stored before the apply-time rule: its error checks are errors naming
    the field, never a success rate blind to failed calls."""

    def subject(self) -> Canary:
        grpc = routed_canary("gatewayapi:v1", "envoy-gateway", judge=True)
        grpc.spec.service.app_protocol = "grpc"
        return grpc

    def test_the_success_rate_is_an_error_and_the_latency_is_measured(self) -> None:
        success, duration = measure_under(self.subject(), "istio")
        assert success.query is None and success.error is not None
        assert success.error.startswith("spec.analysis.metrics[0].name: request-success-rate "
                                        "cannot see failed gRPC calls here")
        assert duration.error is None

    def test_the_judges_error_rate_is_an_error_read_from_nothing(self) -> None:
        readings, querier = read_under(self.subject(), "istio")
        assert readings is not None and querier.queries == []
        assert [r.error for r in readings] == [
            "spec.analysis.judge: errorRate cannot see failed gRPC calls here: Envoy "
            "Gateway's cluster stats count HTTP statuses, and a failed gRPC call is HTTP 200"]
