"""Which routing objects a Canary no longer routes with: only its own, only those its
current provider and service name do not manage."""

from __future__ import annotations

from typing import Any

from canary.controller.retirement import retired
from canary.router import managed
from tests.unit.controller.caches import Cache, caches

UID, OTHER = "uid-web", "uid-other"


def obj(kind: str, name: str, uid: str | None = UID, namespace: str = "shop"
        ) -> dict[str, Any]:
    owners = [{"kind": "Canary", "name": "web", "uid": uid, "controller": True}] if uid else []
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace,
                                       "ownerReferences": owners}}


def names(found: Any) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in found)


def held() -> Any:
    return caches(
        services=Cache(obj("Service", "web"), obj("Service", "web-primary"),
                       obj("Service", "web-canary"), obj("Service", "old-web")),
        virtual_services=Cache(obj("VirtualService", "web"),
                               obj("VirtualService", "api", uid=OTHER),
                               obj("VirtualService", "mine", uid=None)),
        destination_rules=Cache(obj("DestinationRule", "web-primary"),
                                obj("DestinationRule", "web-canary"),
                                obj("DestinationRule", "web-primary", namespace="elsewhere")),
        http_routes=Cache(obj("HTTPRoute", "web")))


def test_from_istio_to_the_gateway_api_the_mesh_objects_are_retired() -> None:
    found = retired(held(), "shop", UID, managed("gatewayapi:v1", "web"))
    assert names(found) == ["DestinationRule/web-canary", "DestinationRule/web-primary",
                            "VirtualService/web"]


def test_what_the_current_provider_manages_stays_even_when_not_written_now() -> None:
    """Istio manages no HTTPRoute, so that goes; a route of the Gateway API's own, not
    written while its spec cannot be built, would stay under gatewayapi:v1 (above)."""
    found = retired(held(), "shop", UID, managed("istio", "web"))
    assert names(found) == ["HTTPRoute/web"]


def test_services_objects_of_other_canaries_of_nobody_and_elsewhere_stay() -> None:
    """Services route nothing by themselves and clients may still call an old name."""
    found = names(retired(held(), "shop", UID, frozenset()))
    assert found == ["DestinationRule/web-canary", "DestinationRule/web-primary",
                     "HTTPRoute/web", "VirtualService/web"]
