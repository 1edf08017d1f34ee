"""A Gateway API Gateway routes a request as the spec says: to the most specific listener,
by the attached route and rule whose match has precedence, to a backend by weight, with
the filters canary relies on (mirroring, header modifiers, the session cookie)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.devenv.traffic.attachment import GRPC_ROUTE, HTTP_ROUTE, listeners_of
from canary.devenv.traffic.forwarding import mirror_share, pick_backend
from canary.devenv.traffic.gatewayapi import (
    address_of,
    attached_to,
    attachments,
    gateway_at,
    route_through,
)
from canary.devenv.traffic.httproute import path_matches
from canary.devenv.traffic.references import grants_allow
from canary.devenv.traffic.routing import Destination, Request, RouteDecision

NS = "shop"
GATEWAY = f"{NS}/public"
ADDRESS = address_of(NS, "public")


def gateway(*hostnames: str | None) -> dict[str, Any]:
    listeners = []
    for i, hostname in enumerate(hostnames or (None,)):
        spec: dict[str, Any] = {"name": f"l{i}", "port": 80, "protocol": "HTTP"}
        if hostname:
            spec["hostname"] = hostname
        listeners.append(spec)
    return {"metadata": {"name": "public", "namespace": NS}, "spec": {"listeners": listeners}}


def backend(name: str, weight: int | None = None, **extra: Any) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": 80, **extra}
    if weight is not None:
        ref["weight"] = weight
    return ref


def route(name: str, rules: list[dict[str, Any]], hostnames: list[str] | None = None,
          created: str = "2026-01-01T00:00:00Z", kind: str = HTTP_ROUTE) -> dict[str, Any]:
    return {"kind": kind,
            "metadata": {"name": name, "namespace": NS, "creationTimestamp": created},
            "spec": {"parentRefs": [{"name": "public"}], "hostnames": hostnames or [],
                     "rules": rules}}


def send(gw: dict[str, Any], routes: list[dict[str, Any]], request: Request,
         seed: int = 1, grants: list[dict[str, Any]] | None = None) -> RouteDecision:
    listeners = listeners_of(gw)
    found = [(r["kind"], r, attachments(r, r["kind"], {GATEWAY: listeners}, lambda _: {}))
             for r in routes]

    def permits(kind: str, namespace: str, to_namespace: str, to_name: str) -> bool:
        return grants_allow(grants or [], kind, namespace, to_namespace, to_name)

    return route_through(listeners, attached_to(GATEWAY, found), request, permits,
                         random.Random(seed))


def get(path: str = "/", host: str = "shop.example.com", method: str = "GET",
        **headers: str) -> Request:
    return Request(ADDRESS, path, method, {"host": host, **headers})


def service(name: str, namespace: str = NS) -> Destination:
    return Destination(f"{name}.{namespace}.svc.cluster.local")


class TestAddresses:
    @given(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
           st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
    def test_a_gateways_address_names_it(self, namespace: str, name: str) -> None:
        assert gateway_at(address_of(namespace, name)) == (namespace, name)

    @pytest.mark.parametrize("host", ["shop.prod.svc.cluster.local", "example.com",
                                      "a.b.gateway.example"])
    def test_other_hosts_are_no_gateway(self, host: str) -> None:
        assert gateway_at(host) is None


class TestMatches:
    @pytest.mark.parametrize(("prefix", "path", "expected"), [
        ("/foo", "/foo", True), ("/foo", "/foo/bar", True), ("/foo/", "/foo", True),
        ("/foo", "/foobar", False), ("/", "/anything", True), ("/foo/", "/foo/x", True)])
    def test_a_path_prefix_matches_whole_path_elements(self, prefix: str, path: str,
                                                      expected: bool) -> None:
        assert path_matches({"type": "PathPrefix", "value": prefix}, path) is expected

    def test_exact_and_regular_expression_paths_match_the_whole_path(self) -> None:
        assert path_matches({"type": "Exact", "value": "/a"}, "/a")
        assert not path_matches({"type": "Exact", "value": "/a"}, "/a/")
        assert path_matches({"type": "RegularExpression", "value": "/v[0-9]+/.*"}, "/v2/x")
        assert not path_matches({"type": "RegularExpression", "value": "/v[0-9]+"}, "/v2/x")

    def test_headers_query_parameters_and_method_must_all_hold(self) -> None:
        match = {"headers": [{"name": "X-Canary", "value": "insider"},
                             {"name": "cookie", "type": "RegularExpression",
                              "value": ".*canary=yes.*"}],
                 "queryParams": [{"name": "beta", "value": "1"}], "method": "POST"}
        rules = [{"matches": [match], "backendRefs": [backend("canary")]},
                 {"backendRefs": [backend("primary")]}]
        hit = get("/x?beta=1", method="POST", **{"x-canary": "insider",
                                                 "cookie": "a=b; canary=yes"})
        assert send(gateway(), [route("r", rules)], hit).destination == service("canary")
        for miss in (get("/x?beta=2", method="POST", **{"x-canary": "insider",
                                                        "cookie": "canary=yes"}),
                     get("/x?beta=1", method="GET", **{"x-canary": "insider",
                                                       "cookie": "canary=yes"}),
                     get("/x?beta=1", method="POST", **{"cookie": "canary=yes"})):
            assert send(gateway(), [route("r", rules)], miss).destination == service("primary")

    def test_no_matching_rule_answers_404(self) -> None:
        rules = [{"matches": [{"path": {"type": "Exact", "value": "/only"}}],
                  "backendRefs": [backend("a")]}]
        decision = send(gateway(), [route("r", rules)], get("/other"))
        assert (decision.destination, decision.status) == (None, 404)


#: Matches a request to /api/v1/items?q=1&r=1 with headers a and b by GET all pass, from
#: the highest precedence to the lowest, as the spec orders them (a RegularExpression path's
#: rank is left to implementations: last here, as Istio ranks it).
BY_PRECEDENCE: list[dict[str, Any]] = [
    {"path": {"type": "Exact", "value": "/api/v1/items"}},
    {"path": {"type": "PathPrefix", "value": "/api/v1"}},
    {"path": {"type": "PathPrefix", "value": "/api"}},
    {"method": "GET"},
    {"headers": [{"name": "a", "value": "1"}, {"name": "b", "value": "1"}]},
    {"headers": [{"name": "a", "value": "1"}]},
    {"queryParams": [{"name": "q", "value": "1"}, {"name": "r", "value": "1"}]},
    {"queryParams": [{"name": "q", "value": "1"}]},
    {},
    {"path": {"type": "RegularExpression", "value": "/api/.*"}},
]
PRECEDENCE_REQUEST = get("/api/v1/items?q=1&r=1", a="1", b="1")


class TestPrecedence:
    @given(st.lists(st.integers(0, len(BY_PRECEDENCE) - 1), min_size=1, unique=True),
           st.booleans(), st.randoms())
    def test_the_match_with_precedence_wins_wherever_it_is_written(
            self, chosen: list[int], separate_routes: bool, rnd: random.Random) -> None:
        rules = [{"matches": [BY_PRECEDENCE[i]], "backendRefs": [backend(f"b{i}")]}
                 for i in chosen]
        if separate_routes:
            # Newer routes first in the list, so that age alone would pick another.
            routes = [route(f"r{i}", [rule], created=f"2026-01-0{9 - n % 9}T00:00:00Z")
                      for n, (i, rule) in enumerate(zip(chosen, rules, strict=True))]
            rnd.shuffle(routes)
        else:
            routes = [route("r", rules)]
        decision = send(gateway(), routes, PRECEDENCE_REQUEST)
        assert decision.destination == service(f"b{min(chosen)}")

    def test_of_any_two_matches_the_one_with_precedence_wins_in_either_order(self) -> None:
        for better in range(len(BY_PRECEDENCE)):
            for worse in range(better + 1, len(BY_PRECEDENCE)):
                for order in ((better, worse), (worse, better)):
                    rules = [{"matches": [BY_PRECEDENCE[i]], "backendRefs": [backend(f"b{i}")]}
                             for i in order]
                    decision = send(gateway(), [route("r", rules)], PRECEDENCE_REQUEST)
                    assert decision.destination == service(f"b{better}"), order

    @given(st.lists(st.tuples(st.integers(1, 3), st.from_regex(r"[a-z]{1,4}", fullmatch=True)),
                    min_size=1, max_size=6, unique_by=lambda t: t[1]))
    def test_among_equal_matches_the_oldest_route_then_the_first_name_wins(
            self, routes: list[tuple[int, str]]) -> None:
        objects = [route(name, [{"backendRefs": [backend(name)]}],
                         created=f"2026-01-0{day}T00:00:00Z") for day, name in routes]
        expected = min(routes)[1]
        assert send(gateway(), objects, get()).destination == service(expected)

    def test_within_a_route_the_first_of_equal_rules_wins(self) -> None:
        rules = [{"backendRefs": [backend("first")]}, {"backendRefs": [backend("second")]}]
        assert send(gateway(), [route("r", rules)], get()).destination == service("first")

    def test_an_exact_hostname_route_beats_a_wildcard_one_whatever_its_matches(self) -> None:
        wildcard = route("wild", [{"matches": [BY_PRECEDENCE[0]],
                                   "backendRefs": [backend("wild")]}], ["*.example.com"])
        exact = route("exact", [{"backendRefs": [backend("exact")]}], ["shop.example.com"],
                      created="2026-02-01T00:00:00Z")
        decision = send(gateway(), [wildcard, exact], PRECEDENCE_REQUEST)
        assert decision.destination == service("exact")

    def test_the_most_specific_listener_takes_the_request(self) -> None:
        gw = gateway("*.example.com", "shop.example.com")
        general = route("general", [{"backendRefs": [backend("general")]}])
        general["spec"]["parentRefs"] = [{"name": "public", "sectionName": "l0"}]
        specific = route("specific", [{"backendRefs": [backend("specific")]}])
        specific["spec"]["parentRefs"] = [{"name": "public", "sectionName": "l1"}]
        assert send(gw, [general, specific], get()).destination == service("specific")
        assert send(gw, [general, specific], get(host="www.example.com")).destination == \
            service("general")
        assert send(gw, [general, specific], get(host="example.org")).status == 404

    def test_the_host_headers_port_is_ignored(self) -> None:
        rt = route("r", [{"backendRefs": [backend("a")]}], ["shop.example.com"])
        assert send(gateway(), [rt], get(host="shop.example.com:8080")).destination == \
            service("a")


WEIGHTS = st.lists(st.integers(0, 100), min_size=1, max_size=4).filter(lambda w: sum(w) > 0)


class TestWeights:
    @settings(max_examples=30, deadline=None)
    @given(WEIGHTS, st.integers(0, 2**32))
    def test_backends_get_their_share_and_weight_zero_gets_none(self, weights: list[int],
                                                                seed: int) -> None:
        backends = [backend(f"b{i}", w) for i, w in enumerate(weights)]
        rng, draws = random.Random(seed), 4000
        counts = Counter(str((pick_backend(backends, rng) or {})["name"]) for _ in range(draws))
        for i, weight in enumerate(weights):
            share = counts[f"b{i}"] / draws
            if weight == 0:
                assert share == 0
            else:
                # Binomial sd <= 0.8 points over 4000 draws: 4 points is 5 sd.
                assert share == pytest.approx(weight / sum(weights), abs=0.04)

    def test_an_unset_weight_is_one(self) -> None:
        backends = [backend("a"), backend("b", 1)]
        rng = random.Random(3)
        counts = Counter(str((pick_backend(backends, rng) or {})["name"]) for _ in range(4000))
        assert counts["a"] / 4000 == pytest.approx(0.5, abs=0.04)

    @pytest.mark.parametrize("backends", [[backend("a", 0), backend("b", 0)], []])
    def test_a_rule_with_all_weights_zero_or_no_backend_answers_500(
            self, backends: list[dict[str, Any]]) -> None:
        decision = send(gateway(), [route("r", [{"backendRefs": backends}])], get())
        assert (decision.destination, decision.status) == (None, 500)

    def test_a_backend_that_is_not_a_service_answers_500(self) -> None:
        rt = route("r", [{"backendRefs": [backend("x", kind="ServiceImport",
                                                  group="multicluster.x-k8s.io")]}])
        assert send(gateway(), [rt], get()).status == 500

    def test_a_service_of_another_namespace_needs_a_reference_grant(self) -> None:
        rt = route("r", [{"backendRefs": [backend("api", namespace="backend")]}])
        assert send(gateway(), [rt], get()).status == 500
        grant = {"metadata": {"name": "shop", "namespace": "backend"},
                 "spec": {"from": [{"group": "gateway.networking.k8s.io",
                                    "kind": "HTTPRoute", "namespace": NS}],
                          "to": [{"group": "", "kind": "Service"}]}}
        assert send(gateway(), [rt], get(), grants=[grant]).destination == \
            service("api", "backend")


def mirror(name: str, **share: Any) -> dict[str, Any]:
    return {"type": "RequestMirror", "requestMirror": {"backendRef": backend(name), **share}}


class TestFilters:
    @settings(max_examples=20, deadline=None)
    @given(st.one_of(st.integers(0, 100).map(lambda p: {"percent": p}),
                     st.tuples(st.integers(0, 50), st.integers(1, 50))
                     .filter(lambda f: f[0] <= f[1])
                     .map(lambda f: {"fraction": {"numerator": f[0], "denominator": f[1]}})),
           st.integers(0, 2**32))
    def test_a_mirror_copies_its_share_of_requests(self, share: dict[str, Any],
                                                   seed: int) -> None:
        rt = route("r", [{"filters": [mirror("shadow", **share)],
                          "backendRefs": [backend("primary")]}])
        decisions = [send(gateway(), [rt], get(), seed=seed * 1000 + n) for n in range(2000)]
        mirrored = sum(service("shadow") in d.mirrors for d in decisions) / 2000
        expected = mirror_share(share)
        assert mirrored == pytest.approx(expected, abs=0.05)
        assert all(d.destination == service("primary") for d in decisions)
        if expected in (0.0, 1.0):
            assert mirrored == expected

    def test_a_mirror_without_a_share_copies_every_request(self) -> None:
        rt = route("r", [{"filters": [mirror("shadow")], "backendRefs": [backend("primary")]}])
        assert send(gateway(), [rt], get()).mirrors == (service("shadow"),)

    def test_request_headers_are_set_added_and_removed(self) -> None:
        modifier = {"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": "X-Version", "value": "canary"}],
            "add": [{"name": "X-Trace", "value": "b"}], "remove": ["X-Drop"]}}
        rt = route("r", [{"filters": [modifier], "backendRefs": [backend("a")]}])
        decision = send(gateway(), [rt], get(**{"x-trace": "a", "x-drop": "1"}))
        assert decision.headers is not None
        assert decision.headers["x-version"] == "canary"
        assert decision.headers["x-trace"] == "a,b"
        assert "x-drop" not in decision.headers

    def test_a_backends_response_header_sets_the_session_cookie_only_when_picked(self) -> None:
        cookie = "canary-session=abc; Max-Age=600"
        sticky = {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "add": [{"name": "Set-Cookie", "value": cookie}]}}
        rt = route("r", [{"backendRefs": [backend("primary", 50),
                                          backend("canary", 50, filters=[sticky])]}])
        decisions = [send(gateway(), [rt], get(), seed=n) for n in range(200)]
        for decision in decisions:
            expected = (cookie,) if decision.destination == service("canary") else ()
            assert decision.set_cookies == expected
        assert {d.destination for d in decisions} == {service("primary"), service("canary")}

    def test_a_cookie_match_then_keeps_the_user_on_the_canary(self) -> None:
        rules = [{"matches": [{"headers": [{"name": "Cookie", "type": "RegularExpression",
                                            "value": ".*canary-session=abc.*"}]}],
                  "backendRefs": [backend("canary")]},
                 {"backendRefs": [backend("primary", 100), backend("canary", 0)]}]
        decision = send(gateway(), [route("r", rules)], get(cookie="canary-session=abc"))
        assert decision.destination == service("canary")


def grpc(path: str, **headers: str) -> Request:
    return get(path, method="POST", **{"content-type": "application/grpc", **headers})


class TestGrpcRoutes:
    def test_a_method_match_picks_its_backend_and_the_rest_falls_through(self) -> None:
        rules = [{"matches": [{"method": {"service": "shop.Cart", "method": "Add"}}],
                  "backendRefs": [backend("cart-canary")]},
                 {"matches": [{"method": {"service": "shop.Cart"}}],
                  "backendRefs": [backend("cart")]}]
        rt = route("g", rules, kind=GRPC_ROUTE)
        assert send(gateway(), [rt], grpc("/shop.Cart/Add")).destination == \
            service("cart-canary")
        assert send(gateway(), [rt], grpc("/shop.Cart/Remove")).destination == service("cart")
        assert send(gateway(), [rt], grpc("/shop.Other/Add")).status == 404

    def test_a_grpc_route_takes_no_plain_http_request(self) -> None:
        rt = route("g", [{"backendRefs": [backend("cart")]}], kind=GRPC_ROUTE)
        assert send(gateway(), [rt], get("/shop.Cart/Add")).status == 404

    def test_a_grpc_request_prefers_grpc_routes_over_http_routes(self) -> None:
        http = route("h", [{"backendRefs": [backend("web")]}], created="2025-01-01T00:00:00Z")
        rt = route("g", [{"backendRefs": [backend("cart")]}], kind=GRPC_ROUTE)
        assert send(gateway(), [http, rt], grpc("/shop.Cart/Add")).destination == \
            service("cart")

    def test_regular_expressions_and_headers_match(self) -> None:
        rules = [{"matches": [{"method": {"type": "RegularExpression", "service": "shop\\..*",
                                          "method": "A.*"},
                               "headers": [{"name": "x-user", "value": "beta"}]}],
                  "backendRefs": [backend("beta")]},
                 {"backendRefs": [backend("stable")]}]
        rt = route("g", rules, kind=GRPC_ROUTE)
        assert send(gateway(), [rt], grpc("/shop.Cart/Add", **{"x-user": "beta"})
                    ).destination == service("beta")
        assert send(gateway(), [rt], grpc("/shop.Cart/Add")).destination == service("stable")
