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
