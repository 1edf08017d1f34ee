"""The user's own route (spec.service.routeRef): canary splits the rules that send traffic
to the apex Service and leaves everything else as the user wrote it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from canary.core import Route
from canary.router.gatewayapi.adopted import adopted_rules, released_rules, rules_patch
from canary.router.gatewayapi.matches import UnsupportedRoute
from tests.unit.router.gateway_canaries import gateway_canary, weights

JSON = dict[str, Any]
HEADER_FILTER = {"type": "RequestHeaderModifier",
                 "requestHeaderModifier": {"set": [{"name": "x-tenant", "value": "shop"}]}}
BACKEND_FILTER = {"type": "ResponseHeaderModifier",
                  "responseHeaderModifier": {"set": [{"name": "x-app", "value": "web"}]}}
#: Another path to another backend, and a redirect: canary must not touch them.
DOCS_RULE = {"matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
             "backendRefs": [{"name": "docs", "port": 8080}]}
REDIRECT_RULE = {"matches": [{"path": {"type": "Exact", "value": "/old"}}],
                 "filters": [{"type": "RequestRedirect",
                              "requestRedirect": {"path": {"type": "ReplaceFullPath",
                                                           "replaceFullPath": "/new"}}}]}


def user_route(kind: str = "HTTPRoute") -> JSON:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
            "metadata": {"name": "storefront", "namespace": "shop", "resourceVersion": "7"},
            "spec": {"parentRefs": [{"name": "public", "namespace": "infra"}],
                     "hostnames": ["shop.example.com"],
                     "rules": [copy.deepcopy(DOCS_RULE), {
                         "name": "app", "filters": [HEADER_FILTER],
                         "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                         "timeouts": {"request": "10s"},
                         "backendRefs": [{"name": "web", "port": 80,
                                          "filters": [BACKEND_FILTER]}]},
                         copy.deepcopy(REDIRECT_RULE)]}}


def adopting(**analysis: Any) -> Any:
    return gateway_canary({"gatewayRefs": None, "routeRef": {"name": "storefront"}},
                          **analysis)


def written(rules: list[JSON]) -> JSON:
    """The user's route after canary's patch."""
    route = user_route()
    route["spec"]["rules"] = rules
    return route


class TestTheUsersRulesSurvive:
    """Other rules, the rule's own filters, matches and timeouts stay as written."""

    def test_an_extra_rule_a_header_filter_and_a_redirect_survive(self) -> None:
        docs, app, redirect = adopted_rules(adopting(), Route(30), user_route())
        assert docs == DOCS_RULE and redirect == REDIRECT_RULE
        assert app["name"] == "app" and app["filters"] == [HEADER_FILTER]
        assert app["timeouts"] == {"request": "10s"}
        assert [(r["name"], r["weight"]) for r in app["backendRefs"]] == [
            ("web-primary", 70), ("web-canary", 30)]
        assert all(r["filters"] == [BACKEND_FILTER] for r in app["backendRefs"])

    @given(st.lists(st.integers(0, 100), min_size=1, max_size=5))
    def test_any_sequence_of_weights_leaves_the_rest_unchanged(self, steps: list[int]) -> None:
        route = user_route()
        for weight in steps:
            route = written(adopted_rules(adopting(), Route(weight), route))
        docs, app, redirect = route["spec"]["rules"]
        assert (docs, redirect) == (DOCS_RULE, REDIRECT_RULE)
        assert weights(app) == [100 - steps[-1], steps[-1]]
        assert route["spec"]["hostnames"] == ["shop.example.com"]

    def test_released_the_route_is_the_users_again(self) -> None:
        canary = adopting()
        route = written(adopted_rules(canary, Route(50, mirror_percent=10,
                                                    sticky_cookie="c=1"), user_route()))
        assert released_rules(canary, route) == user_route()["spec"]["rules"]


