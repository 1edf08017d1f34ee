"""gRPC calls sent through a Gateway are routed by its GRPCRoute and counted as Istio
counts gRPC: ``request_protocol="grpc"``, HTTP 200 even when the call fails, and the
outcome in ``grpc_response_status``; plain requests are left as they were."""

from __future__ import annotations

from typing import cast

from canary.devenv.traffic.attachment import GRPC_ROUTE, HTTP_ROUTE
from canary.devenv.traffic.cluster import ClusterView
from canary.devenv.traffic.gatewayapi import address_of
from canary.devenv.traffic.mix import HostTraffic, PathChoice, Profile, TrafficMix
from canary.devenv.traffic.routing import Request
from canary.devenv.traffic.simulator import Simulator
from tests.unit.devenv.gateways import FakeCluster, FakeGatewayApi

ADDRESS = address_of("shop", "public")
GRPC = {"content-type": "application/grpc", "host": "shop.example.com"}
GATEWAY = {"metadata": {"name": "public", "namespace": "shop"},
           "spec": {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}
#: gRPC calls of the Cart service go to ``cart`` (which fails every call); the rest of
#: the gRPC calls to ``shop``; plain requests to ``web``.
GRPC_ROUTE_OBJECT = {
    "metadata": {"name": "cart", "namespace": "shop"},
    "spec": {"parentRefs": [{"name": "public"}], "rules": [
        {"matches": [{"method": {"service": "shop.Cart"}}],
         "backendRefs": [{"name": "cart", "port": 80}]},
        {"backendRefs": [{"name": "shop", "port": 80}]}]}}
HTTP_ROUTE_OBJECT = {"metadata": {"name": "web", "namespace": "shop"},
                     "spec": {"parentRefs": [{"name": "public"}],
                              "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}}


def simulator() -> Simulator:
    """``cart`` fails every request; ``shop`` and ``web`` answer every one."""
    api = FakeGatewayApi(GATEWAY, [(GRPC_ROUTE, GRPC_ROUTE_OBJECT),
                                   (HTTP_ROUTE, HTTP_ROUTE_OBJECT)])
    return Simulator(cast(ClusterView, FakeCluster(api, error_rates={"cart": 1.0})), seed=3)


def call(path: str, **headers: str) -> Request:
    return Request(ADDRESS, path, "POST", {**GRPC, **headers})


def counted(sim: Simulator, workload: str, reporter: str = "destination", **labels: str
            ) -> int:
    return sim.metrics.total(reporter=reporter, destination_workload=workload, **labels)


class TestGrpcCalls:
    def test_a_failed_call_is_http_200_with_a_grpc_error(self) -> None:
        sim = simulator()
        sim.deliver(call("/shop.Cart/Add"))
        for reporter in ("destination", "source"):
            assert counted(sim, "cart", reporter, request_protocol="grpc",
                           response_code="200", grpc_response_status="2") == 1

    def test_a_successful_call_is_grpc_ok(self) -> None:
        sim = simulator()
        sim.deliver(call("/shop.Catalog/List"))
        assert counted(sim, "shop", request_protocol="grpc", response_code="200",
                       grpc_response_status="0") == 1

    def test_a_call_nothing_routes_is_unimplemented(self) -> None:
        sim = simulator()
        request = Request(address_of("shop", "other"), "/shop.Cart/Add", "POST", GRPC)
        sim.deliver(request)
        assert sim.metrics.total(reporter="source", request_protocol="grpc",
                                 response_code="200", grpc_response_status="12") == 1

    def test_generated_grpc_traffic_is_counted_as_grpc(self) -> None:
        sim = simulator()
        mix = TrafficMix(users=20, profiles=[Profile(headers=GRPC)],
                         paths=[PathChoice(path="/shop.Cart/Add", method="POST")])
        sim.set_host(ADDRESS, HostTraffic(rps=100, mix=mix))
        sim.tick(1.0)
        assert sim.metrics.total(reporter="destination", destination_workload="cart",
                                 grpc_response_status="2") == 100
        assert sim.metrics.total(response_code="500") == 0


class TestPlainRequests:
    def test_a_plain_request_has_no_grpc_status(self) -> None:
        sim = simulator()
        sim.deliver(Request(ADDRESS, "/shop.Cart/Add", "POST", {"host": "shop.example.com"}))
        assert counted(sim, "web", request_protocol="http", response_code="200",
                       grpc_response_status="") == 1
