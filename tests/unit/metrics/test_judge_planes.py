"""The judge reads the same counters on each data plane: on Envoy Gateway, those of the
canary's and the primary's clusters, each series named after its workload before
anything is summed or compared, so that the rest of the judge is the same as on Istio."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.errors import ConfigError
from canary.metrics.judgequery import judge_query

WORKLOADS = ("web", "web-primary")
RELABEL = re.compile(r'label_replace\(label_replace\((.*?), "destination_workload", '
                     r'"([^"]+)", "envoy_cluster_name", "([^"]+)"\), "destination_workload", '
                     r'"([^"]+)", "envoy_cluster_name", "([^"]+)"\)')
SELECTOR = re.compile(r'(envoy_cluster_upstream_rq_\w+)\{([^}]*)\}')


def envoy(metric_type: str, since: float | None = None, service: str = "web") -> str:
    return judge_query(metric_type, "shop", WORKLOADS, since=since, plane="envoy-gateway",
                       service=service)


class TestEnvoyGatewayCounters:
    @pytest.mark.parametrize(("metric_type", "metric"), [
        ("errorRate", "envoy_cluster_upstream_rq_xx"),
        ("latency", "envoy_cluster_upstream_rq_time_bucket")])
    @pytest.mark.parametrize("since", [None, 12.5])
    def test_every_series_is_named_after_its_workload(
            self, metric_type: str, metric: str, since: float | None) -> None:
        query = envoy(metric_type, since)
        selectors = SELECTOR.findall(query)
        relabelled = RELABEL.findall(query)
        # Every selector is wrapped in the relabelling, and nothing else reads a series.
        assert selectors and len(relabelled) == len(selectors)
        for inner, canary, canary_clusters, primary, primary_clusters in relabelled:
            assert (canary, primary) == WORKLOADS
            assert re.fullmatch(canary_clusters, "httproute/shop/web/rule/2/backend/1")
            assert not re.fullmatch(canary_clusters, "httproute/shop/web/rule/2/backend/0")
            assert re.fullmatch(primary_clusters, "grpcroute/shop/web/rule/0/backend/0")
            assert not re.fullmatch(primary_clusters, "grpcroute/shop/web/rule/0/backend/1")
            assert metric in inner
        for name, labels in selectors:
            assert name == metric
            assert labels.startswith('envoy_cluster_name=~"(httproute|grpcroute)/shop/web/'
                                     'rule/[0-9]+/backend/(0|1)"')

    def test_errors_are_the_5xx_class_and_requests_every_class(self) -> None:
        requests, errors = envoy("errorRate").split(" or label_replace(sum")
        assert "envoy_response_code_class" not in requests and '"requests"' in requests
        assert 'envoy_response_code_class="5"' in errors and '"errors"' in errors

    def test_a_later_reading_checks_the_same_series_at_the_previous_instant(self) -> None:
        query = envoy("latency", since=12.3456)
        assert '"lost"' in query and '"previous"' in query
        assert "backend/(0|1)\"} offset 12346ms" in query
        assert "backend/(0|1)\"}[12346ms])" in query  # resets() over the step
        assert 'backend/(0|1)",le="+Inf"} offset 12346ms' in query

    @given(st.lists(st.from_regex(r"[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True),
                    min_size=2, max_size=3).map(".".join))
    def test_dots_in_the_service_name_match_literally(self, service: str) -> None:
        [relabelled, *_] = RELABEL.findall(envoy("errorRate", service=service))
        # The regex as PromQL reads the string (a doubled backslash is one).
        regex = relabelled[2].replace("\\\\", "\\")
        assert re.fullmatch(regex, f"httproute/shop/{service}/rule/0/backend/1")
        assert not re.fullmatch(regex,
                                f"httproute/shop/{service.replace('.', 'x')}/rule/0/backend/1")

    def test_excluded_sources_are_refused_naming_the_field(self) -> None:
        with pytest.raises(ConfigError, match=r"^spec\.analysis\.judge\.excludeSources: "):
            judge_query("errorRate", "shop", WORKLOADS, exclude_sources=("loadtester",),
                        plane="envoy-gateway", service="web")

    @pytest.mark.parametrize("service", [None, 'web"}', "Web"])
    def test_the_route_must_be_named_and_a_kubernetes_name(self, service: str | None) -> None:
        with pytest.raises(ConfigError):
            judge_query("errorRate", "shop", WORKLOADS, plane="envoy-gateway",
                        service=service)

    def test_an_unknown_plane_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="no judged metrics on 'contour'"):
            judge_query("errorRate", "shop", WORKLOADS, plane="contour")
