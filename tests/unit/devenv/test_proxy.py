"""The simulator's forward proxy: a hook's ``curl http://backend-canary.prod:9898/token``
reaches the simulated mesh, is routed like generated traffic, answered as the pod's
annotations say, and counted with its caller as the source."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from canary.devenv.traffic.behaviour import Behaviour
from canary.devenv.traffic.cluster import ClusterView, Endpoint
from canary.devenv.traffic.gateway import GATEWAY_WORKLOAD, Ingress, gateway_route, ingress_of
from canary.devenv.traffic.proxy import Delivery, answer, caller_from, service_host
from canary.devenv.traffic.routing import SIMULATOR, UNKNOWN, Destination, Request, Source
from canary.devenv.traffic.simulator import Simulator, build_app
from canary.errors import ConfigError
from canary.loadtester import generate, parse_hey

BACKEND = "backend.prod.svc.cluster.local"
CANARY_HOST = "backend-canary.prod.svc.cluster.local"
GATEWAY = "istio-gateway.istio-system.svc.cluster.local"
INSIDER = "^(.*?;)?(type=insider)(;.*)?$"
LOADTESTER = Source("canary-loadtester", "prod", {"app": "canary-loadtester"})
NAME = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:x".encode()).decode()


def endpoint(workload: str, behaviour: Behaviour) -> Endpoint:
    return Endpoint(pod=f"{workload}-abc", namespace="prod", workload=workload, app="backend",
                    version="unknown", canonical_service="backend", behaviour=behaviour)


class FakeMesh:
    """What the simulator reads of the cluster: a Canary's routing (canary gets the
    requests of ``sourceLabels`` app=canary-loadtester, the rest goes to the primary), and
    an ingress gateway ``istio-gateway.istio-system`` whose A/B route sends insiders to
    the canary."""

    def __init__(self, canary_errors: float = 0.0) -> None:
        self.canary = endpoint("backend", Behaviour(canary_errors, 5.0))
        self.primary = endpoint("backend-primary", Behaviour(0.0, 5.0))
        self.gateway_routes: list[dict[str, Any]] = [{
            "metadata": {"name": "backend", "namespace": "prod"},
            "spec": {"hosts": ["backend", "*"], "gateways": ["istio-system/public-gateway"],
                     "http": [{"match": [{"headers": {"cookie": {"regex": INSIDER}}}],
                               "route": [{"destination": {"host": "backend-canary"}}]},
                              {"route": [{"destination": {"host": "backend-primary"}}]}]}}]

    def synced(self) -> bool:
        return True

    def ingress_for(self, host: str) -> Ingress | None:
        return ingress_of(
            {"metadata": {"name": "istio-gateway", "namespace": "istio-system"},
             "spec": {"selector": {"istio": "ingressgateway"}}},
            [{"metadata": {"name": "public-gateway", "namespace": "istio-system"},
              "spec": {"selector": {"istio": "ingressgateway"}}}],
        ) if host == GATEWAY else None

    def gateway_route_for(self, through: tuple[str, ...], host: str
                          ) -> tuple[dict[str, Any], str] | None:
        return gateway_route(self.gateway_routes, through, host)

    def virtual_service_for(self, host: str) -> tuple[dict[str, Any] | None, str]:
        if host != BACKEND:
            return None, "prod"
        return {"hosts": ["backend"], "http": [
            {"match": [{"sourceLabels": {"app": "canary-loadtester"}}],
             "route": [{"destination": {"host": "backend-canary"}}]},
            {"route": [{"destination": {"host": "backend-primary"}}]}]}, "prod"

    def endpoints(self, destination: Destination) -> list[Endpoint] | None:
        return {"backend-canary.prod.svc.cluster.local": [self.canary],
                "backend-primary.prod.svc.cluster.local": [self.primary]}.get(destination.host)


def simulator(mesh: FakeMesh) -> Simulator:
    return Simulator(cast(ClusterView, mesh), seed=1)


class TestWhoIsCalling:
    @given(NAME, NAME)
    def test_the_proxy_user_names_the_callers_workload_and_namespace(self, workload: str,
                                                                    namespace: str) -> None:
        caller = caller_from(basic(f"{workload}.{namespace}"))
        assert (caller.workload, caller.namespace, caller.app) == (workload, namespace, workload)

    @pytest.mark.parametrize("header", [None, "", "Bearer abc", "Basic !!!", basic("nodots"),
                                        basic(".prod")])
    def test_a_caller_that_does_not_say_is_unknown(self, header: str | None) -> None:
        assert caller_from(header) is UNKNOWN


class TestWhatWasDialled:
    def test_a_bare_name_resolves_in_the_callers_namespace(self) -> None:
        assert service_host("backend-canary", LOADTESTER) == CANARY_HOST

    def test_a_name_with_its_namespace_resolves_as_cluster_dns_does(self) -> None:
        assert service_host("backend-canary.prod", UNKNOWN) == CANARY_HOST
        assert service_host("backend-canary.prod.svc", LOADTESTER) == CANARY_HOST

    def test_a_bare_name_from_an_unknown_caller_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="namespace"):
            service_host("backend-canary", UNKNOWN)


class TestRouting:
    def test_a_proxied_request_is_routed_by_its_callers_labels(self) -> None:
        mesh = FakeMesh()
        sim = simulator(mesh)
        assert sim.deliver(Request(BACKEND, "/", source=LOADTESTER)).endpoint == mesh.canary
        assert sim.deliver(Request(BACKEND, "/")).endpoint == mesh.primary

    def test_it_is_counted_with_its_caller_as_the_source(self) -> None:
        sim = simulator(FakeMesh())
        for _ in range(3):
            sim.deliver(Request(CANARY_HOST, "/token", "POST", source=LOADTESTER))
        sim.deliver(Request(CANARY_HOST, "/"))
        counted = {"destination_workload": "backend", "reporter": "destination"}
        assert sim.metrics.total(source_workload="canary-loadtester",
                                 source_workload_namespace="prod", **counted) == 3
        assert sim.metrics.total(source_workload=SIMULATOR.workload, **counted) == 1

    def test_the_pod_answers_as_its_annotations_say(self) -> None:
        sim = simulator(FakeMesh(canary_errors=1.0))
        delivery = sim.deliver(Request(CANARY_HOST, "/", source=LOADTESTER))
        assert delivery.status == 500
        assert sim.metrics.total(response_code="500", reporter="destination") == 1

    def test_a_host_without_pods_is_answered_by_the_mesh(self) -> None:
        delivery = simulator(FakeMesh()).deliver(Request("nothing.prod.svc.cluster.local"))
        assert (delivery.status, delivery.flags, delivery.endpoint) == (503, "NC", None)


class TestAnswer:
    @given(st.sampled_from(["GET", "POST", "PUT"]), st.from_regex(r"/[a-z/]{0,20}",
                                                                  fullmatch=True))
    def test_the_body_names_the_pod_and_echoes_the_method_and_path(self, method: str,
                                                                    path: str) -> None:
        pod = endpoint("backend", Behaviour())
        body = answer(Request(CANARY_HOST, path, method), Delivery(200, 1.0, "-", pod))
        assert (body["workload"], body["pod"], body["method"], body["path"]) == (
            "backend", pod.pod, method, path)

    def test_no_healthy_upstream_is_said_so(self) -> None:
        body = answer(Request(CANARY_HOST), Delivery(503, 0.5, "UH"))
        assert body["error"] == "no healthy upstream"


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[Simulator, str]]:
    sim = simulator(FakeMesh())
    server = TestServer(build_app(sim), host="127.0.0.1")
    await server.start_server()
    yield sim, f"http://127.0.0.1:{server.port}"
    await server.close()


class TestOverHttp:
    """On loopback, with the clients hooks use: curl and the load tester's hey."""

    async def test_curl_through_http_proxy_reaches_the_canary(
            self, proxy: tuple[Simulator, str]) -> None:
        sim, url = proxy
        env = {**os.environ, "http_proxy": url.replace("://", "://canary-loadtester.prod@")}
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", "curl -sd 'test' http://backend-canary.prod:9898/token | grep token",
            env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await process.communicate()
        assert process.returncode == 0, out
        assert b'"workload": "backend"' in out and b'"method": "POST"' in out
        assert sim.metrics.total(source_workload="canary-loadtester", reporter="destination",
                                 destination_workload="backend") == 1

    async def test_hey_load_goes_through_the_proxy_of_its_environment(
            self, proxy: tuple[Simulator, str], monkeypatch: pytest.MonkeyPatch) -> None:
        sim, url = proxy
        monkeypatch.setenv("http_proxy", url.replace("://", "://canary-loadtester.prod@"))
        report = await generate(parse_hey("hey -n 4 -c 2 http://backend-canary.prod:9898/"))
        assert report.statuses == {"200": 4}
        assert sim.metrics.total(source_workload="canary-loadtester",
                                 reporter="destination") == 4

    async def test_the_simulators_own_api_is_still_served(
            self, proxy: tuple[Simulator, str]) -> None:
        _, url = proxy
        async with httpx.AsyncClient(trust_env=False) as http:
            assert (await http.get(f"{url}/healthz")).text == "ok"

    async def test_a_bare_host_from_an_unknown_caller_is_a_bad_request(
            self, proxy: tuple[Simulator, str]) -> None:
        _, url = proxy
        async with httpx.AsyncClient(proxy=url) as http:
            response = await http.get("http://backend-canary:9898/")
        assert response.status_code == 400


