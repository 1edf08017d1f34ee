"""The app under a Canary routed by either provider, and its users' traffic: through
Istio's mesh (to the apex Service's host) or through a Gateway API Gateway of the
simulator's class (to the Gateway's address, with the route's hostname)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canary.devenv import LocalEnvironment
from canary.devenv.traffic.gatewayapi import address_of
from canary.devenv.traffic.gatewaystatus import GATEWAY_CLASS
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import APP, FIELD_MANAGER, canary_object, deploy, phase
from tests.e2e.waiting import wait_until

JSON = dict[str, Any]
GATEWAY, HOST = "public", "shop.example.com"
PROVIDERS = ("istio", "gatewayapi:v1")


def gateway(namespace: str, hostname: str = HOST) -> JSON:
    """A Gateway of the simulator's class with one HTTP listener for ``hostname``."""
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": GATEWAY, "namespace": namespace},
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "hostname": hostname}]}}


@dataclass(frozen=True)
class Routing:
    """How the users of the test's app reach it, by ``provider``."""

    provider: str
    namespace: str

    @property
    def gateway_api(self) -> bool:
        return self.provider == "gatewayapi:v1"

    @property
    def users_host(self) -> str:
        """Where the users' traffic is sent (the simulator's key for it)."""
        return address_of(self.namespace, GATEWAY) if self.gateway_api \
            else f"{APP}.{self.namespace}"

    def canary(self, analysis: JSON, hosts: tuple[str, ...] = (HOST,),
               deadline: int = 60) -> JSON:
        """The app's Canary; with the Gateway API, its route attached to the Gateway for
        ``hosts``."""
        canary = manifests.canary(APP, self.namespace, analysis=analysis,
                                  progressDeadlineSeconds=deadline, provider=self.provider)
        if self.gateway_api:
            canary["spec"]["service"] |= {"gatewayRefs": [{"name": GATEWAY}],
                                          "hosts": list(hosts)}
        return canary

    async def send(self, env: LocalEnvironment, rps: float,
                   mix: Mapping[str, Any] | None = None) -> None:
        if self.gateway_api:
            await env.set_gateway_traffic(GATEWAY, self.namespace, HOST, rps, mix)
        else:
            await env.set_traffic(self.users_host, rps, mix)

    async def main_rules(self, kube: KubeClient) -> list[JSON]:
        """The routing rules canary wrote, in order: the VirtualService's ``http`` or the
        route's ``rules``."""
        if self.gateway_api:
            route = await kube.get(r.HTTP_ROUTES, APP, self.namespace)
            return list(route["spec"]["rules"])
        service = await kube.get(r.VIRTUAL_SERVICES, APP, self.namespace)
        return list(service["spec"]["http"])


async def start(kube: KubeClient, env: LocalEnvironment, routing: Routing, analysis: JSON,
                hosts: tuple[str, ...] = (HOST,), deadline: int = 60) -> None:
    """The app, its Canary and 100 requests per second from its users; returns once the
    Canary is Initialized and its route written (the status is written first)."""
    if routing.gateway_api:
        await kube.apply(gateway(routing.namespace), field_manager=FIELD_MANAGER)
    await deploy(kube, routing.namespace, {"revision": "1"})
    await kube.create(r.CANARIES, routing.canary(analysis, hosts, deadline))
    await routing.send(env, rps=100)
    await wait_until(functools.partial(canary_object, kube, routing.namespace),
                     lambda c: phase(c) == "Initialized", "the Canary to be Initialized")
    routes = r.HTTP_ROUTES if routing.gateway_api else r.VIRTUAL_SERVICES
    await wait_until(lambda: kube.list(routes, routing.namespace),
                     lambda found: bool(found["items"]), "the Canary's route", timeout=10)
