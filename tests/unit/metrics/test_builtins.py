"""The built-in checks follow the routing: Istio's metrics for ``istio`` (and the pods'
sidecars for ``kubernetes``), the named Gateway API implementation's for ``gatewayapi:v1``,
and a refusal naming the field otherwise."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.errors import ConfigError
from canary.metrics.builtins import (
    BUILTIN_NAMES,
    ENVOY_GATEWAY_BUILTINS,
    ISTIO_BUILTINS,
    DataPlane,
    builtin_query,
    data_plane,
)
from canary.metrics.promql import Kind, string_value, tokenize
from canary.metrics.queries import QueryContext, render

FIELD = "spec.analysis.metrics[0].name"
#: Kubernetes names: lowercase alphanumerics and '-', dots allowed in a target.
LABELS = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
UNKNOWN = LABELS.filter(lambda name: name not in ("istio", "envoy-gateway"))


class TestWhoseMetrics:
    def test_istio_reads_istio_whatever_the_gateway_field_says(self) -> None:
        assert data_plane("istio", "envoy-gateway") == DataPlane("istio")

    @pytest.mark.parametrize(("implementation", "plane"), [
        (None, "istio"), ("istio", "istio"), ("envoy-gateway", "envoy-gateway")])
    def test_the_gateway_api_reads_the_named_implementation(
            self, implementation: str | None, plane: str) -> None:
        assert data_plane("gatewayapi:v1", implementation).implementation == plane

    @given(UNKNOWN)
    def test_another_implementation_has_no_builtins_and_the_field_is_named(
            self, implementation: str) -> None:
        plane = data_plane("gatewayapi:v1", implementation)
        assert plane.implementation is None
        assert "spec.service.gatewayImplementation" in plane.why
        assert repr(implementation) in plane.why

    def test_kubernetes_reads_the_pods_sidecars(self) -> None:
        assert data_plane("kubernetes", "envoy-gateway") == DataPlane("istio")

    def test_a_provider_canary_does_not_route_with_has_no_builtins(self) -> None:
        plane = data_plane("linkerd", None)
        assert plane.implementation is None and "spec.provider linkerd" in plane.why


class TestChoosingTheQuery:
    def test_every_data_plane_canary_knows_has_every_builtin(self) -> None:
        assert set(ISTIO_BUILTINS) == set(ENVOY_GATEWAY_BUILTINS) == set(BUILTIN_NAMES)

    @pytest.mark.parametrize("name", BUILTIN_NAMES)
    def test_each_data_plane_has_its_own_query(self, name: str) -> None:
        assert builtin_query(DataPlane("istio"), name, FIELD) == ISTIO_BUILTINS[name]
        assert builtin_query(DataPlane("envoy-gateway"), name, FIELD) == \
            ENVOY_GATEWAY_BUILTINS[name]

    @pytest.mark.parametrize(("provider", "implementation"), [
        ("linkerd", None), ("gatewayapi:v1", "contour")])
    @pytest.mark.parametrize("name", BUILTIN_NAMES)
    def test_a_builtin_without_metrics_is_refused_naming_the_field(
            self, provider: str, implementation: str | None, name: str) -> None:
        with pytest.raises(ConfigError) as refused:
            builtin_query(data_plane(provider, implementation), name, FIELD)
        message = str(refused.value)
        assert message.startswith(f"{FIELD}: {name} is not built in here")
        assert "templateRef" in message

    def test_a_name_that_is_no_builtin_is_refused_on_every_plane(self) -> None:
        with pytest.raises(ConfigError, match=r"metrics\[0\].name: 'errors' is not built in"):
            builtin_query(DataPlane("istio"), "errors", FIELD)


def rendered(name: str, namespace: str, service: str) -> str:
    return render(ENVOY_GATEWAY_BUILTINS[name],
                  QueryContext("web", namespace, "web", service, "1m", {}))


class TestEnvoyGatewayBuiltins:
    def test_the_success_rate_is_the_canary_clusters_share_of_non_5xx(self) -> None:
        query = rendered("request-success-rate", "shop", "web")
        clusters = 'envoy_cluster_name=~"(httproute|grpcroute)/shop/web/rule/[0-9]+/backend/1"'
        assert query == (
            f'sum(rate(envoy_cluster_upstream_rq_xx{{{clusters},'
            'envoy_response_code_class!="5"}[1m])) '
            f'/ sum(rate(envoy_cluster_upstream_rq_xx{{{clusters}}}[1m])) * 100')

    def test_the_duration_is_the_p99_of_the_canary_clusters(self) -> None:
        query = rendered("request-duration", "shop", "web")
        assert query == (
            "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{"
            'envoy_cluster_name=~"(httproute|grpcroute)/shop/web/rule/[0-9]+/backend/1"}'
            "[1m])) by (le))")

    @given(LABELS, st.lists(LABELS, min_size=1, max_size=3).map(".".join),
           st.sampled_from(BUILTIN_NAMES))
    def test_names_match_only_themselves_in_the_cluster_regex(
            self, namespace: str, service: str, name: str) -> None:
        query = rendered(name, namespace, service)
        regexes = [string_value(t) for t in tokenize(query)
                   if t.kind is Kind.STRING and "rule/" in string_value(t)]
        assert regexes
        for regex in regexes:
            pattern = re.compile(regex)
            for kind in ("httproute", "grpcroute"):
                assert pattern.fullmatch(f"{kind}/{namespace}/{service}/rule/3/backend/1")
                assert not pattern.fullmatch(f"{kind}/{namespace}/{service}/rule/3/backend/0")
                assert not pattern.fullmatch(f"{kind}/{namespace}/{service}x/rule/0/backend/1")
            if "." in service:
                assert not pattern.fullmatch(
                    f"httproute/{namespace}/{service.replace('.', 'x')}/rule/0/backend/1")


class TestGrpcServices:
    """A failed gRPC call is an HTTP 200 whose grpc-status says it failed."""

    def test_istios_success_rate_counts_server_failures_of_grpc_calls(self) -> None:
        query = builtin_query(data_plane("istio", None, grpc=True), "request-success-rate",
                              FIELD)
        numerator = query.split(" / ")[0]
        assert 'response_code!~"5.*",grpc_response_status!~"2|4|12|13|14|15"' in numerator
        assert "grpc_response_status" not in query.split(" / ")[1]

    def test_envoy_gateway_cannot_see_them_and_refuses_the_success_rate(self) -> None:
        plane = data_plane("gatewayapi:v1", "envoy-gateway", grpc=True)
        with pytest.raises(ConfigError, match=r"^spec\.analysis\.metrics\[0\]\.name: "
                           "request-success-rate cannot see failed gRPC calls here"):
            builtin_query(plane, "request-success-rate", FIELD)
        assert builtin_query(plane, "request-duration", FIELD) == \
            ENVOY_GATEWAY_BUILTINS["request-duration"]

    @pytest.mark.parametrize(("provider", "implementation"), [
        ("istio", None), ("gatewayapi:v1", "istio"), ("gatewayapi:v1", "envoy-gateway")])
    def test_http_services_are_unaffected(self, provider: str,
                                          implementation: str | None) -> None:
        assert not data_plane(provider, implementation).grpc_errors_unseen
