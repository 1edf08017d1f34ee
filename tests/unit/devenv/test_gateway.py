"""Traffic through an ingress gateway is routed as Istio routes it: by the VirtualServices
bound to the gateway whose hosts match the Host header, never by mesh-only ones; and mesh
traffic never by gateway-only ones."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.devenv.traffic.gateway import (
    GATEWAY_WORKLOAD,
    gateway_route,
    host_rank,
    ingress_of,
)
from canary.devenv.traffic.routing import Destination, Request, bound_to, route_request

LABEL = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
PUBLIC = ("istio-system/public-gateway",)


def gateway(name: str, namespace: str, selector: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector, "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}


def service(name: str, namespace: str, selector: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": selector, "ports": [{"port": 80}]}}


def virtual_service(name: str, namespace: str, hosts: list[str], gateways: list[str] | None,
                    created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": hosts, "http": [
        {"route": [{"destination": {"host": f"{name}-primary"}}]}]}
    if gateways is not None:
        spec["gateways"] = gateways
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
            "spec": spec}


class TestWhichServicesAreGateways:
    def test_a_service_selecting_the_gateways_labels_is_its_ingress(self) -> None:
        ingress = ingress_of(service("istio-gateway", "istio-system", {"istio": "ingressgateway"}),
                             [gateway("public-gateway", "istio-system",
                                      {"istio": "ingressgateway"})])
        assert ingress is not None
        assert ingress.gateways == PUBLIC
        assert (ingress.source.workload, ingress.source.namespace) == \
            (GATEWAY_WORKLOAD, "istio-system")

    @given(LABEL, LABEL, LABEL)
    def test_a_service_selecting_other_pods_is_not(self, key: str, wanted: str,
                                                   other: str) -> None:
        if wanted == other:
            other += "x"
        assert ingress_of(service("web", "ns", {key: other}),
                          [gateway("gw", "ns", {key: wanted})]) is None

    @given(st.dictionaries(LABEL, LABEL, min_size=1, max_size=3),
           st.dictionaries(LABEL, LABEL, max_size=2))
    def test_extra_service_labels_still_select_the_gateway_pods(
            self, selector: dict[str, str], extra: dict[str, str]) -> None:
        ingress = ingress_of(service("gw", "ns", {**extra, **selector}),
                             [gateway("gw", "ns", selector)])
        assert ingress is not None and ingress.gateways == ("ns/gw",)

    def test_a_gateway_of_another_namespace_does_not_count(self) -> None:
        assert ingress_of(service("istio-gateway", "a", {"istio": "ingressgateway"}),
                          [gateway("public-gateway", "b", {"istio": "ingressgateway"})]) is None

    def test_a_service_without_selector_fronts_no_gateway(self) -> None:
        assert ingress_of(service("external", "ns", {}),
                          [gateway("gw", "ns", {"istio": "ingressgateway"})]) is None


class TestWhichVirtualServicesApply:
    @given(st.sampled_from(["public-gateway", "istio-system/public-gateway"]))
    def test_gateway_traffic_takes_those_bound_to_its_gateway(self, name: str) -> None:
        bound = virtual_service("frontend", "istio-system", ["*"], [name])
        assert gateway_route([bound], PUBLIC, "www.example.com") == (bound["spec"],
                                                                     "istio-system")

    def test_a_bare_gateway_name_is_in_the_virtual_services_namespace(self) -> None:
        elsewhere = virtual_service("frontend", "prod", ["*"], ["public-gateway"])
        assert gateway_route([elsewhere], PUBLIC, "www.example.com") is None

    @given(st.sampled_from([None, [], ["mesh"], ["prod/other-gateway"]]))
    def test_mesh_or_other_gateway_routing_does_not_apply(self, gateways: list[str] | None
                                                          ) -> None:
        mesh = virtual_service("frontend", "prod", ["*"], gateways)
        assert gateway_route([mesh], PUBLIC, "www.example.com") is None

    def test_mesh_traffic_skips_gateway_only_routing(self) -> None:
        assert bound_to([], "prod", ())
        assert bound_to(["mesh", "istio-system/public-gateway"], "prod", ())
        assert not bound_to(["istio-system/public-gateway"], "prod", ())

    @given(LABEL)
    def test_hosts_match_the_host_header_as_istio_does(self, name: str) -> None:
        host = f"{name}.example.com"
        assert host_rank("*", host) == (2, 0)
        assert host_rank("*.example.com", host) is not None
        assert host_rank("*.example.com", "example.com") is None
        assert host_rank(host, host) == (0, 0)
        assert host_rank(f"{name}x.example.com", host) is None

    def test_the_most_specific_host_wins_then_the_oldest(self) -> None:
        anything = virtual_service("any", "istio-system", ["*"], ["public-gateway"],
                                   "2026-01-01T00:00:00Z")
        suffix = virtual_service("suffix", "istio-system", ["*.example.com"],
                                 ["public-gateway"], "2026-01-02T00:00:00Z")
        exact = virtual_service("exact", "istio-system", ["www.example.com"],
                                ["public-gateway"], "2026-01-03T00:00:00Z")
        later = virtual_service("later", "istio-system", ["www.example.com"],
                                ["public-gateway"], "2026-01-04T00:00:00Z")
        routes = [later, anything, suffix, exact]
        assert gateway_route(routes, PUBLIC, "www.example.com") == (exact["spec"],
                                                                    "istio-system")
        assert gateway_route(routes, PUBLIC, "api.example.com") == (suffix["spec"],
                                                                    "istio-system")
        assert gateway_route(routes, PUBLIC, "example.org") == (anything["spec"],
                                                                "istio-system")


class TestMatchBlocksBoundToGateways:
    def spec(self) -> dict[str, Any]:
        return {"hosts": ["*"], "gateways": ["public-gateway", "mesh"], "http": [
            {"match": [{"gateways": ["public-gateway"]}],
             "route": [{"destination": {"host": "web-canary"}}]},
            {"route": [{"destination": {"host": "web-primary"}}]}]}

    def test_a_block_bound_to_the_gateway_applies_to_its_traffic(self) -> None:
        through = Request("gw.istio-system.svc.cluster.local", gateways=PUBLIC)
        decision = route_request(self.spec(), "istio-system", through, random.Random(1))
        assert decision.destination == Destination("web-canary.istio-system.svc.cluster.local")

    def test_it_does_not_apply_to_mesh_traffic(self) -> None:
        mesh = Request("web.istio-system.svc.cluster.local")
        decision = route_request(self.spec(), "istio-system", mesh, random.Random(1))
        assert decision.destination == Destination("web-primary.istio-system.svc.cluster.local")


class TestHostHeader:
    @given(st.integers(1, 65535))
    def test_the_port_is_not_part_of_the_host(self, port: int) -> None:
        request = Request("gw.ns.svc.cluster.local", headers={"host": f"WWW.example.com:{port}"})
        assert request.host == "www.example.com"

    def test_without_a_host_header_it_is_the_authority(self) -> None:
        assert Request("gw.ns.svc.cluster.local").host == "gw.ns.svc.cluster.local"
