"""The traffic port on the Gateway API (``spec.provider: gatewayapi:v1``): the three
Services and canary's own ``<svc>`` HTTPRoute, or GRPCRoute for ``appProtocol: grpc``.

Unlike Istio, a Gateway says whether it took a route (``status.parents``), so the
routing is pending until every parent accepted the route's current generation: until
then the weights canary wrote are not the weights traffic follows.
"""

from __future__ import annotations

from canary.core.actions import Route
from canary.models.canary import Canary, Provider
from canary.router.gatewayapi.matches import UnsupportedRoute
from canary.router.gatewayapi.routes import route as own_route
from canary.router.gatewayapi.status import acceptance
from canary.router.port import JSON, Find, Named, Reversion, service_name
from canary.router.services import released_apex, services

#: An owner for building a route only to see whether it can be built.
_PROBE_OWNER: JSON = {"metadata": {"name": "probe", "uid": "probe"}}


def route_kind(canary: Canary) -> str:
    """The kind of canary's own route: a GRPCRoute for ``appProtocol: grpc``."""
    return "GRPCRoute" if (canary.spec.service.app_protocol or "").lower() == "grpc" \
        else "HTTPRoute"


def refusal(canary: Canary) -> str | None:
    """Why canary cannot build the Canary's route (naming the field); None when it can."""
    if canary.spec.service.route_ref is not None:
        return ("spec.service.routeRef: this controller does not edit a route of yours "
                "yet; remove routeRef and set gatewayRefs, and canary creates the route "
                f"{service_name(canary)}")
    try:
        own_route(canary, _PROBE_OWNER, Route(0, match_to_canary=True))
    except UnsupportedRoute as exc:
        return str(exc)
    return None


class GatewayApiRouter:
    """The traffic port on the Gateway API, for the routes canary creates."""

    provider: str = Provider.GATEWAY_API.value
    kinds: tuple[str, ...] = ("Service", "HTTPRoute", "GRPCRoute")

    def manifests(self, canary: Canary, owner: JSON, label: tuple[str, str],
                  route: Route) -> list[JSON]:
        """The Services, then the route; the Services alone while the route cannot be
        built (:meth:`pending` says why, and the rollout waits)."""
        objects = services(canary, owner, label)
        if refusal(canary) is None:
            objects.append(own_route(canary, owner, route))
        return objects

    def managed(self, service: str) -> frozenset[Named]:
        return frozenset({("Service", service), ("Service", f"{service}-primary"),
                          ("Service", f"{service}-canary"), ("HTTPRoute", service),
                          ("GRPCRoute", service)})

    def reversion(self, canary: Canary, label: tuple[str, str]) -> Reversion:
        """The apex Service selects the target's pods and is released; the route goes,
        so the Gateway no longer sends the Canary's traffic to the primary or canary."""
        return Reversion(apply=(released_apex(canary, label),),
                         delete=((route_kind(canary), service_name(canary)),))

    def pending(self, canary: Canary, find: Find) -> str | None:
        """Why the route is not in force: it cannot be built, is not written yet, or a
        parent has not accepted its current generation (in the parent's words)."""
        if (refused := refusal(canary)) is not None:
            return refused
        kind, name = route_kind(canary), service_name(canary)
        cached = find(kind, name)
        if cached is None:
            return f"{kind} {canary.namespace}/{name} is not created yet"
        verdict = acceptance(cached)
        if verdict.state == "Accepted":
            return None
        return f"{kind} {canary.namespace}/{name}: {verdict.message}"
