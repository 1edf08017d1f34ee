"""The traffic simulator is a Gateway API implementation: it takes on Gateways of its
class, writes the status of the HTTPRoutes attached to them, and routes traffic sent to a
Gateway by those routes, counted in the same metrics as mesh traffic."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.devenv.traffic.gatewayapi import address_of
from canary.devenv.traffic.gatewaystatus import CONTROLLER_NAME, GATEWAY_CLASS
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.waiting import prometheus_value, wait_until

FIELD_MANAGER = "e2e"
JSON = dict[str, Any]


def gateway(name: str, namespace: str, hostname: str) -> JSON:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP", "hostname": hostname}]},
    }


def http_route(name: str, namespace: str, gateway_name: str, hostname: str,
               backends: list[tuple[str, int]]) -> JSON:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": gateway_name}], "hostnames": [hostname],
                 "rules": [{"backendRefs": [{"name": backend, "port": 80, "weight": weight}
                                            for backend, weight in backends]}]},
    }


def condition(obj: JSON, kind: str, parent: int = 0) -> JSON:
    """One condition of a route's ``parent``-th status entry."""
    entry = obj["status"]["parents"][parent]
    return next(c for c in entry["conditions"] if c["type"] == kind)


def _requests(namespace: str, workload: str) -> str:
    return (f'sum(istio_requests_total{{reporter="destination",'
            f'destination_workload_namespace="{namespace}",destination_workload="{workload}",'
            f'source_workload="public"}})')


async def _two_backends(kube: KubeClient, namespace: str) -> None:
    for name in ("shop-primary", "shop-canary"):
        await kube.apply(manifests.deployment(name, namespace), field_manager=FIELD_MANAGER)
        await kube.apply(manifests.service(name, namespace), field_manager=FIELD_MANAGER)
    for name in ("shop-primary", "shop-canary"):
        await wait_until(functools.partial(kube.get, r.DEPLOYMENTS, name, namespace),
                         lambda d: d.get("status", {}).get("readyReplicas") == 1,
                         f"{name} to be ready")


