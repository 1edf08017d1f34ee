"""revertOnDeletion through the traffic port: what the finalizer writes and deletes."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from canary.controller.finalizer import FINALIZER, Finalizer
from canary.kube import resources as r
from tests.unit.controller.caches import Cache


class Held(Cache):
    """An empty watch cache of one resource."""

    def __init__(self, resource: r.Resource) -> None:
        super().__init__()
        self.resource = resource


#: The caches of the routing objects, by kind.
CACHES = {resource.kind: Held(resource) for resource in (
    r.SERVICES, r.VIRTUAL_SERVICES, r.DESTINATION_RULES, r.HTTP_ROUTES, r.GRPC_ROUTES)}


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}}},
            "status": {"observedGeneration": 1, "replicas": replicas,
                       "updatedReplicas": replicas, "availableReplicas": replicas,
                       "readyReplicas": replicas}}


class Fakes:
    """The API (Deployments read fresh, deletes, patches) and the executor's apply."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.applied: list[dict[str, Any]] = []

    async def get(self, resource: r.Resource, name: str, namespace: str) -> dict[str, Any]:
        return deployment(name, 2)

    async def delete(self, resource: r.Resource, name: str, namespace: str) -> None:
        self.calls.append(("delete", resource.kind, name))

    async def json_patch(self, resource: r.Resource, name: str, patch: Any,
                         namespace: str) -> dict[str, Any]:
        self.calls.append(("finalizer removed", name))
        return {}

    async def apply(self, manifest: dict[str, Any], cache: Any) -> None:
        self.applied.append(manifest)

    async def record(self, *args: object) -> None:
        self.calls.append(("event",))


def deleted(provider: str) -> dict[str, Any]:
    return {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u",
                         "resourceVersion": "3", "finalizers": [FINALIZER],
                         "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"provider": provider, "revertOnDeletion": True,
                     "targetRef": {"kind": "Deployment", "name": "web"},
                     "service": {"port": 80},
                     "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10}}}


@pytest.mark.parametrize(("provider", "expected"), [
    ("istio", [("delete", "VirtualService", "web"), ("event",), ("finalizer removed", "web")]),
    ("kubernetes", [("event",), ("finalizer removed", "web")]),
    ("gatewayapi:v1", [("delete", "HTTPRoute", "web"), ("event",), ("finalizer removed", "web")]),
])
async def test_traffic_goes_back_through_the_router_or_nothing_is_touched(
        provider: str, expected: list[tuple[str, ...]]) -> None:
    """Istio: the apex Service is released onto the target, the VirtualService deleted.
    Kubernetes: the apex Service is released, nothing deleted. Gateway API: the apex
    Service is released, the HTTPRoute deleted."""
    fakes = Fakes()
    finalizer = Finalizer(fakes, fakes, fakes,  # type: ignore[arg-type]
                          generated=CACHES.__getitem__,  # type: ignore[arg-type]
                          selector_labels=("app",),
                          mesh_provider="istio")
    assert await finalizer.finalize(deleted(provider), structlog.get_logger()) is None
    assert fakes.calls == expected
    [apex] = fakes.applied
    assert (apex["kind"], apex["metadata"]["name"]) == ("Service", "web")
    assert apex["spec"]["selector"] == {"app": "web"}
    assert "ownerReferences" not in apex["metadata"]


class WithUsersRoute(Fakes):
    """The API also holds the user's HTTPRoute storefront, split by canary."""

    def __init__(self) -> None:
        super().__init__()
        self.route: dict[str, Any] = {"kind": "HTTPRoute", "metadata": {
            "name": "storefront", "namespace": "shop", "resourceVersion": "5"},
            "spec": {"rules": [{"name": "app", "backendRefs": [
                {"name": "web-primary", "port": 80, "weight": 90},
                {"name": "web-canary", "port": 80, "weight": 10}]},
                {"backendRefs": [{"name": "other", "port": 80}]}]}}

    async def get(self, resource: r.Resource, name: str, namespace: str) -> dict[str, Any]:
        if resource == r.HTTP_ROUTES:
            return self.route
        return await super().get(resource, name, namespace)

    async def json_patch(self, resource: r.Resource, name: str, patch: Any,
                         namespace: str) -> dict[str, Any]:
        if resource != r.HTTP_ROUTES:
            return await super().json_patch(resource, name, patch, namespace)
        self.calls.append(("route patched", name))
        test, replace = patch
        assert test["value"] == "5"
        self.route["spec"]["rules"] = replace["value"]
        return self.route


async def test_the_users_route_is_given_back_to_the_apex_service_not_deleted() -> None:
    """routeRef: the apex Service is released onto the target, then the user's app rule
    sends to it again, the other rule untouched, and no route is deleted."""
    fakes = WithUsersRoute()
    canary = deleted("gatewayapi:v1")
    canary["spec"]["service"]["routeRef"] = {"kind": "HTTPRoute", "name": "storefront"}
    finalizer = Finalizer(fakes, fakes, fakes,  # type: ignore[arg-type]
                          generated=CACHES.__getitem__,  # type: ignore[arg-type]
                          selector_labels=("app",), mesh_provider="istio")
    assert await finalizer.finalize(canary, structlog.get_logger()) is None
    assert fakes.calls == [("route patched", "storefront"), ("event",),
                           ("finalizer removed", "web")]
    assert fakes.route["spec"]["rules"] == [
        {"name": "app", "backendRefs": [{"name": "web", "port": 80}]},
        {"backendRefs": [{"name": "other", "port": 80}]}]
    [apex] = fakes.applied
    assert apex["spec"]["selector"] == {"app": "web"}
