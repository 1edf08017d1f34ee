"""Requests through a Gateway are also counted in Envoy Gateway's cluster stats, under
the cluster names Envoy Gateway gives route rules and, when a backendRef of the rule has a
filter, each backendRef; exposed under Envoy's metric and label names."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from canary.devenv.traffic.envoy import EnvoyMetrics, cluster_name
from tests.unit.devenv.test_simulator_gateway_api import simulator, through_gateway

RULE = "httproute/shop/shop/rule"


def exposed(metrics: EnvoyMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the text exposition, by its name and labels."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class TestClusterNames:
    def test_a_rule_without_backend_filters_is_one_cluster(self) -> None:
        sim = simulator()
        sim.deliver(through_gateway(cookie="canary-session=abc"))
        assert sim.envoy.total(f"{RULE}/1") == 1

    def test_a_rule_with_a_backend_filter_has_a_cluster_per_backend_ref(self) -> None:
        sim = simulator()
        for _ in range(200):
            sim.deliver(through_gateway())
        primary, canary = (sim.envoy.total(f"{RULE}/2/backend/{i}") for i in (0, 1))
        assert primary + canary == 200 and primary > 50 and canary > 50
        assert sim.envoy.total(f"{RULE}/2") == 0
        # The same requests, as Istio counts them at the destinations.
        assert sim.metrics.total(reporter="destination", destination_workload="shop-canary") \
            == canary

    def test_a_backend_that_does_not_exist_is_in_no_cluster(self) -> None:
        sim = simulator()
        assert sim.deliver(through_gateway("/gone/x")).status == 500
        assert sim.envoy.total(f"{RULE}/0") == 0 == sim.envoy.total(f"{RULE}/0/backend/0")

    @given(st.sampled_from(["HTTPRoute", "GRPCRoute"]), st.integers(0, 20),
           st.none() | st.integers(0, 20))
    def test_names_are_envoy_gateways(self, kind: str, rule: int, backend: int | None) -> None:
        name = cluster_name(kind, "shop", "web", rule, backend)
        expected = f"{kind.lower()}/shop/web/rule/{rule}"
        assert name == (expected if backend is None else f"{expected}/backend/{backend}")


class TestExposition:
    @given(st.lists(st.tuples(st.sampled_from(["a/0", "a/1"]),
                              st.sampled_from([200, 201, 404, 500, 503]),
                              st.floats(0, 5000)), max_size=40))
    def test_every_count_agrees_under_envoys_names(
            self, requests: list[tuple[str, int, float]]) -> None:
        metrics = EnvoyMetrics()
        for cluster, status, latency in requests:
            metrics.record(cluster, status, latency)
        samples = exposed(metrics)

        def value(name: str, **labels: str) -> float:
            return samples.get((name, frozenset(labels.items())), 0.0)

        for cluster in ("a/0", "a/1"):
            statuses = Counter(s for c, s, _ in requests if c == cluster)
            total = sum(statuses.values())
            label = {"envoy_cluster_name": cluster}
            for status, count in statuses.items():
                assert value("envoy_cluster_upstream_rq", **label,
                             envoy_response_code=str(status)) == count
            for code_class in "245":
                assert value("envoy_cluster_upstream_rq_xx", **label,
                             envoy_response_code_class=code_class) == sum(
                    n for s, n in statuses.items() if str(s)[0] == code_class)
            assert value("envoy_cluster_upstream_rq_total", **label) == total
            assert value("envoy_cluster_upstream_rq_time_bucket", **label, le="+Inf") == total
            assert value("envoy_cluster_upstream_rq_time_count", **label) == total
            assert value("envoy_cluster_upstream_rq_time_bucket", **label, le="1000") == sum(
                1 for c, _, ms in requests if c == cluster and ms <= 1000)
