"""Which Canaries a change of a Gateway API route wakes: the user's own route has no
owner reference, so its Canaries are found by their ``spec.service.routeRef``."""

from __future__ import annotations

from typing import Any, cast

from canary.controller.controller import Controller
from canary.kube import KubeClient
from canary.observability import ControllerMetrics
from canary.settings import Settings


def canary(name: str, route_ref: dict[str, str] | None) -> dict[str, Any]:
    service: dict[str, Any] = {"port": 80}
    if route_ref is not None:
        service["routeRef"] = route_ref
    return {"metadata": {"name": name, "namespace": "shop"},
            "spec": {"targetRef": {"name": name}, "service": service}}


def woken_by(route: dict[str, Any]) -> list[str]:
    controller = Controller(cast(KubeClient, object()), Settings(),
                            metrics=ControllerMetrics(process_metrics=False))
    store = controller.caches.canaries
    for obj in (canary("web", {"name": "storefront"}),
                canary("api", {"kind": "GRPCRoute", "name": "storefront"}),
                canary("own", None)):
        store._put(("shop", obj["metadata"]["name"]), obj)
    woken: list[str] = []
    controller._wake = lambda namespace, name: woken.append(name)  # type: ignore[method-assign]
    controller._route_event("MODIFIED", route)
    return woken


def test_a_users_route_wakes_the_canaries_naming_it_by_kind_and_name() -> None:
    assert woken_by({"kind": "HTTPRoute",
                     "metadata": {"name": "storefront", "namespace": "shop"}}) == ["web"]
    assert woken_by({"kind": "GRPCRoute",
                     "metadata": {"name": "storefront", "namespace": "shop"}}) == ["api"]
    assert woken_by({"kind": "HTTPRoute",
                     "metadata": {"name": "storefront", "namespace": "other"}}) == []
