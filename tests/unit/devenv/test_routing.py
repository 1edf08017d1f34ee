"""Requests are routed the way Istio routes them, so rollouts see realistic traffic."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.devenv.traffic.routing import (
    Destination,
    Request,
    normalize_host,
    qualify,
    route_request,
    string_matches,
)
from canary.errors import ConfigError

NS = "test"
PRIMARY = Destination("podinfo-primary.test.svc.cluster.local")
CANARY = Destination("podinfo-canary.test.svc.cluster.local")


def weighted(primary: int, canary: int, **extra: object) -> dict[str, object]:
    return {"hosts": ["podinfo"], "http": [{
        "route": [{"destination": {"host": "podinfo-primary"}, "weight": primary},
                  {"destination": {"host": "podinfo-canary"}, "weight": canary}],
        **extra}]}


def req(**headers: str) -> Request:
    return Request("podinfo.test.svc.cluster.local", "/", "GET", headers)


class TestHostNames:
    @pytest.mark.parametrize(("host", "expected"), [
        ("podinfo", "podinfo.test.svc.cluster.local"),
        ("podinfo.other.svc.cluster.local", "podinfo.other.svc.cluster.local"),
        ("example.com", "example.com"),
        ("*.example.com", "*.example.com"),
    ])
    def test_short_names_resolve_in_the_routing_objects_namespace(self, host: str,
                                                                  expected: str) -> None:
        assert qualify(host, NS) == expected

    @given(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True))
    def test_qualifying_twice_changes_nothing(self, host: str) -> None:
        once = qualify(host, NS)
        assert qualify(once, "elsewhere") == once


class TestStringMatch:
    def test_exact_prefix_and_regex(self) -> None:
        assert string_matches({"exact": "a"}, "a")
        assert not string_matches({"exact": "a"}, "ab")
        assert string_matches({"prefix": "/api"}, "/api/v1")
        assert not string_matches({"prefix": "/api"}, "/v1/api")

    def test_regex_must_match_the_whole_value_like_envoy(self) -> None:
        assert string_matches({"regex": ".*Firefox.*"}, "Mozilla Firefox 120")
        assert not string_matches({"regex": "Firefox"}, "Mozilla Firefox 120")

    def test_an_empty_match_means_present(self) -> None:
        assert string_matches({}, "")
        assert not string_matches({}, None)


class TestWeights:
    def test_traffic_splits_by_weight(self) -> None:
        rng = random.Random(7)
        spec = weighted(80, 20)
        counts = Counter(route_request(spec, NS, req(), rng).destination for _ in range(20000))
        assert counts[CANARY] / 20000 == pytest.approx(0.2, abs=0.015)

    @settings(max_examples=50)
    @given(st.lists(st.integers(min_value=-5, max_value=100), min_size=1, max_size=4),
           st.integers(min_value=0, max_value=2**32))
    def test_only_destinations_with_positive_weight_receive_traffic(
            self, weights: list[int], seed: int) -> None:
        spec = {"http": [{"route": [
            {"destination": {"host": f"d{i}"}, "weight": w} for i, w in enumerate(weights)]}]}
        rng = random.Random(seed)
        for _ in range(50):
            decision = route_request(spec, NS, req(), rng)
            if sum(max(0, w) for w in weights) == 0:
                assert decision.destination is None
            else:
                assert decision.destination is not None
                index = int(decision.destination.host.split(".")[0][1:])
                assert weights[index] > 0

    def test_a_single_destination_without_weight_takes_everything(self) -> None:
        spec = {"http": [{"route": [{"destination": {"host": "podinfo-primary"}}]}]}
        assert route_request(spec, NS, req(), random.Random(1)).destination == PRIMARY

    def test_without_a_virtual_service_requests_go_to_the_host_dialled(self) -> None:
        decision = route_request(None, NS, req(), random.Random(1))
        assert decision.destination == Destination("podinfo.test.svc.cluster.local")


class TestMatches:
    AB = {"http": [
        {"match": [{"headers": {"cookie": {"regex": r"^(.*?;\s*)?(canary=always)(;.*)?$"}}},
                   {"headers": {"x-canary": {"exact": "insider"}}}],
         "route": [{"destination": {"host": "podinfo-canary"}}]},
        {"route": [{"destination": {"host": "podinfo-primary"}}]},
    ]}

    def test_routes_are_tried_in_order_and_any_match_block_suffices(self) -> None:
        rng = random.Random(1)
        assert route_request(self.AB, NS, req(cookie="a=b; canary=always"), rng).destination \
            == CANARY
        assert route_request(self.AB, NS, req(**{"x-canary": "insider"}), rng).destination \
            == CANARY
        assert route_request(self.AB, NS, req(cookie="canary=never"), rng).destination == PRIMARY
        assert route_request(self.AB, NS, req(), rng).destination == PRIMARY

    def test_all_conditions_of_one_block_must_hold(self) -> None:
        spec = {"http": [
            {"match": [{"uri": {"prefix": "/api"},
                        "headers": {"user-agent": {"regex": ".*Firefox.*"}}}],
             "route": [{"destination": {"host": "podinfo-canary"}}]}]}
        rng = random.Random(1)
        firefox = {"user-agent": "Mozilla Firefox"}
        assert route_request(spec, NS, Request("h", "/api/x", "GET", firefox), rng).destination \
            == CANARY
        assert route_request(spec, NS, Request("h", "/web", "GET", firefox), rng).destination \
            is None
        assert route_request(spec, NS, Request("h", "/api/x", "GET", {}), rng).destination \
            is None

    def test_without_headers_and_query_parameters(self) -> None:
        spec = {"http": [{"match": [{"withoutHeaders": {"x-debug": {}},
                                     "queryParams": {"v": {"exact": "2"}}}],
                          "route": [{"destination": {"host": "podinfo-canary"}}]}]}
        rng = random.Random(1)
        assert route_request(spec, NS, Request("h", "/?v=2"), rng).destination == CANARY
        assert route_request(spec, NS, Request("h", "/?v=1"), rng).destination is None
        debug = Request("h", "/?v=2", "GET", {"x-debug": "1"})
        assert route_request(spec, NS, debug, rng).destination is None

    def test_routes_bound_to_a_gateway_only_are_not_mesh_routes(self) -> None:
        spec = {"http": [{"match": [{"gateways": ["public-gateway"]}],
                          "route": [{"destination": {"host": "podinfo-canary"}}]},
                         {"route": [{"destination": {"host": "podinfo-primary"}}]}]}
        assert route_request(spec, NS, req(), random.Random(1)).destination == PRIMARY


class TestMirroringAndCookies:
    def test_mirroring_copies_the_given_share(self) -> None:
        spec = weighted(100, 0, mirror={"host": "podinfo-canary"},
                        mirrorPercentage={"value": 25.0})
        rng = random.Random(3)
        decisions = [route_request(spec, NS, req(), rng) for _ in range(8000)]
        assert all(d.destination == PRIMARY for d in decisions)
        mirrored = sum(1 for d in decisions if d.mirrors == (CANARY,))
        assert mirrored / 8000 == pytest.approx(0.25, abs=0.02)

    def test_mirror_without_percentage_copies_everything(self) -> None:
        spec = weighted(100, 0, mirror={"host": "podinfo-canary"})
        assert route_request(spec, NS, req(), random.Random(1)).mirrors == (CANARY,)

    def test_set_cookie_response_headers_are_reported(self) -> None:
        spec = {"http": [{"route": [
            {"destination": {"host": "podinfo-canary"}, "weight": 100,
             "headers": {"response": {"add": {"Set-Cookie": "affinity=abc; Max-Age=60"}}}}]}]}
        decision = route_request(spec, NS, req(), random.Random(1))
        assert decision.set_cookies == ("affinity=abc; Max-Age=60",)


class TestDialledHosts:
    @pytest.mark.parametrize(("dialled", "expected"), [
        ("podinfo.test", "podinfo.test.svc.cluster.local"),
        ("podinfo.test.svc", "podinfo.test.svc.cluster.local"),
        ("PodInfo.Test.svc.cluster.local.", "podinfo.test.svc.cluster.local"),
    ])
    def test_search_path_forms_complete_to_the_service_fqdn(self, dialled: str,
                                                            expected: str) -> None:
        assert normalize_host(dialled) == expected

    @pytest.mark.parametrize("dialled", ["podinfo", "", "podinfo..svc"])
    def test_a_host_without_namespace_is_refused(self, dialled: str) -> None:
        with pytest.raises(ConfigError, match="namespace"):
            normalize_host(dialled)