class TestCanarysOwnRules:
    """A/B testing and session affinity add named rules before the user's rule."""

    def test_ab_rule_narrows_the_users_matches_and_goes_first(self) -> None:
        canary = adopting(iterations=3, match=[{"headers": {"x-canary": {"exact": "1"}}}])
        rules = adopted_rules(canary, Route(0, match_to_canary=True), user_route())
        _docs, ab, app, _redirect = rules
        assert ab["name"].startswith("canary-dev-ab") and weights(ab) == [0, 100]
        assert ab["matches"] == [{"path": {"type": "PathPrefix", "value": "/"},
                                  "headers": [{"name": "x-canary", "type": "Exact",
                                               "value": "1"}]}]
        assert ab["filters"] == [HEADER_FILTER] and "name" in app

    def test_rewriting_replaces_canarys_rules_instead_of_adding_more(self) -> None:
        canary = adopting(iterations=3, match=[{"headers": {"x-canary": {"exact": "1"}}}])
        once = adopted_rules(canary, Route(0, match_to_canary=True), user_route())
        twice = adopted_rules(canary, Route(0, match_to_canary=True), written(once))
        assert twice == once
        assert adopted_rules(canary, Route(0), written(once)) == adopted_rules(
            canary, Route(0), user_route())

    def test_a_grpc_route(self) -> None:
        route = user_route("GRPCRoute")
        route["spec"]["rules"] = [{"backendRefs": [{"name": "web", "port": 80}]}]
        canary = adopting(iterations=3, match=[{"uri": {"prefix": "/shop.Cart/"}}])
        ab, _main = adopted_rules(canary, Route(0, match_to_canary=True), route)
        assert ab["matches"] == [{"method": {"type": "Exact", "service": "shop.Cart"}}]


class TestWhatCannotBeAdopted:
    """Refused with a message naming the route and rule."""

    def test_a_rule_splitting_the_apex_with_another_backend(self) -> None:
        route = user_route()
        route["spec"]["rules"][1]["backendRefs"].append({"name": "legacy", "port": 80})
        with pytest.raises(UnsupportedRoute, match="HTTPRoute storefront rule 1"):
            adopted_rules(adopting(), Route(10), route)

    def test_a_route_without_the_apex_service(self) -> None:
        route = user_route()
        del route["spec"]["rules"][1]
        with pytest.raises(UnsupportedRoute, match="no rule of HTTPRoute storefront"):
            adopted_rules(adopting(), Route(10), route)

    def test_route_options_belong_on_the_users_rules(self) -> None:
        canary = gateway_canary({"gatewayRefs": None, "routeRef": {"name": "storefront"},
                                 "timeout": "5s"})
        with pytest.raises(UnsupportedRoute, match=r"spec\.service\.timeout"):
            adopted_rules(canary, Route(10), user_route())


def test_a_canary_names_either_its_gateways_or_the_users_route() -> None:
    """The user's route has its own parentRefs: gatewayRefs beside routeRef is refused."""
    with pytest.raises(ValidationError, match="drop gatewayRefs"):
        gateway_canary({"routeRef": {"name": "storefront"}})


def test_the_patch_applies_only_to_the_version_read() -> None:
    """A JSON patch testing resourceVersion: a concurrent edit makes it fail, not lost."""
    rules = adopted_rules(adopting(), Route(10), user_route())
    assert rules_patch(user_route(), rules) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "replace", "path": "/spec/rules", "value": rules}]


class TestEnvoyGatewayMeasuresEachBackend:
    """On Envoy Gateway the split backendRefs carry canary's header, so that each gets a
    cluster of its own; the user's filters keep theirs, and release takes canary's off."""

    @staticmethod
    def envoy() -> Any:
        return gateway_canary({"gatewayRefs": None, "routeRef": {"name": "storefront"},
                               "gatewayImplementation": "envoy-gateway"})

    @given(st.lists(st.integers(0, 100), min_size=1, max_size=4))
    def test_every_split_backend_is_labelled_once_whatever_the_steps(
            self, steps: list[int]) -> None:
        route = user_route()
        for weight in steps:
            route = written(adopted_rules(self.envoy(), Route(weight), route))
        _, app, _ = route["spec"]["rules"]
        for ref, version in zip(app["backendRefs"], ("primary", "canary"), strict=True):
            assert ref["filters"] == [BACKEND_FILTER, {
                "type": "RequestHeaderModifier", "requestHeaderModifier": {
                    "set": [{"name": "X-Canary-Backend", "value": version}]}}]

    def test_released_the_route_carries_no_label(self) -> None:
        canary = self.envoy()
        route = written(adopted_rules(canary, Route(40), user_route()))
        assert released_rules(canary, route) == user_route()["spec"]["rules"]
