"""A deleted namespace's request series leave the simulator's metrics, as a mesh's go
with the namespace's proxies: a long run serving many namespaces keeps each scrape as
short as the namespaces alive make it."""

from __future__ import annotations

from canary.devenv.traffic.envoy import EnvoyMetrics
from canary.devenv.traffic.metrics import IstioMetrics, Labels
from tests.unit.devenv.test_simulator_gateway_api import simulator, through_gateway


def labels(source: str, destination: str) -> Labels:
    return Labels(reporter="destination", source_workload="caller",
                  source_workload_namespace=source, source_app="caller",
                  destination_workload="web", destination_workload_namespace=destination,
                  destination_app="web", destination_version="v1",
                  destination_service=f"web.{destination}.svc.cluster.local",
                  destination_service_name="web", destination_service_namespace=destination,
                  destination_canonical_service="web", request_protocol="http",
                  response_code="200", grpc_response_status="", response_flags="-",
                  connection_security_policy="none")


def test_istio_series_from_or_to_the_namespace_go() -> None:
    metrics = IstioMetrics()
    for source, destination in (("shop", "shop"), ("tools", "shop"), ("shop", "pay"),
                                ("tools", "pay")):
        metrics.record(labels(source, destination), 5.0)
    assert metrics.forget("shop") == 3
    assert metrics.total() == 1 and metrics.total(source_workload_namespace="tools") == 1
    assert metrics.forget("shop") == 0


def test_envoy_clusters_of_the_namespaces_routes_go() -> None:
    metrics = EnvoyMetrics()
    for name in ("httproute/shop/web/rule/0", "grpcroute/shop/cart/rule/1/backend/0",
                 "httproute/shopping/web/rule/0"):
        metrics.record(name, 200, 5.0)
    assert metrics.forget("shop") == 2
    assert metrics.total("httproute/shopping/web/rule/0") == 1


def test_the_simulator_drops_both_for_a_deleted_namespace() -> None:
    sim = simulator()
    for _ in range(20):
        sim.deliver(through_gateway())
    assert sim.metrics.total() > 0 and sim.envoy.total("httproute/shop/shop/rule/2/backend/0") \
        + sim.envoy.total("httproute/shop/shop/rule/2/backend/1") == 20
    sim.forget_namespace("elsewhere")
    assert sim.metrics.total() > 0
    sim.forget_namespace("shop")
    assert sim.metrics.total(destination_workload_namespace="shop") == 0
    assert sim.envoy.total("httproute/shop/shop/rule/2/backend/0") == 0
