"""The Gateway API routes canary generates, against the official CRDs (standard channel)
of the local API server: every shape passes their schema and CEL rules under strict field
validation, so no field canary writes is pruned; and a user's route edited by canary keeps
its own rules, and refuses an edit made on a version canary did not read."""

from __future__ import annotations

from typing import Any

import pytest

from canary.core import Route
from canary.kube import ApiError, Invalid, KubeClient
from canary.kube.resources import Resource
from canary.models.canary import Canary
from canary.router.gatewayapi.adopted import adopted_rules, released_rules, rules_patch
from canary.router.gatewayapi.routes import grpc_route, http_route

HTTP_ROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
GRPC_ROUTES = Resource("gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute")
OWNER = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
         "metadata": {"name": "web", "uid": "0b7f6c3e-58d4-4a55-9c53-2b7b0f3a1c11"}}
MATCH = [{"headers": {"x-user": {"prefix": "insider"}, "x-canary": {"exact": "1"}},
          "uri": {"prefix": "/api/"}, "method": {"exact": "GET"}},
         {"queryParams": {"beta": {"regex": "on|yes"}}, "uri": {"regex": "/v[12]/.*"}}]
GRPC_MATCH = [{"uri": {"exact": "/shop.Cart/Add"}, "headers": {"x-user": {"exact": "me"}}},
              {"uri": {"prefix": "/shop.Orders/"}}]


def canary(namespace: str, service: dict[str, Any] | None = None, **analysis: Any) -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                 "service": {"port": 80, "gatewayRefs": [
                     {"name": "public", "namespace": "infra", "sectionName": "https"},
                     {"group": "", "kind": "Service", "name": "web", "port": 80}],
                     "hosts": ["web.example.com"], **(service or {})},
                 "analysis": {"interval": "1m", "threshold": 1,
                              **(analysis or {"stepWeight": 10})}}})


async def dry_run_apply(kube: KubeClient, resource: Resource, body: dict[str, Any]) -> None:
    """Server-side apply ``body`` without storing it, unknown fields an error."""
    await kube.request(
        "PATCH", resource.path(body["metadata"]["namespace"], body["metadata"]["name"]),
        body=body, content_type="application/apply-patch+yaml",
        query={"fieldManager": "canary", "force": True, "dryRun": "All",
               "fieldValidation": "Strict"})


def http_shapes(namespace: str) -> dict[str, dict[str, Any]]:
    service = {"timeout": "2.5s", "retries": {"perTryTimeout": "1s"},
               "match": [{"uri": {"prefix": "/"}}],
               "headers": {"request": {"set": {"x-env": "prod"}, "remove": ["x-debug"]},
                           "response": {"add": {"x-served-by": "web"}}}}
    return {
        "weighted": http_route(canary(namespace, service), OWNER, Route(30)),
        "ab": http_route(canary(namespace, service, iterations=3, match=MATCH), OWNER,
                         Route(0, match_to_canary=True)),
        "mirror": http_route(canary(namespace, iterations=3, mirror=True), OWNER,
                             Route(0, mirror_percent=12.5)),
        "sticky": http_route(canary(namespace, service), OWNER,
                             Route(40, sticky_cookie="canary=rev-2", sticky_max_age=600)),
    }


async def test_every_http_route_shape_passes_the_official_crd(
        kube: KubeClient, namespace: str) -> None:
    for shape, body in http_shapes(namespace).items():
        try:
            await dry_run_apply(kube, HTTP_ROUTES, body)
        except ApiError as exc:
            pytest.fail(f"{shape}: {exc}")


async def test_every_grpc_route_shape_passes_the_official_crd(
        kube: KubeClient, namespace: str) -> None:
    grpc = {"appProtocol": "grpc"}
    shapes = {
        "weighted": grpc_route(canary(namespace, grpc), OWNER, Route(30)),
        "ab": grpc_route(canary(namespace, grpc, iterations=3, match=GRPC_MATCH), OWNER,
                         Route(0, match_to_canary=True)),
        "mirror": grpc_route(canary(namespace, grpc, iterations=3, mirror=True), OWNER,
                             Route(0, mirror_percent=50)),
        "sticky": grpc_route(canary(namespace, grpc), OWNER, Route(40, sticky_cookie="c=2")),
    }
    for shape, body in shapes.items():
        try:
            await dry_run_apply(kube, GRPC_ROUTES, body)
        except ApiError as exc:
            pytest.fail(f"{shape}: {exc}")


async def test_the_standard_channel_has_no_retry_field(kube: KubeClient, namespace: str) -> None:
    """Why retries other than perTryTimeout need the experimental channel."""
    body = http_route(canary(namespace, {"retries": {"attempts": 2}}), OWNER, Route(0),
                      experimental=True)
    with pytest.raises(ApiError, match="retry"):
        await dry_run_apply(kube, HTTP_ROUTES, body)


def users_route(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "storefront", "namespace": namespace},
            "spec": {"parentRefs": [{"name": "public", "namespace": "infra"}],
                     "hostnames": ["shop.example.com"],
                     "rules": [
                         {"matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
                          "backendRefs": [{"name": "docs", "port": 8080}]},
                         {"name": "app", "filters": [{
                             "type": "RequestHeaderModifier", "requestHeaderModifier": {
                                 "set": [{"name": "x-tenant", "value": "shop"}]}}],
                          "backendRefs": [{"name": "web", "port": 80}]}]}}


async def test_a_users_route_keeps_its_rules(kube: KubeClient, namespace: str) -> None:
    adopting = canary(namespace, {"gatewayRefs": None, "hosts": None,
                                  "routeRef": {"name": "storefront"}},
                      iterations=3, match=MATCH)
    created = await kube.create(HTTP_ROUTES, users_route(namespace))
    state = Route(0, match_to_canary=True, mirror_percent=20)
    patched = await kube.json_patch(HTTP_ROUTES, "storefront",
                                    rules_patch(created, adopted_rules(adopting, state, created)),
                                    namespace)
    docs, _ab, app = patched["spec"]["rules"]
    assert docs == created["spec"]["rules"][0]
    assert app["filters"][0] == created["spec"]["rules"][1]["filters"][0]
    assert [r["name"] for r in app["backendRefs"]] == ["web-primary", "web-canary"]
    assert patched["spec"]["hostnames"] == ["shop.example.com"]
    with pytest.raises(Invalid):  # written on a version canary did not read: nothing changes
        await kube.json_patch(HTTP_ROUTES, "storefront", rules_patch(
            created, adopted_rules(adopting, Route(0), created)), namespace)
    assert (await kube.get(HTTP_ROUTES, "storefront", namespace))["spec"] == patched["spec"]
    released = await kube.json_patch(HTTP_ROUTES, "storefront", rules_patch(
        patched, released_rules(adopting, patched)), namespace)
    assert released["spec"]["rules"] == created["spec"]["rules"]