class TestGatewayApiThroughTheSimulator:
    """A Gateway of the simulator's class routes by its HTTPRoutes, and says so."""

    async def test_the_simulator_takes_on_its_gateway_class_and_gateways(
            self, kube: KubeClient, namespace: str) -> None:
        gateway_class = await kube.get(r.GATEWAY_CLASSES, GATEWAY_CLASS)
        assert [(c["type"], c["status"]) for c in gateway_class["status"]["conditions"]] == \
            [("Accepted", "True")]
        await kube.apply(gateway("public", namespace, "*.example.com"),
                         field_manager=FIELD_MANAGER)
        programmed = await wait_until(
            functools.partial(kube.get, r.API_GATEWAYS, "public", namespace),
            lambda g: any(c["type"] == "Programmed" and c["status"] == "True"
                          for c in g["status"]["conditions"]),
            "the Gateway to be Programmed")
        assert programmed["status"]["addresses"] == [
            {"type": "Hostname", "value": address_of(namespace, "public")}]

    async def test_a_90_10_split_is_followed_and_the_route_status_says_accepted(
            self, kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
        await _two_backends(kube, namespace)
        await kube.apply(gateway("public", namespace, "*.example.com"),
                         field_manager=FIELD_MANAGER)
        await kube.apply(http_route("shop", namespace, "public", "shop.example.com",
                                    [("shop-primary", 90), ("shop-canary", 10)]),
                         field_manager=FIELD_MANAGER)
        route = await wait_until(
            functools.partial(kube.get, r.HTTP_ROUTES, "shop", namespace),
            lambda o: condition(o, "Accepted")["status"] == "True"
            and condition(o, "ResolvedRefs")["status"] == "True",
            "the HTTPRoute to be Accepted with its refs resolved")
        parent = route["status"]["parents"][0]
        assert parent["controllerName"] == CONTROLLER_NAME
        assert parent["parentRef"]["name"] == "public"
        assert condition(route, "Accepted")["observedGeneration"] == \
            route["metadata"]["generation"]

        await environment.set_gateway_traffic("public", namespace, "shop.example.com", rps=200)
        prom = environment.prometheus_url
        primary = _requests(namespace, "shop-primary")
        canary = _requests(namespace, "shop-canary")
        total = f"({primary}) + ({canary})"
        await wait_until(lambda: prometheus_value(prom, total),
                         lambda v: v is not None and v >= 4000,
                         "4000 requests through the Gateway", timeout=120)
        share = await prometheus_value(prom, f"({canary}) / ({total})")
        await environment.set_gateway_traffic("public", namespace, "shop.example.com", rps=0)
        # Binomial noise over >= 4000 requests: sd ~0.5 points; 3 points is > 6 sd.
        assert share == pytest.approx(0.10, abs=0.03)

    async def test_a_route_outside_the_listener_hostname_is_refused_with_its_reason(
            self, kube: KubeClient, namespace: str) -> None:
        await kube.apply(gateway("public", namespace, "*.example.com"),
                         field_manager=FIELD_MANAGER)
        await kube.apply(http_route("elsewhere", namespace, "public", "shop.example.net",
                                    [("shop-primary", 1)]), field_manager=FIELD_MANAGER)
        route = await wait_until(
            functools.partial(kube.get, r.HTTP_ROUTES, "elsewhere", namespace),
            lambda o: condition(o, "Accepted")["status"] == "False",
            "the HTTPRoute to be refused")
        assert condition(route, "Accepted")["reason"] == "NoMatchingListenerHostname"
        assert condition(route, "ResolvedRefs")["reason"] == "BackendNotFound"


def _reported(namespace: str, workload: str, reporter: str) -> str:
    return (f'sum(istio_requests_total{{reporter="{reporter}",'
            f'destination_workload_namespace="{namespace}",destination_workload="{workload}",'
            f'source_workload="public"}}) or vector(0)')


async def _route_through_public(kube: KubeClient, namespace: str,
                                rules: list[JSON]) -> None:
    """The two backends, a Gateway ``public`` for ``*.example.com`` and an HTTPRoute
    ``shop`` for ``shop.example.com`` with ``rules``, once the simulator accepted it."""
    await _two_backends(kube, namespace)
    await kube.apply(gateway("public", namespace, "*.example.com"), field_manager=FIELD_MANAGER)
    route = http_route("shop", namespace, "public", "shop.example.com", [])
    route["spec"]["rules"] = rules
    await kube.apply(route, field_manager=FIELD_MANAGER)
    await wait_until(functools.partial(kube.get, r.HTTP_ROUTES, "shop", namespace),
                     lambda o: condition(o, "Accepted")["status"] == "True",
                     "the HTTPRoute to be Accepted")


class TestWhatCanaryRoutingNeeds:
    """A/B matches, mirroring and sticky sessions through a Gateway show in the metrics and
    in who answered the simulated users."""

    async def test_a_header_match_and_a_mirror_show_in_the_metrics(
            self, kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
        mirror = {"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": "shop-canary", "port": 80}, "percent": 50}}
        await _route_through_public(kube, namespace, [
            {"matches": [{"headers": [{"name": "x-user", "value": "insider"}]}],
             "backendRefs": [{"name": "shop-canary", "port": 80}]},
            {"filters": [mirror], "backendRefs": [{"name": "shop-primary", "port": 80}]}])
        mix = {"users": 400, "profiles": [{"weight": 1, "headers": {"x-user": "insider"}},
                                          {"weight": 3}]}
        await environment.set_gateway_traffic("public", namespace, "shop.example.com", rps=200,
                                              mix=mix)
        prom = environment.prometheus_url
        sent = (f'{_reported(namespace, "shop-primary", "source")} + '
                f'{_reported(namespace, "shop-canary", "source")}')
        await wait_until(lambda: prometheus_value(prom, sent),
                         lambda v: v is not None and v >= 3000,
                         "3000 requests through the Gateway", timeout=120)
        await environment.set_gateway_traffic("public", namespace, "shop.example.com", rps=0)
        values = {}
        for workload in ("shop-primary", "shop-canary"):
            for reporter in ("source", "destination"):
                values[workload, reporter] = await prometheus_value(
                    prom, _reported(namespace, workload, reporter)) or 0.0
        total = values["shop-primary", "source"] + values["shop-canary", "source"]
        mirrored = values["shop-canary", "destination"] - values["shop-canary", "source"]
        # The insiders are about a quarter of the users (sampled once: 400 users), and the
        # mirror copies half of the others' requests.
        assert values["shop-canary", "source"] / total == pytest.approx(0.25, abs=0.08)
        assert mirrored / values["shop-primary", "source"] == pytest.approx(0.5, abs=0.05)
        assert values["shop-primary", "destination"] == values["shop-primary", "source"]

    async def test_a_session_cookie_keeps_users_on_the_canary(
            self, kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
        sticky = {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "add": [{"name": "Set-Cookie", "value": "canary-session=1; Max-Age=600"}]}}
        await _route_through_public(kube, namespace, [
            {"matches": [{"headers": [{"name": "Cookie", "type": "RegularExpression",
                                       "value": "^(.*?;\\s*)?(canary-session=1)(;.*)?$"}]}],
             "backendRefs": [{"name": "shop-canary", "port": 80}]},
            {"backendRefs": [{"name": "shop-primary", "port": 80, "weight": 80},
                             {"name": "shop-canary", "port": 80, "weight": 20,
                              "filters": [sticky]}]}])
        address = address_of(namespace, "public")
        await environment.set_gateway_traffic("public", namespace, "shop.example.com", rps=200,
                                              mix={"users": 200})
        users = await wait_until(
            lambda: environment.users(address),
            lambda u: u["lastAnsweredBy"].get("shop-canary", 0) >= 100,
            "half the users to have reached the canary", timeout=60)
        await environment.set_gateway_traffic("public", namespace, "shop.example.com", rps=0)
        assert users["switches"].get("shop-primary -> shop-canary", 0) > 0
        assert users["switches"].get("shop-canary -> shop-primary", 0) == 0
