"""The HTTPRoute and GRPCRoute canary creates for each way of routing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import Route
from canary.router.gatewayapi.matches import UnsupportedRoute
from canary.router.gatewayapi.routes import grpc_route, http_route, route
from canary.router.gatewayapi.rules import BACKEND_HEADER, split
from tests.unit.router.gateway_canaries import GATEWAY, OWNER, gateway_canary, weights


class TestTheWeightedSplit:
    """One rule, its backendRefs the primary and the canary."""

    def test_names_ports_parents_and_hostnames_follow_the_canary(self) -> None:
        canary = gateway_canary({"hosts": ["web.example.com"]})
        manifest = http_route(canary, OWNER, Route(30))
        assert manifest["apiVersion"] == "gateway.networking.k8s.io/v1"
        assert manifest["kind"] == "HTTPRoute" and manifest["metadata"]["name"] == "web"
        assert manifest["metadata"]["ownerReferences"][0]["uid"] == "u"
        assert manifest["spec"]["parentRefs"] == [GATEWAY]
        assert manifest["spec"]["hostnames"] == ["web.example.com"]
        [rule] = manifest["spec"]["rules"]
        assert [(r["name"], r["port"]) for r in rule["backendRefs"]] == [
            ("web-primary", 80), ("web-canary", 80)]
        assert weights(rule) == [70, 30]

    @given(weight=st.integers(0, 100), sticky=st.booleans(), mirror=st.none() | st.floats(0, 100))
    def test_weights_always_sum_to_100(self, weight: int, sticky: bool,
                                       mirror: float | None) -> None:
        state = Route(weight, mirror_percent=mirror, sticky_cookie="a=1" if sticky else None)
        for manifest in (http_route(gateway_canary(), OWNER, state),
                         grpc_route(gateway_canary(), OWNER, state)):
            for rule in manifest["spec"]["rules"]:
                assert sum(weights(rule)) == 100 and min(weights(rule)) >= 0

    def test_an_http_route_unless_the_protocol_is_grpc(self) -> None:
        assert route(gateway_canary(), OWNER, Route(0))["kind"] == "HTTPRoute"
        assert route(gateway_canary({"appProtocol": "http"}), OWNER, Route(0))["kind"] == \
            "HTTPRoute"
        assert route(gateway_canary({"appProtocol": "GRPC"}), OWNER, Route(0))["kind"] == \
            "GRPCRoute"

    def test_without_a_parent_the_route_is_refused(self) -> None:
        with pytest.raises(UnsupportedRoute, match=r"spec\.service\.gatewayRefs"):
            http_route(gateway_canary({"gatewayRefs": None}), OWNER, Route(0))

    def test_istio_only_options_are_refused_not_dropped(self) -> None:
        for field, value in (("gateways", ["mesh"]), ("corsPolicy", {"allowOrigins": []}),
                             ("rewrite", {"uri": "/"})):
            with pytest.raises(UnsupportedRoute, match=f"spec.service.{field}"):
                http_route(gateway_canary({field: value}), OWNER, Route(0))


class TestABTesting:
    """The matching requests go to the canary in a rule of their own, first."""

    def test_the_match_rule_comes_first_and_sends_everything_to_the_canary(self) -> None:
        match = [{"headers": {"x-canary": {"exact": "insider"}}}]
        canary = gateway_canary(iterations=3, match=match)
        first, main = http_route(canary, OWNER, Route(0, match_to_canary=True))["spec"]["rules"]
        assert first["matches"] == [{"headers": [
            {"name": "x-canary", "type": "Exact", "value": "insider"}]}]
        assert weights(first) == [0, 100] and weights(main) == [100, 0]
        assert "matches" not in main

    def test_the_match_rule_narrows_the_service_match(self) -> None:
        canary = gateway_canary({"match": [{"uri": {"prefix": "/shop/"}}]}, iterations=3,
                                match=[{"headers": {"x-canary": {"exact": "1"}}}])
        first, main = http_route(canary, OWNER, Route(0, match_to_canary=True))["spec"]["rules"]
        assert main["matches"] == [{"path": {"type": "PathPrefix", "value": "/shop/"}}]
        assert first["matches"] == [{"path": {"type": "PathPrefix", "value": "/shop/"},
                                     "headers": [{"name": "x-canary", "type": "Exact",
                                                  "value": "1"}]}]

    def test_without_match_to_canary_there_is_no_match_rule(self) -> None:
        canary = gateway_canary(iterations=3, match=[{"headers": {"x": {"exact": "1"}}}])
        assert len(http_route(canary, OWNER, Route(0))["spec"]["rules"]) == 1

    def test_a_grpc_route_matches_service_and_method(self) -> None:
        canary = gateway_canary({"appProtocol": "grpc"}, iterations=3,
                                match=[{"uri": {"exact": "/shop.Cart/Add"}}])
        manifest = route(canary, OWNER, Route(0, match_to_canary=True))
        assert manifest["kind"] == "GRPCRoute"
        first, _ = manifest["spec"]["rules"]
        assert first["matches"] == [{"method": {"type": "Exact", "service": "shop.Cart",
                                                "method": "Add"}}]


class TestMirroring:
    """A RequestMirror filter copies a share of the requests to the canary."""

    def test_a_whole_percent(self) -> None:
        [rule] = http_route(gateway_canary(iterations=3, mirror=True), OWNER,
                            Route(0, mirror_percent=40))["spec"]["rules"]
        assert rule["filters"] == [{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": "web-canary", "port": 80}, "percent": 40}}]

    def test_a_fraction_of_a_percent(self) -> None:
        [rule] = http_route(gateway_canary(iterations=3, mirror=True), OWNER,
                            Route(0, mirror_percent=12.5))["spec"]["rules"]
        mirror = rule["filters"][0]["requestMirror"]
        assert mirror["fraction"] == {"numerator": 12500, "denominator": 100000}
        assert "percent" not in mirror


class TestSessionAffinity:
    """The canary's answers set a cookie; requests carrying it go to the canary."""

    def test_the_cookie_rule_and_the_set_cookie_filter(self) -> None:
        rules = http_route(gateway_canary(), OWNER,
                           Route(20, sticky_cookie="aff=rev-2", sticky_max_age=60))["spec"]["rules"]
        sticky, main = rules
        [header] = sticky["matches"][0]["headers"]
        assert header["name"] == "Cookie" and header["type"] == "RegularExpression"
        assert re.fullmatch(header["value"], "a=1; aff=rev-2; b=2")
        assert not re.fullmatch(header["value"], "aff=rev-1")
        assert weights(sticky) == [0, 100] and weights(main) == [80, 20]
        assert main["backendRefs"][1]["filters"] == [{
            "type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "add": [{"name": "Set-Cookie", "value": "aff=rev-2; Max-Age=60"}]}}]
        assert "filters" not in main["backendRefs"][0]


class TestRouteOptions:
    """spec.service's timeout, retries and header operations on the rules."""

    def test_timeouts_and_per_try_timeouts(self) -> None:
        canary = gateway_canary({"timeout": "1.5s", "retries": {"perTryTimeout": "500ms"}})
        [rule] = http_route(canary, OWNER, Route(0))["spec"]["rules"]
        assert rule["timeouts"] == {"request": "1s500ms", "backendRequest": "500ms"}
        assert "retry" not in rule

    def test_retries_need_the_experimental_channel(self) -> None:
        canary = gateway_canary({"retries": {"attempts": 3, "retryOn": "gateway-error,503"}})
        with pytest.raises(UnsupportedRoute, match="experimental channel"):
            http_route(canary, OWNER, Route(0))
        [rule] = http_route(canary, OWNER, Route(0), experimental=True)["spec"]["rules"]
        assert rule["retry"] == {"attempts": 3, "codes": [502, 503, 504]}

    def test_a_grpc_route_has_no_timeouts(self) -> None:
        with pytest.raises(UnsupportedRoute, match="GRPCRoute"):
            grpc_route(gateway_canary({"timeout": "5s"}), OWNER, Route(0))

    def test_header_operations_become_filters(self) -> None:
        headers = {"request": {"set": {"x-env": "prod"}, "remove": ["x-debug"]},
                   "response": {"add": {"x-served-by": "canary"}}}
        [rule] = http_route(gateway_canary({"headers": headers}), OWNER,
                            Route(0))["spec"]["rules"]
        assert rule["filters"] == [
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                "set": [{"name": "x-env", "value": "prod"}], "remove": ["x-debug"]}},
            {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "add": [{"name": "x-served-by", "value": "canary"}]}}]


