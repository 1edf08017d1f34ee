"""The traffic port on the Gateway API (``spec.provider: gatewayapi:v1``): the three
Services and canary's own ``<svc>`` HTTPRoute, or GRPCRoute for ``appProtocol: grpc``;
or, with ``spec.service.routeRef``, the three Services and the user's own route, whose
rules the controller edits in place (:mod:`canary.router.gatewayapi.adopted`).

Unlike Istio, a Gateway says whether it took a route (``status.parents``), so the
routing is pending until every parent accepted the route's current generation: until
then the weights canary wrote are not the weights traffic follows.
"""

from __future__ import annotations

from canary.core.actions import Route
from canary.core.observation import RouteHold
from canary.models.canary import Canary, Provider
from canary.router.gatewayapi.adopted import adopted_rules
from canary.router.gatewayapi.matches import UnsupportedRoute
from canary.router.gatewayapi.routes import route as own_route
from canary.router.gatewayapi.status import acceptance
from canary.router.port import JSON, Find, Named, Reversion, service_name
from canary.router.services import released_apex, services

#: An owner for building a route only to see whether it can be built.
_PROBE_OWNER: JSON = {"metadata": {"name": "probe", "uid": "probe"}}
#: A route state using every rule canary may add, to see whether it can be built.
_PROBE_ROUTE = Route(0, match_to_canary=True)


def route_kind(canary: Canary) -> str:
    """The kind of the Canary's route: the user's (``routeRef``), else a GRPCRoute for
    ``appProtocol: grpc``, else an HTTPRoute."""
    if (ref := canary.spec.service.route_ref) is not None:
        return ref.kind
    return "GRPCRoute" if (canary.spec.service.app_protocol or "").lower() == "grpc" \
        else "HTTPRoute"


def route_name(canary: Canary) -> str:
    """The name of the Canary's route: the user's, else ``<svc>``."""
    ref = canary.spec.service.route_ref
    return ref.name if ref is not None else service_name(canary)


def refusal(canary: Canary) -> str | None:
    """Why canary cannot build the Canary's own route (naming the field); None when it
    can, or when the Canary routes through the user's route."""
    if canary.spec.service.route_ref is not None:
        return None
    try:
        own_route(canary, _PROBE_OWNER, _PROBE_ROUTE)
    except UnsupportedRoute as exc:
        return str(exc)
    return None


def _users_refusal(canary: Canary, user_route: JSON) -> str | None:
    """Why canary cannot route through the user's route as it is (naming the field)."""
    try:
        adopted_rules(canary, _PROBE_ROUTE, user_route)
    except UnsupportedRoute as exc:
        return str(exc)
    return None


class GatewayApiRouter:
    """The traffic port on the Gateway API, for canary's own routes and the users'."""

    provider: str = Provider.GATEWAY_API.value
    kinds: tuple[str, ...] = ("Service", "HTTPRoute", "GRPCRoute")

    def manifests(self, canary: Canary, owner: JSON, label: tuple[str, str],
                  route: Route) -> list[JSON]:
        """The Services, then canary's own route; the Services alone while the route
        cannot be built (:meth:`pending` says why, and the rollout waits) or when the
        user's route is edited instead (by the controller: it is read, not applied)."""
        objects = services(canary, owner, label)
        if canary.spec.service.route_ref is None and refusal(canary) is None:
            objects.append(own_route(canary, owner, route))
        return objects

    def managed(self, service: str) -> frozenset[Named]:
        return frozenset({("Service", service), ("Service", f"{service}-primary"),
                          ("Service", f"{service}-canary"), ("HTTPRoute", service),
                          ("GRPCRoute", service)})

    def reversion(self, canary: Canary, label: tuple[str, str]) -> Reversion:
        """The apex Service selects the target's pods and is released; canary's own route
        goes, so the Gateway no longer sends the Canary's traffic to the primary or
        canary. The user's route is never deleted: the controller gives its rules back
        to the apex Service."""
        delete: tuple[Named, ...] = () if canary.spec.service.route_ref is not None \
            else ((route_kind(canary), service_name(canary)),)
        return Reversion(apply=(released_apex(canary, label),), delete=delete)

    def pending(self, canary: Canary, find: Find) -> RouteHold | None:
        """Why the route is not in force. Refused: it cannot be built, the user's is
        missing or unusable, or a parent said no (in the parent's words). Not reported
        on yet: canary's own is not written yet, or a parent has not reported on its
        current generation."""
        if (refused := refusal(canary)) is not None:
            return RouteHold(refused, refused=True)
        kind, name = route_kind(canary), route_name(canary)
        cached = find(kind, name)
        if cached is None:
            if canary.spec.service.route_ref is not None:
                return RouteHold(f"spec.service.routeRef: {kind} {canary.namespace}/{name} "
                                 "not found", refused=True)
            return RouteHold(f"{kind} {canary.namespace}/{name} is not created yet",
                             refused=False)
        if canary.spec.service.route_ref is not None and \
                (refused := _users_refusal(canary, cached)) is not None:
            return RouteHold(refused, refused=True)
        verdict = acceptance(cached)
        if verdict.state == "Accepted":
            return None
        return RouteHold(f"{kind} {canary.namespace}/{name}: {verdict.message}",
                         refused=verdict.state == "Refused")
