"""A Gateway API route attaches to a Gateway's listeners as the spec says: by the listener
its parentRef names, the namespaces and kinds the listener admits, and intersecting
hostnames; when it does not, the reason names the first of those that failed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.devenv.traffic.attachment import (
    ACCEPTED,
    GRPC_ROUTE,
    HTTP_ROUTE,
    NO_MATCHING_HOSTNAME,
    NO_MATCHING_PARENT,
    NOT_ALLOWED,
    attach,
    effective_hostnames,
    hostname_matches,
    intersect,
    listeners_of,
    selector_matches,
)

LABEL = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
HOST = st.lists(LABEL, min_size=2, max_size=4).map(".".join)


def gateway(*listeners: dict[str, Any], namespace: str = "infra") -> dict[str, Any]:
    return {"metadata": {"name": "public", "namespace": namespace},
            "spec": {"gatewayClassName": "traffic-simulator", "listeners": list(listeners)}}


def listener(name: str = "http", port: int = 80, hostname: str | None = None,
             allowed: dict[str, Any] | None = None, protocol: str = "HTTP") -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "port": port, "protocol": protocol}
    if hostname:
        spec["hostname"] = hostname
    if allowed is not None:
        spec["allowedRoutes"] = allowed
    return spec


def route(namespace: str = "infra", hostnames: list[str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "shop", "namespace": namespace},
            "spec": {"hostnames": hostnames or [],
                     "parentRefs": [{"name": "public", "namespace": "infra"}]}}


def reason(gw: dict[str, Any], rt: dict[str, Any], ref: dict[str, Any] | None = None,
           kind: str = HTTP_ROUTE, labels: dict[str, str] | None = None) -> str:
    ref = ref or {"name": "public", "namespace": "infra"}
    return attach(rt, kind, ref, listeners_of(gw), labels or {}).reason


class TestHostnames:
    """Wildcards are suffix matches over one label or more, never the bare suffix."""

    @given(LABEL, HOST)
    def test_a_wildcard_matches_any_deeper_name_but_not_itself(self, label: str,
                                                               suffix: str) -> None:
        assert hostname_matches(f"*.{suffix}", f"{label}.{suffix}")
        assert hostname_matches(f"*.{suffix}", f"{label}.{label}.{suffix}")
        assert not hostname_matches(f"*.{suffix}", suffix)

    @given(LABEL, HOST)
    def test_intersection_is_the_more_specific_name_either_way(self, label: str,
                                                               suffix: str) -> None:
        exact = f"{label}.{suffix}"
        assert intersect(f"*.{suffix}", exact) == exact
        assert intersect(exact, f"*.{suffix}") == exact
        assert intersect(f"*.{suffix}", f"*.{exact}") == f"*.{exact}"
        assert intersect(f"*.{exact}", f"*.{suffix}") == f"*.{exact}"
        assert intersect(None, exact) == exact

    @given(HOST, HOST)
    def test_unrelated_names_do_not_intersect(self, a: str, b: str) -> None:
        if a == b or a.endswith("." + b) or b.endswith("." + a):
            return
        assert intersect(a, b) is None
        assert intersect(f"*.{a}", b) is None

    def test_only_the_route_hostnames_under_the_listener_apply(self) -> None:
        (taker,) = listeners_of(gateway(listener(hostname="*.example.com")))
        assert effective_hostnames(taker, ["a.example.com", "a.example.net"]) == \
            ["a.example.com"]
        assert effective_hostnames(taker, []) == ["*.example.com"]
        assert effective_hostnames(taker, ["a.example.net"]) is None


class TestAttachment:
    def test_a_route_in_the_gateways_namespace_attaches_to_every_listener(self) -> None:
        gw = gateway(listener("a", 80), listener("b", 8080))
        attached = attach(route(), HTTP_ROUTE, {"name": "public"}, listeners_of(gw), {})
        assert attached.accepted and attached.reason == ACCEPTED
        assert [ln.name for ln in attached.listeners] == ["a", "b"]

    @pytest.mark.parametrize("ref", [{"sectionName": "missing"}, {"port": 443},
                                     {"sectionName": "http", "port": 8080}])
    def test_naming_no_listener_is_no_matching_parent(self, ref: dict[str, Any]) -> None:
        gw = gateway(listener("http", 80))
        assert reason(gw, route(), {"name": "public", **ref}) == NO_MATCHING_PARENT

    def test_a_section_name_picks_one_listener(self) -> None:
        gw = gateway(listener("a", 80), listener("b", 8080))
        attached = attach(route(), HTTP_ROUTE, {"name": "public", "sectionName": "b"},
                          listeners_of(gw), {})
        assert [ln.name for ln in attached.listeners] == ["b"]

    def test_another_namespace_is_not_allowed_by_default(self) -> None:
        assert reason(gateway(listener()), route("shop")) == NOT_ALLOWED

    def test_all_namespaces_may_be_allowed(self) -> None:
        gw = gateway(listener(allowed={"namespaces": {"from": "All"}}))
        assert reason(gw, route("shop")) == ACCEPTED

    @pytest.mark.parametrize(("labels", "expected"), [
        ({"team": "shop"}, ACCEPTED), ({"team": "other"}, NOT_ALLOWED), ({}, NOT_ALLOWED)])
    def test_a_namespace_selector_admits_by_the_namespaces_labels(
            self, labels: dict[str, str], expected: str) -> None:
        gw = gateway(listener(allowed={"namespaces": {
            "from": "Selector", "selector": {"matchLabels": {"team": "shop"}}}}))
        assert reason(gw, route("shop"), labels=labels) == expected

    def test_a_listener_admitting_only_grpc_refuses_an_http_route(self) -> None:
        gw = gateway(listener(allowed={"kinds": [{"kind": GRPC_ROUTE}]}))
        assert reason(gw, route()) == NOT_ALLOWED
        assert reason(gw, route(), kind=GRPC_ROUTE) == ACCEPTED

    def test_a_tcp_listener_carries_no_http_route(self) -> None:
        assert reason(gateway(listener(protocol="TCP")), route()) == NOT_ALLOWED

    def test_hostnames_outside_every_listener_are_no_matching_listener_hostname(self) -> None:
        gw = gateway(listener(hostname="*.example.com"))
        assert reason(gw, route(hostnames=["shop.example.net"])) == NO_MATCHING_HOSTNAME
        assert reason(gw, route(hostnames=["shop.example.com"])) == ACCEPTED

    def test_the_first_failing_step_is_the_reason(self) -> None:
        gw = gateway(listener(hostname="*.example.com"))
        # Another namespace and another hostname: refused for the namespace first.
        assert reason(gw, route("shop", ["shop.example.net"])) == NOT_ALLOWED


class TestLabelSelectors:
    @pytest.mark.parametrize(("expression", "labels", "expected"), [
        ({"key": "a", "operator": "In", "values": ["1", "2"]}, {"a": "2"}, True),
        ({"key": "a", "operator": "In", "values": ["1"]}, {"a": "2"}, False),
        ({"key": "a", "operator": "NotIn", "values": ["1"]}, {"a": "2"}, True),
        ({"key": "a", "operator": "NotIn", "values": ["1"]}, {"a": "1"}, False),
        ({"key": "a", "operator": "Exists"}, {"a": ""}, True),
        ({"key": "a", "operator": "Exists"}, {}, False),
        ({"key": "a", "operator": "DoesNotExist"}, {}, True),
        ({"key": "a", "operator": "DoesNotExist"}, {"a": "1"}, False),
    ])
    def test_match_expressions(self, expression: dict[str, Any], labels: dict[str, str],
                               expected: bool) -> None:
        assert selector_matches({"matchExpressions": [expression]}, labels) is expected
