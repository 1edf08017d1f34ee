"""The simulator as the Gateway API controller of its GatewayClasses: it writes the status
of what it serves (see :mod:`.gatewaystatus`) through the Kubernetes API.

After any change the cluster view sees, every served object's status is computed again,
and written (a merge patch of the ``status`` subresource, guarded by the object's
``resourceVersion``) only when it differs from the one the object has, so its own writes
settle. A refused write (a conflict, an object gone) is retried on the next change, or a
second later.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from canary.devenv.traffic import gatewaystatus
from canary.devenv.traffic.attachment import GRPC_ROUTE, HTTP_ROUTE
from canary.devenv.traffic.gatewaystatus import CONTROLLER_NAME
from canary.devenv.traffic.gatewayview import GatewayApiView, RouteAttachments
from canary.kube import JSON, KubeClient, KubeError
from canary.kube import resources as r

log = structlog.get_logger("canary.devenv.traffic")

#: Seconds to let a burst of changes settle before statuses are computed.
SETTLE_SECONDS = 0.2
#: Seconds before a refused write is tried again without a new change.
RETRY_SECONDS = 1.0


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attached_counts(routes: list[RouteAttachments]) -> dict[str, dict[str, int]]:
    """Per Gateway (``namespace/name``), per listener name, the routes it took."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, _, found in routes:
        taken = {(a.gateway, listener.name) for a in found for listener in a.listeners}
        for gateway, listener in taken:
            counts[gateway][listener] += 1
    return counts


def differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    return any(current.get(key) != value for key, value in desired.items())


class GatewayStatusWriter:
    """Keeps the status of the served GatewayClasses, Gateways and routes current."""

    def __init__(self, client: KubeClient, view: GatewayApiView, synced: Callable[[], bool],
                 clock: Callable[[], str] = timestamp) -> None:
        self.client, self.view, self.synced, self.clock = client, view, synced, clock
        self._changed = asyncio.Event()
        self._changed.set()

    def changed(self) -> None:
        self._changed.set()

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            await asyncio.sleep(SETTLE_SECONDS)
            self._changed.clear()
            if not self.synced():
                self._changed.set()
                continue
            try:
                await self.reconcile()
            except KubeError as exc:
                log.info("gateway status write refused; retrying", error=str(exc))
                await asyncio.sleep(RETRY_SECONDS)
                self._changed.set()

    async def reconcile(self) -> None:
        """Write every served object's status that is not what it should be."""
        now = self.clock()
        for gateway_class in self.view.served_classes():
            await self._write(r.GATEWAY_CLASSES, gateway_class,
                              gatewaystatus.gateway_class_status(gateway_class, now))
        routes = self.view.routes()
        counts = attached_counts(routes)
        for key, (gateway, listeners) in self.view.served().items():
            await self._write(r.API_GATEWAYS, gateway, gatewaystatus.gateway_status(
                gateway, listeners, counts.get(key, {}), now))
        for kind, route, found in self._every_route(routes):
            resolved = gatewaystatus.resolved_refs(route, kind, self.view.permits,
                                                   self.view.service_exists)
            parents = gatewaystatus.route_parents(route, found, resolved, now)
            resource = r.HTTP_ROUTES if kind == HTTP_ROUTE else r.GRPC_ROUTES
            await self._write(resource, route, {"parents": parents})

    def _every_route(self, attached: list[RouteAttachments]) -> list[RouteAttachments]:
        """The attached routes, and those that no longer attach but still carry this
        controller's entries (which must go)."""
        keys = {(kind, id(route)) for kind, route, _ in attached}
        stale: list[RouteAttachments] = []
        for kind, reflector in ((HTTP_ROUTE, self.view.http_routes),
                                (GRPC_ROUTE, self.view.grpc_routes)):
            for route in reflector.items():
                parents = (route.get("status") or {}).get("parents") or []
                if (kind, id(route)) not in keys and any(
                        p.get("controllerName") == CONTROLLER_NAME for p in parents):
                    stale.append((kind, route, []))
        return attached + stale

    async def _write(self, resource: r.Resource, obj: JSON, desired: JSON) -> None:
        if not differs(obj.get("status") or {}, desired):
            return
        meta = obj.get("metadata") or {}
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                 "status": desired}
        namespace = meta.get("namespace") if resource.namespaced else None
        await self.client.merge_patch(resource, str(meta.get("name")), patch, namespace,
                                      subresource="status")
        log.info("gateway api status written", kind=resource.kind,
                 name=f"{namespace}/{meta.get('name')}" if namespace else meta.get("name"))
