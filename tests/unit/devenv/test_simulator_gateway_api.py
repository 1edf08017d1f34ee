"""Traffic sent to a Gateway API Gateway's address is routed by its routes, answered by
the chosen workload and counted in the same Istio metrics as mesh traffic, with the
Gateway as the source; a backend that does not exist answers 500, as the spec says."""

from __future__ import annotations

from typing import Any, cast

import httpx
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from canary.devenv.traffic.attachment import HTTP_ROUTE
from canary.devenv.traffic.cluster import ClusterView
from canary.devenv.traffic.gatewayapi import address_of
from canary.devenv.traffic.mix import HostTraffic, Profile, TrafficMix, with_host_header
from canary.devenv.traffic.routing import Request
from canary.devenv.traffic.simulator import Simulator, build_app
from tests.unit.devenv.gateways import FakeCluster, FakeGatewayApi

ADDRESS = address_of("shop", "public")
COOKIE = "canary-session=abc; Max-Age=600"
GATEWAY = {"metadata": {"name": "public", "namespace": "shop"},
           "spec": {"listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
                                   "hostname": "*.example.com"}]}}
ROUTE = {"metadata": {"name": "shop", "namespace": "shop"},
         "spec": {"parentRefs": [{"name": "public"}], "hostnames": ["shop.example.com"],
                  "rules": [
                      {"matches": [{"path": {"type": "PathPrefix", "value": "/gone"}}],
                       "backendRefs": [{"name": "gone", "port": 80}]},
                      {"matches": [{"headers": [{"name": "cookie", "type": "RegularExpression",
                                                 "value": ".*canary-session=abc.*"}]}],
                       "backendRefs": [{"name": "shop-canary", "port": 80}]},
                      {"backendRefs": [
                          {"name": "shop-primary", "port": 80, "weight": 50},
                          {"name": "shop-canary", "port": 80, "weight": 50, "filters": [
                              {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                                  "add": [{"name": "Set-Cookie", "value": COOKIE}]}}]}]}]}}


def simulator() -> Simulator:
    """Two Deployments behind their Services; the Service ``gone`` does not exist."""
    api = FakeGatewayApi(GATEWAY, [(HTTP_ROUTE, ROUTE)])
    return Simulator(cast(ClusterView, FakeCluster(api, missing={"gone"})), seed=7)


def through_gateway(path: str = "/", **headers: str) -> Request:
    return Request(ADDRESS, path, "GET", {"host": "shop.example.com", **headers})


def test_a_request_is_answered_by_a_routed_workload_and_counted_from_the_gateway() -> None:
    sim = simulator()
    delivery = sim.deliver(through_gateway(cookie="canary-session=abc"))
    assert delivery.status == 200 and delivery.endpoint is not None
    assert delivery.endpoint.workload == "shop-canary"
    where: dict[str, Any] = {"destination_workload": "shop-canary",
                             "source_workload": "public", "source_workload_namespace": "shop"}
    assert sim.metrics.total(reporter="destination", **where) == 1
    assert sim.metrics.total(reporter="source", **where) == 1


def test_a_backend_that_does_not_exist_answers_500() -> None:
    sim = simulator()
    assert sim.deliver(through_gateway("/gone/x")).status == 500
    assert sim.metrics.total(reporter="source", response_code="500",
                             destination_service_name="gone") == 1


def test_a_host_no_listener_takes_answers_404() -> None:
    sim = simulator()
    request = Request(ADDRESS, "/", "GET", {"host": "shop.example.net"})
    assert sim.deliver(request).status == 404
    assert sim.deliver(Request(address_of("shop", "other"))).status == 404


def test_generated_users_stick_to_the_canary_once_it_set_their_cookie() -> None:
    sim = simulator()
    mix = TrafficMix(users=50, profiles=[Profile(headers={"host": "shop.example.com"})])
    sim.set_host(ADDRESS, HostTraffic(rps=1000, mix=mix))
    sim.tick(2.0)
    users = sim.users(ADDRESS)
    assert users["switches"].get("shop-canary -> shop-primary", 0) == 0
    assert users["lastAnsweredBy"].get("shop-canary", 0) > 0
    assert users["switches"].get("shop-primary -> shop-canary", 0) > 0


class TestHostHeader:
    @given(st.lists(st.dictionaries(st.sampled_from(["Host", "host", "x-user", "cookie"]),
                                    st.text(max_size=5), max_size=3)
                    .map(lambda h: {"headers": h}), max_size=3),
           st.from_regex(r"[a-z]{1,8}\.example\.com", fullmatch=True))
    def test_every_profile_sends_the_hostname_and_keeps_its_other_headers(
            self, profiles: list[dict[str, Any]], hostname: str) -> None:
        mix = with_host_header({"users": 10, "profiles": profiles} if profiles else None,
                               hostname)
        parsed = TrafficMix.model_validate(mix)
        assert len(parsed.profiles) == max(1, len(profiles))
        for given_profile, profile in zip(profiles, parsed.profiles, strict=False):
            others = {k: v for k, v in given_profile["headers"].items() if k.lower() != "host"}
            assert profile.headers == {**others, "host": hostname}
        assert all(p.headers["host"] == hostname for p in parsed.profiles)


async def test_a_proxied_request_to_a_gateway_address_is_routed_by_its_host_header() -> None:
    sim = simulator()
    server = TestServer(build_app(sim), host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{server.port}") as http:
            sticky = await http.get(f"http://{ADDRESS}/", headers={
                "Host": "shop.example.com", "Cookie": "canary-session=abc"})
            gone = await http.get(f"http://{ADDRESS}/gone", headers={"Host": "shop.example.com"})
    finally:
        await server.close()
    assert (sticky.status_code, sticky.json()["workload"]) == (200, "shop-canary")
    assert (gone.status_code, gone.json()["error"]) == (500, "no valid backend")
