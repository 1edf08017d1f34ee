"""Carrying out the decision's actions through the workload and traffic ports.

Every write is skipped when the cache already shows the desired state: an applied object
carries the hash of what was applied in ``canary.dev/applied`` and must still contain
every field applied (so an edit by someone else is put right), and a scale is compared
with the cached replicas. Re-running a decision, as after a restart, costs no writes when
nothing needs to change.

What someone else changed or deleted and canary put back is returned as repairs, for the
worker to report; an object another Canary controls is never written.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from enum import Enum
from typing import Any

import structlog

from canary.controller.caches import Caches
from canary.controller.contained import contains, holds
from canary.controller.retirement import retired
from canary.controller.user_route import UserRoutes
from canary.core import Action, EnsurePrimary, Route, ScaleCanary
from canary.core.actions import CallHooks, EnsureAutoscaler, ForgetRequest
from canary.core.observation import HookResult
from canary.core.revision import canonical
from canary.errors import CanaryError
from canary.kube import JSON, Invalid, KubeClient, NotFound, Reflector
from canary.kube import resources as r
from canary.kube.trim import metadata_only
from canary.models.annotations import ABORT_ANNOTATION, APPROVE_ANNOTATION, PROMOTE_ANNOTATION
from canary.models.canary import Canary
from canary.router import Named, provider_of, router_for, service_name, users_route
from canary.settings import Settings
from canary.targets import configs
from canary.targets.deployment import (
    MANAGED_BY,
    REVISION_ANNOTATION,
    owner_reference,
    primary_manifest,
    primary_name,
    recorded_replicas,
    revision_of,
    selector_label,
    selector_label_from_primary,
)

APPLIED_ANNOTATION = "canary.dev/applied"
log = structlog.get_logger("canary.controller")


class OwnedElsewhere(CanaryError):
    """The object canary would write is controlled by another Canary: it is left alone."""


class Applied(Enum):
    """What an apply did."""

    UNCHANGED = "unchanged"
    CREATED = "created"
    UPDATED = "updated"
    #: Canary's last apply was changed or deleted by someone else and is put back.
    RESTORED = "restored"


def fingerprint(manifest: JSON) -> str:
    return hashlib.sha256(canonical(manifest)).hexdigest()[:16]


def differences(actual: Any, desired: Any, path: str = "") -> Iterator[str]:
    """The fields of ``desired`` that ``actual`` lacks or holds otherwise, as
    ``path: actual value`` (the paths :func:`contains` fails on)."""
    if isinstance(desired, dict) and isinstance(actual, dict):
        for key, value in desired.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                yield f"{where} removed"
            else:
                yield from differences(actual[key], value, where)
    elif isinstance(desired, list) and isinstance(actual, list) and len(actual) == len(desired):
        for index, (a, d) in enumerate(zip(actual, desired, strict=True)):
            yield from differences(a, d, f"{path}[{index}]")
    elif not contains(actual, desired):
        yield f"{path} was {_short(actual)}, canary's is {_short(desired)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _controller_uid(obj: JSON) -> str | None:
    for owner in obj["metadata"].get("ownerReferences") or []:
        if owner.get("controller") and owner.get("kind") == "Canary":
            return str(owner.get("uid"))
    return None


class WriteLog:
    """Says at info what canary's writes changed, once per change. The watch cache may
    still show an object as it was before canary's previous write, and then the same
    write is sent again; the server answers it with the resourceVersion it already had,
    which is either the cached one or the one that previous write returned."""

    #: Objects whose last written resourceVersion is remembered (the oldest forgotten).
    SIZE = 4096

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str, str], str] = {}

    def wrote(self, kind: str, before: JSON | None, after: JSON, event: str,
              **details: str) -> bool:
        """Log ``event`` unless writing ``before`` (the cached object, None when there
        was none) gave back an object the server already had; whether it was new."""
        meta = after.get("metadata") or {}
        key = (kind, str(meta.get("namespace")), str(meta.get("name")))
        version = meta.get("resourceVersion")
        known = {self._versions.pop(key, None),
                 ((before or {}).get("metadata") or {}).get("resourceVersion")}
        if version is not None:
            self._versions[key] = str(version)
            if len(self._versions) > self.SIZE:
                del self._versions[next(iter(self._versions))]
        if version is not None and version in known:
            return False
        log.info(event, kind=kind, object=f"{key[1]}/{key[2]}", **details)
        return True


class Executor:
    def __init__(self, client: KubeClient, settings: Settings, caches: Caches,
                 call_hooks: Callable[[Canary, str], Awaitable[tuple[HookResult, ...]]]
                 ) -> None:
        self.client = client
        self.settings = settings
        self.caches = caches
        self.call_hooks = call_hooks
        self.writes = WriteLog()
        self.user_routes = UserRoutes(client, caches.generated_lookup, settings.mesh_provider)

    async def apply(self, manifest: JSON, cache: Reflector) -> Applied:
        """Server-side apply ``manifest`` unless the cached object is already it; never
        onto an object another Canary controls (:class:`OwnedElsewhere`). A manifest
        without a controller (the finalizer releasing the apex Service) claims nothing."""
        desired = copy.deepcopy(manifest)
        stamp = fingerprint(desired)
        desired["metadata"].setdefault("annotations", {})[APPLIED_ANNOTATION] = stamp
        meta = desired["metadata"]
        # A config listed as metadata only: whether it holds what canary writes is in
        # the content the cache lacks.
        cached = await cache.complete(meta["namespace"], meta["name"], lacks=metadata_only)
        if cached is not None and holds(cached, desired):
            return Applied.UNCHANGED
        theirs, mine = _controller_uid(cached or {"metadata": {}}), _controller_uid(desired)
        if theirs is not None and mine is not None and theirs != mine:
            raise OwnedElsewhere(f"{desired['kind']} {meta['namespace']}/{meta['name']} is "
                                 "controlled by another Canary; canary leaves it alone")
        written = await self.client.apply(desired, field_manager=self.settings.kube.field_manager)
        cache.learn(written)  # a config's watch sends metadata only: no GET to check it
        if not self.writes.wrote(desired["kind"], cached, written,
                                 "created" if cached is None else "changed"):
            # The server already held it as canary last wrote it: the watch has not yet
            # brought that write, and nothing was missing or changed by someone else.
            return Applied.UNCHANGED
        if cached is None:
            return Applied.CREATED
        previous = (cached["metadata"].get("annotations") or {}).get(APPLIED_ANNOTATION)
        return Applied.RESTORED if previous == stamp else Applied.UPDATED

    async def _repairing(self, manifest: JSON, cache: Reflector, established: bool
                         ) -> list[str]:
        """Apply ``manifest``; what that put back after someone else, as one line."""
        meta = manifest["metadata"]
        cached = cache.get(meta["namespace"], meta["name"])
        outcome = await self.apply(manifest, cache)
        what = f"{manifest['kind']} {meta['name']}"
        if outcome is Applied.RESTORED and cached is not None:
            changed = list(differences(cached, manifest))[:3] or ["its fields"]
            return [f"{what} was changed outside canary ({'; '.join(changed)}): put back"]
        if outcome is Applied.CREATED and established:
            return [f"{what} was missing: created again"]
        return []

    async def execute(self, owner: JSON, canary: Canary, actions: tuple[Action, ...],
                      established: bool = False) -> list[str]:
        """Carry out ``actions`` in order; the repairs made on the way, one line each.
        ``established``: the Canary's objects should exist already, so a missing one was
        deleted by someone (or never written, after a crash between status and actions)."""
        repairs: list[str] = []
        for action in actions:
            if isinstance(action, EnsurePrimary):
                repairs += await self._ensure_primary(owner, canary, action.revision,
                                                      established)
            elif isinstance(action, ScaleCanary):
                await self._scale_canary(canary, action.replicas)
            elif isinstance(action, Route):
                repairs += await self._route(owner, canary, action, established)
            elif isinstance(action, EnsureAutoscaler):
                await self._ensure_autoscaler(owner, canary)
            elif isinstance(action, ForgetRequest):
                await self._forget_request(canary, action)
            elif isinstance(action, CallHooks):
                for result in await self.call_hooks(canary, action.type):
                    (log.info if result.passed else log.warning)(
                        "webhook called", hook=result.name, type=result.type,
                        passed=result.passed, detail=result.message,
                        canary=f"{canary.namespace}/{canary.name}")
        return repairs

    async def _forget_request(self, canary: Canary, action: ForgetRequest) -> None:
        """Remove the request's annotation, unless it names another revision by now (a
        newer request is left for the decision that will serve it)."""
        key = {"approve": APPROVE_ANNOTATION, "promote": PROMOTE_ANNOTATION,
               "abort": ABORT_ANNOTATION}[action.request]
        pointer = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
        try:
            await self.client.json_patch(r.CANARIES, canary.name, [
                {"op": "test", "path": pointer, "value": action.revision},
                {"op": "remove", "path": pointer}], canary.namespace)
        except (Invalid, NotFound):
            log.debug("request already gone or replaced", annotation=key,
                      canary=f"{canary.namespace}/{canary.name}")

    async def _deployment(self, namespace: str, name: str) -> JSON | None:
        """A cached Deployment, whole (see ``Caches.whole_deployment``)."""
        return await self.caches.whole_deployment(namespace, name)

    async def _ensure_primary(self, owner: JSON, canary: Canary, revision: str,
                              established: bool) -> list[str]:
        """The primary runs ``revision`` with the replicas canary gave it. The template
        comes from the target, so only while the target has ``revision``; otherwise a
        primary already running it still gets its replicas back."""
        name = canary.spec.target_ref.name
        target = await self.caches.whole_deployment(canary.namespace, name)
        primary = await self._deployment(canary.namespace, primary_name(name))
        replicas = self._primary_replicas(canary, primary, target)
        if target is None:
            return await self._restore_replicas(canary, primary, revision, replicas)
        lookup = await self.caches.config_contents(canary.namespace,
                                                   target["spec"]["template"])
        if revision_of(target, lookup) != revision:
            return await self._restore_replicas(canary, primary, revision, replicas)
        # The configs first, so the primary's new pods find them.
        for config in configs.primary_copies(target["spec"]["template"], lookup):
            config["metadata"] |= {"labels": dict(MANAGED_BY),
                                   "ownerReferences": [owner_reference(owner)]}
            await self.apply(config, self.caches.config(config["kind"]))
        manifest = primary_manifest(target, owner, revision, replicas,
                                    self.settings.workloads.selector_labels, lookup,
                                    autoscaled=canary.spec.autoscaler_ref is not None)
        return await self._repairing(manifest, self.caches.deployments, established)

    @staticmethod
    def _primary_replicas(canary: Canary, primary: JSON | None, target: JSON | None) -> int:
        """The autoscaler's count when one sizes the primary; else the count canary gave
        it (put back when scaled by hand); for a new primary, the target's."""
        current = int((primary.get("spec") or {}).get("replicas", 1)) \
            if primary is not None else None
        if canary.spec.autoscaler_ref is not None and current is not None:
            return current
        recorded = recorded_replicas(primary)
        if recorded:
            return recorded
        if current:
            return current
        return max(int(((target or {}).get("spec") or {}).get("replicas", 1)), 1)

    async def _restore_replicas(self, canary: Canary, primary: JSON | None, revision: str,
                                replicas: int) -> list[str]:
        if primary is None or canary.spec.autoscaler_ref is not None or \
                revision_of_primary(primary) != revision:
            return []
        current = int((primary.get("spec") or {}).get("replicas", 1))
        if current == replicas:
            return []
        name = primary["metadata"]["name"]
        await self.client.merge_patch(r.DEPLOYMENTS, name, {"spec": {"replicas": replicas}},
                                      canary.namespace,
                                      field_manager=self.settings.kube.field_manager)
        return [f"Deployment {name} was scaled to {current} outside canary: "
                f"{replicas} replicas put back"]

    async def _scale_canary(self, canary: Canary, replicas: int | None) -> None:
        name = canary.spec.target_ref.name
        target = await self._deployment(canary.namespace, name)
        if target is None:
            return
        current = int((target.get("spec") or {}).get("replicas", 1))
        if replicas is None:
            if canary.spec.autoscaler_ref is not None and current > 0:
                return  # the user's autoscaler sizes the running canary
            primary = await self._deployment(canary.namespace, primary_name(name))
            replicas = int((primary or {}).get("spec", {}).get("replicas", 1)) or 1
        if int((target.get("spec") or {}).get("replicas", 1)) == replicas:
            return
        # Under canary's field manager, so that another manager setting the replicas
        # back shows as such in managedFields (controller/field_owners.py).
        scaled = await self.client.merge_patch(r.DEPLOYMENTS, name,
                                               {"spec": {"replicas": replicas}},
                                               canary.namespace,
                                               field_manager=self.settings.kube.field_manager)
        self.writes.wrote("Deployment", target, scaled, "scaled",
                          replicas=f"{current} -> {replicas}")

    async def _ensure_autoscaler(self, owner: JSON, canary: Canary) -> None:
        ref = canary.spec.autoscaler_ref
        assert ref is not None
        original = self.caches.autoscalers.get(canary.namespace, ref.name)
        if original is None:
            log.warning("autoscalerRef names a missing HorizontalPodAutoscaler",
                        autoscaler=ref.name, canary=f"{canary.namespace}/{canary.name}")
            return
        spec = copy.deepcopy(original["spec"])
        spec["scaleTargetRef"] = {"apiVersion": "apps/v1", "kind": "Deployment",
                                  "name": primary_name(canary.spec.target_ref.name)}
        await self.apply({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": primary_name(ref.name), "namespace": canary.namespace,
                         "labels": dict(MANAGED_BY),
                         "ownerReferences": [owner_reference(owner)]},
            "spec": spec}, self.caches.autoscalers)

    async def _route(self, owner: JSON, canary: Canary, route: Route,
                     established: bool) -> list[str]:
        label = await self._selector_label(canary)
        if label is None:
            return []
        router = router_for(provider_of(canary, self.settings.mesh_provider))
        repairs = []
        for manifest in router.manifests(canary, owner, label, route):
            repairs += await self._repairing(manifest, self.caches.generated(manifest["kind"]),
                                             established)
        if (named := users_route(canary, self.settings.mesh_provider)) is not None:
            before = self.caches.generated(named[0]).get(canary.namespace, named[1])
            written = await self.user_routes.route(canary, route)
            if written is not None:
                self.writes.wrote(named[0], before, written, "changed",
                                  weight=str(route.canary_weight))
        await self._retire(canary, str(owner["metadata"]["uid"]),
                           router.managed(service_name(canary)))
        return repairs

    async def _selector_label(self, canary: Canary) -> tuple[str, str] | None:
        """The label selecting the target's pods, from the target, or from its primary
        once the target is deleted (the route must then send everything to the
        primary); None without either."""
        keys = self.settings.workloads.selector_labels
        name = canary.spec.target_ref.name
        target = await self._deployment(canary.namespace, name)
        if target is not None:
            return selector_label(target, keys)
        primary = await self._deployment(canary.namespace, primary_name(name))
        return selector_label_from_primary(primary, keys) if primary is not None else None

    async def _retire(self, canary: Canary, uid: str, managed: frozenset[Named]) -> None:
        """Delete the routing objects the Canary no longer routes with (see
        :mod:`canary.controller.retirement`)."""
        for obj in list(retired(self.caches, canary.namespace, uid, managed)):
            kind, name = obj["kind"], obj["metadata"]["name"]
            with contextlib.suppress(NotFound):
                await self.client.delete(r.for_object(obj), name, canary.namespace)
            log.info("deleted: the Canary no longer routes with it", kind=kind,
                     object=f"{canary.namespace}/{name}",
                     canary=f"{canary.namespace}/{canary.name}")


def revision_of_primary(primary: JSON) -> str | None:
    """The revision canary gave the primary (its ``canary.dev/revision``)."""
    value = (primary["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
    return str(value) if value is not None else None
