"""revertOnDeletion: when such a Canary is deleted, traffic goes back to the target.

A finalizer holds the deletion until the target runs as many replicas as the primary and
is Ready, and the Canary's router has given the traffic back (on Istio: the apex Service
selects the target's pods and is released from the Canary so garbage collection keeps
it, and the VirtualService is deleted, so mesh traffic follows the apex Service; on the
Gateway API, canary's own route is deleted, or the rules of the user's route (routeRef)
send the apex Service's traffic to ``<svc>`` again). Then
the finalizer is removed and garbage collection deletes the primary and the other
generated objects. A Canary whose provider canary cannot route with wrote nothing: its
finalizer is simply removed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog
from structlog.typing import FilteringBoundLogger

from canary.controller.claims import controller_of
from canary.controller.executor import Applied
from canary.controller.user_route import release
from canary.kube import JSON, NotFound, Reflector
from canary.kube import resources as r
from canary.kube.resources import Resource
from canary.models.canary import Canary
from canary.router import Reversion, Router, UnsupportedProvider, provider_of, router_for
from canary.targets.deployment import primary_name, rollout_state, selector_label

FINALIZER = "canary.dev/finalizer"
log = structlog.get_logger("canary.controller")


class FinalizerApi(Protocol):
    """The API calls of the finalizer: read and scale the target, delete the routing,
    add or remove the finalizer."""

    async def get(self, resource: Resource, name: str, namespace: str | None = None
                  ) -> JSON: ...

    async def merge_patch(self, resource: Resource, name: str, patch: JSON,
                          namespace: str | None = None,
                          subresource: str | None = None) -> JSON: ...

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     propagation: str = "Background") -> JSON: ...

    async def json_patch(self, resource: Resource, name: str, operations: Sequence[JSON],
                         namespace: str | None = None,
                         subresource: str | None = None) -> JSON: ...


class Applier(Protocol):
    """Server-side applies one generated object (the executor)."""

    async def apply(self, manifest: JSON, cache: Reflector) -> Applied: ...


class EventSink(Protocol):
    """Records a Kubernetes Event about an object (the event recorder)."""

    async def record(self, regarding: JSON, type_: str, reason: str, note: str,
                     action: str | None = None) -> None: ...


class Finalizer:
    def __init__(self, client: FinalizerApi, executor: Applier, events: EventSink, *,
                 generated: Callable[[str], Reflector], selector_labels: Sequence[str],
                 mesh_provider: str) -> None:
        self.client = client
        self.executor = executor
        self.events = events
        #: The cache of each kind canary generates (by kind), where the routing objects are.
        self.generated = generated
        self.selector_labels = selector_labels
        #: The provider of a Canary without ``spec.provider``.
        self.mesh_provider = mesh_provider

    async def ensure(self, obj: JSON) -> JSON:
        """Add the finalizer (guarded by resourceVersion) if it is missing."""
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER in finalizers:
            return obj
        operations: list[JSON] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}]
        if finalizers:
            operations.append({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER})
        else:
            operations.append({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})
        return await self.client.json_patch(r.CANARIES, meta["name"], operations,
                                            meta["namespace"])

    async def _fresh(self, namespace: str, name: str) -> JSON | None:
        try:
            return await self.client.get(r.DEPLOYMENTS, name, namespace)
        except NotFound:
            return None

    def _router(self, canary: Canary) -> Router | None:
        """The Canary's router; None for a provider canary does not route with."""
        try:
            return router_for(provider_of(canary, self.mesh_provider))
        except UnsupportedProvider:
            return None

    async def _revert(self, canary: Canary, reversion: Reversion) -> None:
        """Apply the released objects, give the user's own route (``routeRef``) back to
        the apex Service, then delete canary's routes, so that the traffic follows the
        Services that now select the target."""
        for manifest in reversion.apply:
            await self.executor.apply(manifest, self.generated(manifest["kind"]))
        await release(self.client, canary, self.mesh_provider)
        for kind, name in reversion.delete:
            with contextlib.suppress(NotFound):
                await self.client.delete(self.generated(kind).resource, name,
                                         canary.namespace)

    async def finalize(self, obj: JSON, logger: FilteringBoundLogger) -> float | None:
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            return None
        canary = Canary.model_validate(obj)
        client = self.client
        target_name = canary.spec.target_ref.name
        # Read from the API, not the caches: this reconcile may follow our own scale-down
        # of the target so closely that the watch has not delivered it yet. Deletion is
        # rare enough for the two GETs.
        target = await self._fresh(canary.namespace, target_name)
        primary = await self._fresh(canary.namespace, primary_name(target_name))
        owner = controller_of(primary)
        if owner is not None and owner.get("uid") != meta.get("uid"):
            # Another Canary's primary (this one was kept from it by a conflict): its
            # traffic is not this Canary's to revert.
            target = None
        router = self._router(canary)
        if router is None:
            target = None  # nothing was routed, so nothing to revert
        if target is not None and router is not None:
            replicas = int(((primary or target).get("spec") or {}).get("replicas", 1)) or 1
            if int((target.get("spec") or {}).get("replicas", 1)) != replicas:
                await client.merge_patch(r.DEPLOYMENTS, target_name,
                                         {"spec": {"replicas": replicas}}, canary.namespace)
                return 1.0
            state = rollout_state(target, None)
            if not state.ready:
                logger.info("waiting for the target before reverting", detail=state.detail)
                return 1.0
            await self._revert(canary, router.reversion(
                canary, selector_label(target, self.selector_labels)))
            await self.events.record(
                obj, "Normal", "Reverted", f"Canary deleted: traffic goes to {target_name}, "
                f"which runs {replicas} replicas; generated objects are being removed")
        remaining = [f for f in finalizers if f != FINALIZER]
        with contextlib.suppress(NotFound):
            await client.json_patch(r.CANARIES, meta["name"], [
                {"op": "test", "path": "/metadata/resourceVersion",
                 "value": meta["resourceVersion"]},
                {"op": "replace", "path": "/metadata/finalizers", "value": remaining}],
                meta["namespace"])
        return None