class TestThroughTheIngressGateway:
    """A request to the gateway's Service enters the mesh there, as the workshop's
    ``hey -H 'Cookie: type=insider' http://istio-gateway.istio-system/`` does."""

    def test_it_is_routed_by_the_gateways_virtual_service_on_its_host(self) -> None:
        sim = simulator(FakeMesh())
        insider = sim.deliver(Request(GATEWAY, "/", "GET", {"cookie": "type=insider",
                                                             "host": "istio-gateway.istio-system"},
                                      LOADTESTER))
        other = sim.deliver(Request(GATEWAY, "/", "GET", {"host": "www.example.com"},
                                    LOADTESTER))
        assert insider.endpoint is not None and insider.endpoint.workload == "backend"
        assert other.endpoint is not None and other.endpoint.workload == "backend-primary"

    def test_the_gateway_is_the_source_of_what_it_forwards(self) -> None:
        sim = simulator(FakeMesh())
        sim.deliver(Request(GATEWAY, "/", "GET", {"cookie": "type=insider"}, LOADTESTER))
        for reporter in ("source", "destination"):
            assert sim.metrics.total(reporter=reporter, source_workload=GATEWAY_WORKLOAD,
                                     source_workload_namespace="istio-system",
                                     destination_workload="backend",
                                     destination_workload_namespace="prod") == 1
        assert sim.metrics.total(source_workload="canary-loadtester") == 0

    def test_a_host_no_virtual_service_takes_is_not_found_at_the_gateway(self) -> None:
        mesh = FakeMesh()
        mesh.gateway_routes[0]["spec"]["hosts"] = ["*.example.com"]
        delivery = simulator(mesh).deliver(Request(GATEWAY, "/", "GET",
                                                   {"host": "www.example.org"}, LOADTESTER))
        assert (delivery.status, delivery.flags) == (404, "NR")

    async def test_hey_through_the_proxy_reaches_the_canary_as_an_insider(
            self, proxy: tuple[Simulator, str], monkeypatch: pytest.MonkeyPatch) -> None:
        sim, url = proxy
        monkeypatch.setenv("http_proxy", url.replace("://", "://canary-loadtester.prod@"))
        report = await generate(parse_hey(
            "hey -n 6 -c 2 -H 'Cookie: type=insider' http://istio-gateway.istio-system/"))
        assert report.statuses == {"200": 6}
        assert sim.metrics.total(reporter="destination", source_workload=GATEWAY_WORKLOAD,
                                 destination_workload="backend") == 6
