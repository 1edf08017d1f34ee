"""As the controller of its GatewayClass, the simulator reports what it made of each
Gateway and route in their status, as the Gateway API requires: per parentRef, with its
controller name, the object's generation, and reasons the spec defines."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.devenv.traffic.attachment import HTTP_ROUTE, Attachment, Listener, attach, listeners_of
from canary.devenv.traffic.gatewaycontroller import attached_counts, differs
from canary.devenv.traffic.gatewaystatus import (
    CONTROLLER_NAME,
    gateway_class_status,
    gateway_status,
    resolved_refs,
    route_parents,
)
from canary.devenv.traffic.gatewayview import RouteAttachments

NOW, LATER = "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"
GATEWAY: dict[str, Any] = {
    "metadata": {"name": "public", "namespace": "shop", "generation": 3},
    "spec": {"gatewayClassName": "traffic-simulator", "listeners": [
        {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"},
        {"name": "tcp", "port": 9000, "protocol": "TCP"}]},
}


def route(hostnames: list[str], backends: list[dict[str, Any]] | None = None,
          generation: int = 2, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "shop", "namespace": "shop", "generation": generation},
            "spec": {"parentRefs": [{"name": "public"}], "hostnames": hostnames,
                     "rules": [{"backendRefs": backends or [{"name": "shop", "port": 80}]}]},
            "status": status or {}}


def parents(rt: dict[str, Any], now: str = NOW, resolved: str = "ResolvedRefs"
            ) -> list[dict[str, Any]]:
    found = [attach(rt, HTTP_ROUTE, ref, listeners_of(GATEWAY), {})
             for ref in rt["spec"]["parentRefs"]]
    return route_parents(rt, found, resolved, now)


def conditions(entry: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in entry["conditions"]}


class TestRouteStatus:
    def test_an_attached_route_is_accepted_by_this_controller(self) -> None:
        (entry,) = parents(route(["a.example.com"]))
        assert entry["controllerName"] == CONTROLLER_NAME
        assert entry["parentRef"] == {"name": "public"}
        assert conditions(entry) == {"Accepted": ("True", "Accepted"),
                                     "ResolvedRefs": ("True", "ResolvedRefs")}
        assert all(c["observedGeneration"] == 2 and c["lastTransitionTime"] == NOW
                   and c["message"] for c in entry["conditions"])

    def test_a_route_outside_the_listener_hostname_is_refused_with_the_reason(self) -> None:
        (entry,) = parents(route(["a.example.net"]))
        assert conditions(entry)["Accepted"] == ("False", "NoMatchingListenerHostname")

    def test_a_missing_backend_is_reported_as_not_resolved(self) -> None:
        (entry,) = parents(route(["a.example.com"]), resolved="BackendNotFound")
        assert conditions(entry)["ResolvedRefs"] == ("False", "BackendNotFound")

    def test_an_unchanged_condition_keeps_its_transition_time_so_nothing_is_rewritten(
            self) -> None:
        first = parents(route(["a.example.com"]))
        again = parents(route(["a.example.com"], status={"parents": first}), now=LATER)
        assert again == first
        assert not differs({"parents": first}, {"parents": again})

    def test_a_changed_condition_moves_its_transition_time(self) -> None:
        first = parents(route(["a.example.com"]))
        refused = parents(route(["a.example.net"], status={"parents": first}), now=LATER)
        times = {c["type"]: c["lastTransitionTime"] for c in refused[0]["conditions"]}
        assert times == {"Accepted": LATER, "ResolvedRefs": NOW}

    def test_a_new_generation_is_observed(self) -> None:
        first = parents(route(["a.example.com"]))
        newer = parents(route(["a.example.com"], generation=5, status={"parents": first}))
        assert {c["observedGeneration"] for c in newer[0]["conditions"]} == {5}

    def test_other_controllers_entries_are_kept(self) -> None:
        other = {"parentRef": {"name": "mesh"}, "controllerName": "istio.io/gateway-controller",
                 "conditions": []}
        entries = parents(route(["a.example.com"], status={"parents": [other]}))
        assert entries[0] == other
        assert [e["controllerName"] for e in entries] == [other["controllerName"],
                                                          CONTROLLER_NAME]


def exists(*services: str) -> Any:
    return lambda namespace, name: f"{namespace}/{name}" in services


class TestResolvedRefs:
    @pytest.mark.parametrize(("backend", "expected"), [
        ({"name": "shop", "port": 80}, "ResolvedRefs"),
        ({"name": "gone", "port": 80}, "BackendNotFound"),
        ({"name": "shop", "kind": "ServiceImport", "group": "multicluster.x-k8s.io"},
         "InvalidKind"),
        ({"name": "api", "namespace": "backend", "port": 80}, "RefNotPermitted"),
    ])
    def test_each_kind_of_broken_reference_has_its_reason(self, backend: dict[str, Any],
                                                          expected: str) -> None:
        rt = route([], [backend])
        assert resolved_refs(rt, HTTP_ROUTE, lambda *_: False,
                             exists("shop/shop", "backend/api")) == expected

    def test_a_mirror_to_a_missing_service_is_not_resolved_either(self) -> None:
        rt = route([])
        rt["spec"]["rules"][0]["filters"] = [{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": "shadow", "port": 80}}}]
        assert resolved_refs(rt, HTTP_ROUTE, lambda *_: False, exists("shop/shop")) == \
            "BackendNotFound"


class TestGatewayStatus:
    def test_a_served_gateway_is_accepted_programmed_and_has_an_address(self) -> None:
        status = gateway_status(GATEWAY, listeners_of(GATEWAY), {"http": 2}, NOW)
        assert status["addresses"] == [{"type": "Hostname", "value": "public.shop.gateway"}]
        assert conditions(status) == {"Accepted": ("True", "ListenersNotValid"),
                                      "Programmed": ("True", "Programmed")}
        http, tcp = status["listeners"]
        assert (http["name"], http["attachedRoutes"]) == ("http", 2)
        assert [k["kind"] for k in http["supportedKinds"]] == ["HTTPRoute", "GRPCRoute"]
        assert conditions(http)["Accepted"] == ("True", "Accepted")
        assert conditions(tcp)["Accepted"] == ("False", "UnsupportedProtocol")
        assert tcp["supportedKinds"] == []

    def test_a_gateway_class_of_this_controller_is_accepted(self) -> None:
        gateway_class = {"metadata": {"name": "traffic-simulator", "generation": 1}}
        assert conditions(gateway_class_status(gateway_class, NOW)) == {
            "Accepted": ("True", "Accepted")}

    @given(st.lists(st.sets(st.sampled_from(["a", "b", "c"])), max_size=5))
    def test_each_listener_counts_the_routes_it_took_once(self, taken: list[set[str]]) -> None:
        listeners = {ln.name: ln for ln in listeners_of({
            "metadata": {"name": "g", "namespace": "n"},
            "spec": {"listeners": [{"name": n, "port": 80 + i, "protocol": "HTTP"}
                                   for i, n in enumerate("abc")]}})}
        routes: list[RouteAttachments] = []
        for names in taken:
            chosen = tuple(listeners[n] for n in sorted(names))
            # Two parentRefs to the same listeners count the route once.
            found = [_attachment(chosen), _attachment(chosen)]
            routes.append((HTTP_ROUTE, {}, found))
        counts = attached_counts(routes)
        for name in "abc":
            assert counts.get("n/g", {}).get(name, 0) == sum(name in t for t in taken)


def _attachment(listeners: tuple[Listener, ...]) -> Attachment:
    return Attachment({"name": "g"}, "n/g", listeners, "Accepted" if listeners else "x")