def header_modifiers(ref: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in ref.get("filters") or [] if f["type"] == "RequestHeaderModifier"]


class TestBackendsMeasuredApart:
    """On Envoy Gateway, a backendRef with a filter is a cluster of its own, so the
    canary's requests can be measured apart from the primary's."""

    @given(weight=st.integers(0, 100), sticky=st.booleans(), matched=st.booleans(),
           grpc=st.booleans())
    def test_on_envoy_gateway_every_backend_ref_names_its_version(
            self, weight: int, sticky: bool, matched: bool, grpc: bool) -> None:
        service: dict[str, Any] = {"gatewayImplementation": "envoy-gateway"}
        if grpc:
            service["appProtocol"] = "grpc"
        analysis = {"iterations": 3, "match": [{"headers": {"x": {"exact": "1"}}}]} \
            if matched else {}
        state = Route(weight, sticky_cookie="c=1" if sticky else None,
                      match_to_canary=matched)
        manifest = route(gateway_canary(service, **analysis), OWNER, state)
        for rule in manifest["spec"]["rules"]:
            refs = rule["backendRefs"]
            assert [r["name"] for r in refs] == ["web-primary", "web-canary"]
            for ref, version in zip(refs, ("primary", "canary"), strict=True):
                [modifier] = header_modifiers(ref)
                assert modifier["requestHeaderModifier"]["set"] == [
                    {"name": BACKEND_HEADER, "value": version}]

    @pytest.mark.parametrize("implementation", [None, "istio", "contour"])
    def test_elsewhere_the_backend_refs_have_no_filter_of_canarys(
            self, implementation: str | None) -> None:
        canary = gateway_canary({"gatewayImplementation": implementation})
        [rule] = http_route(canary, OWNER, Route(30))["spec"]["rules"]
        assert all("filters" not in ref for ref in rule["backendRefs"])

    def test_the_users_request_header_modifier_is_kept_and_extended(self) -> None:
        user = {"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": "x-team", "value": "a"}, {"name": BACKEND_HEADER, "value": "x"}],
            "remove": ["x-debug"]}}
        primary, canary = split("web", 80, 10, [user], label_backends=True)
        for ref, version in ((primary, "primary"), (canary, "canary")):
            [modifier] = header_modifiers(ref)
            assert modifier["requestHeaderModifier"] == {
                "set": [{"name": "x-team", "value": "a"},
                        {"name": BACKEND_HEADER, "value": version}],
                "remove": ["x-debug"]}
        # The user's filter itself is left as written.
        assert user["requestHeaderModifier"]["set"][1]["value"] == "x"  # type: ignore[index]
