"""The simulator writes the status of the Gateway API objects it serves, and only of those:
once per change, never again for a status that is already right (its own writes come back
through its watches and must settle), and guarded by the object's resourceVersion."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest

from canary.devenv.traffic.gatewaycontroller import GatewayStatusWriter
from canary.devenv.traffic.gatewaystatus import CONTROLLER_NAME
from canary.devenv.traffic.gatewayview import GatewayApiView
from canary.kube import KubeClient, Reflector
from canary.kube import resources as r
from canary.kube.resources import Resource
from tests.unit.kube.fakes import initial_events

JSON = dict[str, Any]


def obj(kind: str, name: str, namespace: str = "", **spec: Any) -> JSON:
    meta: JSON = {"name": name, "generation": 1, "resourceVersion": "1"}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "metadata": meta, "spec": spec}


def route(name: str, hostname: str, gateway: str = "public") -> JSON:
    return obj("HTTPRoute", name, "shop", parentRefs=[{"name": gateway}], hostnames=[hostname],
               rules=[{"backendRefs": [{"name": "shop", "port": 80}]}])


def cluster() -> dict[str, list[JSON]]:
    listener = {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}
    return {
        "gatewayclasses": [obj("GatewayClass", "ours", controllerName=CONTROLLER_NAME),
                           obj("GatewayClass", "theirs", controllerName="example.com/other")],
        "gateways": [obj("Gateway", "public", "shop", gatewayClassName="ours",
                         listeners=[listener]),
                     obj("Gateway", "other", "shop", gatewayClassName="theirs",
                         listeners=[listener])],
        "httproutes": [route("good", "a.example.com"), route("refused", "a.example.net"),
                       route("elsewhere", "a.example.com", gateway="other")],
        "services": [obj("Service", "shop", "shop")],
        "namespaces": [obj("Namespace", "shop")],
    }


class FakeApi:
    """A cluster of objects by plural: lists them, streams what changes, and applies
    merge patches of ``status`` that carry the object's current resourceVersion."""

    def __init__(self, objects: dict[str, list[JSON]]) -> None:
        self.objects = objects
        self.events: dict[str, asyncio.Queue[JSON]] = {}
        self.patches: list[tuple[str, str, JSON]] = []

    def queue(self, plural: str) -> asyncio.Queue[JSON]:
        return self.events.setdefault(plural, asyncio.Queue())

    async def list(self, resource: Resource, namespace: str | None = None,
                   **_: Any) -> JSON:
        return {"items": copy.deepcopy(self.objects.get(resource.plural, [])),
                "metadata": {"resourceVersion": "1"}}

    async def watch(self, resource: Resource, namespace: str | None = None, *_: Any,
                    **options: Any) -> AsyncIterator[JSON]:
        if options.get("initial_events"):
            for event in initial_events(await self.list(resource, namespace)):
                yield event
            return
        while True:
            yield await self.queue(resource.plural).get()

    async def merge_patch(self, resource: Resource, name: str, patch: JSON,
                          namespace: str | None = None, subresource: str | None = None) -> JSON:
        assert subresource == "status"
        stored = next(o for o in self.objects[resource.plural]
                      if o["metadata"]["name"] == name
                      and o["metadata"].get("namespace") == namespace)
        assert patch["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
        stored["status"] = {**stored.get("status", {}), **patch["status"]}
        stored["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        self.patches.append((resource.kind, name, patch["status"]))
        self.queue(resource.plural).put_nowait({"type": "MODIFIED",
                                                "object": copy.deepcopy(stored)})
        return stored

    def update(self, plural: str, changed: JSON) -> None:
        changed["metadata"]["resourceVersion"] = "100"
        self.objects[plural] = [changed if o["metadata"]["name"] == changed["metadata"]["name"]
                                else o for o in self.objects[plural]]
        self.queue(plural).put_nowait({"type": "MODIFIED", "object": copy.deepcopy(changed)})


@pytest.fixture
def api() -> FakeApi:
    return FakeApi(cluster())


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def writer(api: FakeApi) -> AsyncIterator[GatewayStatusWriter]:
    client = cast(KubeClient, api)
    view = GatewayApiView(client, Reflector(client, r.SERVICES), lambda *_: None)
    reflectors = [view.services, *view.reflectors]
    tasks = [asyncio.create_task(reflector.run()) for reflector in reflectors]
    await settle()
    yield GatewayStatusWriter(client, view, lambda: True, clock=lambda: "2026-12-01T10:00:00Z")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def written(api: FakeApi) -> list[tuple[str, str]]:
    return [(kind, name) for kind, name, _ in api.patches]


def reasons(status: JSON) -> Iterator[tuple[str, str]]:
    for parent in status["parents"]:
        for condition in parent["conditions"]:
            yield condition["type"], condition["reason"]


class TestStatusWrites:
    async def test_only_what_the_simulator_serves_is_written(
            self, api: FakeApi, writer: GatewayStatusWriter) -> None:
        await writer.reconcile()
        assert sorted(written(api)) == [("Gateway", "public"), ("GatewayClass", "ours"),
                                        ("HTTPRoute", "good"), ("HTTPRoute", "refused")]
        statuses = {name: status for _, name, status in api.patches}
        assert dict(reasons(statuses["good"])) == {"Accepted": "Accepted",
                                                   "ResolvedRefs": "ResolvedRefs"}
        assert dict(reasons(statuses["refused"]))["Accepted"] == "NoMatchingListenerHostname"
        assert statuses["public"]["listeners"][0]["attachedRoutes"] == 1

    async def test_a_status_already_right_is_not_written_again(
            self, api: FakeApi, writer: GatewayStatusWriter) -> None:
        await writer.reconcile()
        await settle()
        first = len(api.patches)
        await writer.reconcile()
        assert len(api.patches) == first

    async def test_a_route_that_moves_to_another_gateway_loses_this_controllers_entry(
            self, api: FakeApi, writer: GatewayStatusWriter) -> None:
        await writer.reconcile()
        await settle()
        moved = copy.deepcopy(next(o for o in api.objects["httproutes"]
                                   if o["metadata"]["name"] == "good"))
        moved["spec"]["parentRefs"] = [{"name": "other"}]
        api.update("httproutes", moved)
        await settle()
        api.patches.clear()
        await writer.reconcile()
        route_patches = [(name, status) for kind, name, status in api.patches
                         if kind == "HTTPRoute"]
        assert route_patches == [("good", {"parents": []})]
        gateway = next(s for kind, _, s in api.patches if kind == "Gateway")
        assert gateway["listeners"][0]["attachedRoutes"] == 0
