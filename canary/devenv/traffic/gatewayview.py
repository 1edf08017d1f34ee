"""The simulator's view of the Gateway API objects it serves, from watches.

GatewayClasses whose ``controllerName`` is the simulator's, their Gateways, and the
HTTPRoutes and GRPCRoutes attached to them, with what attachment and backend checks need
(namespaces' labels, ReferenceGrants, Services). Derived lookups are cached and the caches
dropped on any change.
"""

from __future__ import annotations

from collections.abc import Mapping

from canary.devenv.traffic.attachment import (
    GRPC_ROUTE,
    HTTP_ROUTE,
    Attachment,
    Listener,
    listeners_of,
)
from canary.devenv.traffic.gatewayapi import AttachedRoute, attached_to, attachments
from canary.devenv.traffic.gatewaystatus import CONTROLLER_NAME
from canary.devenv.traffic.references import grants_allow
from canary.kube import JSON, KubeClient, Reflector
from canary.kube import resources as r
from canary.kube.watch import EventHandler

#: A route with how each of its parentRefs naming a served Gateway attaches.
RouteAttachments = tuple[str, JSON, list[Attachment]]


class GatewayApiView:
    """Watch caches of the Gateway API objects and of what routing through them reads."""

    def __init__(self, client: KubeClient, services: Reflector, on_event: EventHandler) -> None:
        def changed(kind: str, obj: JSON) -> None:
            self.clear()
            on_event(kind, obj)

        self.services = services
        self.classes = Reflector(client, r.GATEWAY_CLASSES, on_event=changed)
        self.gateways = Reflector(client, r.API_GATEWAYS, on_event=changed)
        self.http_routes = Reflector(client, r.HTTP_ROUTES, on_event=changed)
        self.grpc_routes = Reflector(client, r.GRPC_ROUTES, on_event=changed)
        self.grants = Reflector(client, r.REFERENCE_GRANTS, on_event=changed)
        self.namespaces = Reflector(client, r.NAMESPACES, on_event=changed)
        self.reflectors = [self.classes, self.gateways, self.http_routes, self.grpc_routes,
                           self.grants, self.namespaces]
        self._served: dict[str, tuple[JSON, list[Listener]]] | None = None
        self._routes: list[RouteAttachments] | None = None
        self._attached: dict[str, list[AttachedRoute]] = {}

    def clear(self) -> None:
        self._served, self._routes = None, None
        self._attached.clear()

    def served_classes(self) -> list[JSON]:
        return [c for c in self.classes.items()
                if (c.get("spec") or {}).get("controllerName") == CONTROLLER_NAME]

    def served(self) -> dict[str, tuple[JSON, list[Listener]]]:
        """Gateways of a served class (``namespace/name`` -> (object, listeners))."""
        if self._served is None:
            names = {str((c.get("metadata") or {}).get("name")) for c in self.served_classes()}
            self._served = {}
            for gateway in self.gateways.items():
                meta = gateway.get("metadata") or {}
                if (gateway.get("spec") or {}).get("gatewayClassName") in names:
                    self._served[f"{meta.get('namespace')}/{meta.get('name')}"] = (
                        gateway, listeners_of(gateway))
        return self._served

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        found = self.namespaces.get("", namespace) or {}
        return dict((found.get("metadata") or {}).get("labels") or {})

    def routes(self) -> list[RouteAttachments]:
        """Every route naming a served Gateway, with its attachments."""
        if self._routes is None:
            gateways = {key: listeners for key, (_, listeners) in self.served().items()}
            self._routes = []
            for kind, reflector in ((HTTP_ROUTE, self.http_routes),
                                    (GRPC_ROUTE, self.grpc_routes)):
                for route in reflector.items():
                    found = attachments(route, kind, gateways, self.namespace_labels)
                    if found:
                        self._routes.append((kind, route, found))
        return self._routes

    def attached(self, gateway: str) -> list[AttachedRoute]:
        if gateway not in self._attached:
            self._attached[gateway] = attached_to(gateway, self.routes())
        return self._attached[gateway]

    def permits(self, kind: str, namespace: str, to_namespace: str, to_name: str) -> bool:
        return grants_allow(self.grants.items(to_namespace), kind, namespace, to_namespace,
                            to_name)

    def service_exists(self, namespace: str, name: str) -> bool:
        return self.services.get(namespace, name) is not None

    def listeners(self, namespace: str, name: str) -> list[Listener] | None:
        """The listeners of a served Gateway; None when it is not one."""
        found = self.served().get(f"{namespace}/{name}")
        return found[1] if found else None
