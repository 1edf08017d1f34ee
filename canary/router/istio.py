"""The objects that route a Canary's traffic on Istio, as server-side apply manifests.

The three Services (:mod:`canary.router.services`; the apex always selects the primary's
pods); DestinationRules for ``<svc>-primary`` and ``<svc>-canary``; and the ``<svc>``
VirtualService that splits traffic between them. Only the fields listed here are owned by
canary's field manager, so fields other managers set on these objects (labels,
annotations, exportTo, ...) are preserved.
"""

from __future__ import annotations

import re

from canary.core.actions import Route
from canary.core.observation import RouteHold
from canary.models.canary import Canary, Provider
from canary.router.port import JSON, Find, Named, Reversion, service_name
from canary.router.services import managed_services, metadata, released_apex, services


def destination_rules(canary: Canary, owner: JSON) -> list[JSON]:
    name = service_name(canary)
    rules = []
    for suffix in ("primary", "canary"):
        spec: JSON = {"host": f"{name}-{suffix}"}
        if canary.spec.service.traffic_policy:
            spec["trafficPolicy"] = canary.spec.service.traffic_policy
        rules.append({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                      "metadata": metadata(canary, owner, f"{name}-{suffix}"), "spec": spec})
    return rules


def virtual_service(canary: Canary, owner: JSON, route: Route) -> JSON:
    """The VirtualService for ``route``: a weighted split between primary and canary,
    preceded for A/B testing by a route sending ``analysis.match`` requests to the canary,
    and with a mirror to the canary when mirroring."""
    name = service_name(canary)
    service = canary.spec.service
    common: JSON = {}
    for field, value in (("retries", service.retries), ("timeout", service.timeout),
                         ("headers", service.headers), ("corsPolicy", service.cors_policy),
                         ("rewrite", service.rewrite)):
        if value:
            common[field] = value

    def split(weight: int) -> list[JSON]:
        return [{"destination": {"host": f"{name}-primary"}, "weight": 100 - weight},
                {"destination": {"host": f"{name}-canary"}, "weight": weight}]

    main: JSON = {"route": split(route.canary_weight), **common}
    if service.match:
        main = {"match": service.match, **main}
    if route.mirror_percent is not None:
        main["mirror"] = {"host": f"{name}-canary"}
        main["mirrorPercentage"] = {"value": route.mirror_percent}
    http = [main]
    if route.sticky_cookie is not None:
        # Session affinity: the canary's answers set a cookie, and requests carrying it
        # go to the canary whatever the weights.
        name_value = route.sticky_cookie
        main["route"][1]["headers"] = {"response": {"add": {
            "Set-Cookie": f"{name_value}; Max-Age={route.sticky_max_age}"}}}
        http.insert(0, {"match": [{"headers": {"cookie": {
            "regex": f"^(.*?;\\s*)?({re.escape(name_value)})(;.*)?$"}}}],
            "route": split(100), **common})
    if route.match_to_canary and canary.spec.analysis.match:
        http.insert(0, {"match": canary.spec.analysis.match, "route": split(100), **common})
    spec: JSON = {"hosts": [name, *(service.hosts or [])], "http": http}
    if service.gateways:
        spec["gateways"] = list(service.gateways)
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": metadata(canary, owner, name), "spec": spec}


class IstioRouter:
    """The traffic port on Istio: Services, DestinationRules and a VirtualService. Istio
    reports no acceptance, so the routing counts as accepted once applied."""

    provider: str = Provider.ISTIO.value
    kinds: tuple[str, ...] = ("Service", "DestinationRule", "VirtualService")

    def manifests(self, canary: Canary, owner: JSON, label: tuple[str, str],
                  route: Route) -> list[JSON]:
        return [*services(canary, owner, label), *destination_rules(canary, owner),
                virtual_service(canary, owner, route)]

    def managed(self, service: str) -> frozenset[Named]:
        return managed_services(service) | {("VirtualService", service),
                                            ("DestinationRule", f"{service}-primary"),
                                            ("DestinationRule", f"{service}-canary")}

    def reversion(self, canary: Canary, label: tuple[str, str]) -> Reversion:
        """The apex Service selects the target's pods and is released; without the
        VirtualService, mesh traffic for the host follows that Service."""
        return Reversion(apply=(released_apex(canary, label),),
                         delete=(("VirtualService", service_name(canary)),))

    def pending(self, canary: Canary, find: Find) -> RouteHold | None:
        return None

