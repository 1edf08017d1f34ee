"""The traffic port and the choice of its implementation by ``spec.provider``.

The controller sees routing only as a :class:`~canary.router.port.Router`, obtained here;
only this module names the implementations.
"""

from __future__ import annotations

from canary.errors import CanaryError
from canary.models.canary import Canary, Provider
from canary.router.gatewayapi.adopted import adopted_rules, released_rules, rules_patch, undefaulted
from canary.router.gatewayapi.matches import UnsupportedRoute
from canary.router.gatewayapi.router import GatewayApiRouter
from canary.router.istio import IstioRouter
from canary.router.kubernetes import KubernetesRouter, refused
from canary.router.port import Named, Reversion, Router, service_name

__all__ = ["ROUTERS", "Named", "Reversion", "Router", "UnsupportedProvider", "UnsupportedRoute",
           "adopted_rules", "managed", "problem", "provider_of", "released_rules",
           "routed_kinds", "router_for", "rules_patch", "service_name", "supported",
           "undefaulted", "unsupported", "users_route"]

#: The implemented routers by provider: every ``--mesh-provider`` and ``spec.provider``
#: this controller routes with.
ROUTERS: dict[str, Router] = {router.provider: router
                              for router in (IstioRouter(), KubernetesRouter(),
                                             GatewayApiRouter())}


class UnsupportedProvider(CanaryError):
    """A provider the CRD accepts but this controller does not route with."""


def supported() -> tuple[str, ...]:
    """The providers this controller routes with, in a stable order."""
    return tuple(provider.value for provider in Provider if provider.value in ROUTERS)


def provider_of(canary: Canary, default: str) -> str:
    """The Canary's ``spec.provider``, else the controller's ``default``."""
    return canary.spec.provider.value if canary.spec.provider is not None else default


def unsupported(provider: str) -> str | None:
    """Why a Canary routed by ``provider`` cannot be delivered, naming the field; None
    when this controller implements it."""
    if provider in ROUTERS:
        return None
    return (f"spec.provider {provider} is not supported by this controller, which routes "
            f"with {', '.join(supported())}: set spec.provider to one of them (or leave "
            "it out for the controller's --mesh-provider)")


def problem(canary: Canary, default: str) -> str | None:
    """Why this controller cannot route ``canary`` (its provider, else ``default``): the
    provider is not implemented, or it cannot route what the analysis asks for; None when
    it can."""
    provider = provider_of(canary, default)
    if provider == Provider.KUBERNETES.value:
        return refused(canary)
    return unsupported(provider)


def router_for(provider: str) -> Router:
    """The router of ``provider`` (:class:`UnsupportedProvider` when not implemented)."""
    try:
        return ROUTERS[provider]
    except KeyError:
        raise UnsupportedProvider(unsupported(provider) or provider) from None


def managed(provider: str, service: str) -> frozenset[Named]:
    """The routing objects a Canary routed by ``provider`` with apex Service ``service``
    manages; none when ``provider`` is not implemented (nothing is written then)."""
    router = ROUTERS.get(provider)
    return router.managed(service) if router is not None else frozenset()


def routed_kinds() -> tuple[str, ...]:
    """Every kind some router writes, once each, for the watches that wake Canaries."""
    return tuple(dict.fromkeys(kind for router in ROUTERS.values() for kind in router.kinds))


def users_route(canary: Canary, default: str) -> Named | None:
    """(kind, name) of the user's own route that the Canary's routing edits in place
    (``spec.service.routeRef`` on the Gateway API; see ``adopted_rules``); None when its
    router writes every routing object itself."""
    ref = canary.spec.service.route_ref
    if ref is None or provider_of(canary, default) != Provider.GATEWAY_API.value:
        return None
    return ref.kind, ref.name
