"""Carrying out the decision's actions through the workload and traffic ports.

Every write is skipped when the cache already shows the desired state: an applied object
carries the hash of what was applied in ``canary.dev/applied`` and must still contain
every field applied (so an edit by someone else is put right), and a scale is compared
with the cached replicas. Re-running a decision, as after a restart, costs no writes when
nothing needs to change.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from canary.core import Action, EnsurePrimary, Route, ScaleCanary
from canary.core.actions import CallHooks, EnsureAutoscaler, ForgetRequest
from canary.core.observation import HookResult
from canary.core.revision import canonical
from canary.kube import JSON, Invalid, KubeClient, NotFound, Reflector
from canary.kube import resources as r
from canary.manual import ABORT_ANNOTATION, APPROVE_ANNOTATION, PROMOTE_ANNOTATION
from canary.models.canary import Canary
from canary.router import istio
from canary.settings import Settings
from canary.targets import configs
from canary.targets.deployment import (
    MANAGED_BY,
    owner_reference,
    primary_manifest,
    primary_name,
    revision_of,
    selector_label,
)

APPLIED_ANNOTATION = "canary.dev/applied"
log = structlog.get_logger("canary.controller")


def fingerprint(manifest: JSON) -> str:
    return hashlib.sha256(canonical(manifest)).hexdigest()[:16]


def contains(actual: Any, desired: Any) -> bool:
    """Whether ``actual`` has every field of ``desired`` with the same value (lists must
    match item by item; fields the API server added are ignored)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(actual) == len(desired)
                and all(contains(a, d) for a, d in zip(actual, desired, strict=True)))
    return bool(actual == desired)


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
              **details: str) -> None:
        """Log ``event`` unless writing ``before`` (the cached object, None when there
        was none) gave back an object the server already had."""
        meta = after.get("metadata") or {}
        key = (kind, str(meta.get("namespace")), str(meta.get("name")))
        version = meta.get("resourceVersion")
        known = {self._versions.pop(key, None),
                 ((before or {}).get("metadata") or {}).get("resourceVersion")}
        if version is not None:
            self._versions[key] = str(version)
            if len(self._versions) > self.SIZE:
                del self._versions[next(iter(self._versions))]
        if version is None or version not in known:
            log.info(event, kind=kind, object=f"{key[1]}/{key[2]}", **details)


class Executor:
    def __init__(self, client: KubeClient, settings: Settings, caches: dict[str, Reflector],
                 call_hooks: Callable[[Canary, str], Awaitable[tuple[HookResult, ...]]],
                 config_lookup: Callable[[str], configs.Lookup]) -> None:
        self.client = client
        self.settings = settings
        self.caches = caches
        self.call_hooks = call_hooks
        self.config_lookup = config_lookup
        self.writes = WriteLog()

    async def apply(self, manifest: JSON, cache: Reflector) -> bool:
        """Server-side apply ``manifest`` unless the cached object is already it."""
        desired = copy.deepcopy(manifest)
        stamp = fingerprint(desired)
        desired["metadata"].setdefault("annotations", {})[APPLIED_ANNOTATION] = stamp
        meta = desired["metadata"]
        cached = cache.get(meta["namespace"], meta["name"])
        if cached is not None and contains(cached, desired):
            return False
        written = await self.client.apply(desired, field_manager=self.settings.kube.field_manager)
        self.writes.wrote(desired["kind"], cached, written,
                          "created" if cached is None else "changed")
        return True

    async def execute(self, owner: JSON, canary: Canary, actions: tuple[Action, ...]) -> None:
        for action in actions:
            if isinstance(action, EnsurePrimary):
                await self._ensure_primary(owner, canary, action.revision)
            elif isinstance(action, ScaleCanary):
                await self._scale_canary(canary, action.replicas)
            elif isinstance(action, Route):
                await self._route(owner, canary, action)
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

    def _deployment(self, namespace: str, name: str) -> JSON | None:
        return self.caches["deployments"].get(namespace, name)

    async def _ensure_primary(self, owner: JSON, canary: Canary, revision: str) -> None:
        target = self._deployment(canary.namespace, canary.spec.target_ref.name)
        lookup = self.config_lookup(canary.namespace)
        if target is None or revision_of(target, lookup) != revision:
            return  # the target moved on: the next decision sees its new revision
        # The configs first, so the primary's new pods find them.
        for config in configs.primary_copies(target["spec"]["template"], lookup):
            config["metadata"] |= {"labels": dict(MANAGED_BY),
                                   "ownerReferences": [owner_reference(owner)]}
            cache = "configmaps" if config["kind"] == configs.CONFIG_MAP else "secrets"
            await self.apply(config, self.caches[cache])
        primary = self._deployment(canary.namespace, primary_name(canary.spec.target_ref.name))
        if primary is not None:
            replicas = int((primary.get("spec") or {}).get("replicas", 1))
        else:
            replicas = max(int((target.get("spec") or {}).get("replicas", 1)), 1)
        manifest = primary_manifest(target, owner, revision, replicas,
                                    self.settings.workloads.selector_labels, lookup)
        await self.apply(manifest, self.caches["deployments"])

    async def _scale_canary(self, canary: Canary, replicas: int | None) -> None:
        name = canary.spec.target_ref.name
        target = self._deployment(canary.namespace, name)
        if target is None:
            return
        current = int((target.get("spec") or {}).get("replicas", 1))
        if replicas is None:
            if canary.spec.autoscaler_ref is not None and current > 0:
                return  # the user's autoscaler sizes the running canary
            primary = self._deployment(canary.namespace, primary_name(name))
            replicas = int((primary or {}).get("spec", {}).get("replicas", 1)) or 1
        if int((target.get("spec") or {}).get("replicas", 1)) == replicas:
            return
        scaled = await self.client.merge_patch(r.DEPLOYMENTS, name,
                                               {"spec": {"replicas": replicas}},
                                               canary.namespace)
        self.writes.wrote("Deployment", target, scaled, "scaled",
                          replicas=f"{current} -> {replicas}")

    async def _ensure_autoscaler(self, owner: JSON, canary: Canary) -> None:
        ref = canary.spec.autoscaler_ref
        assert ref is not None
        original = self.caches["autoscalers"].get(canary.namespace, ref.name)
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
            "spec": spec}, self.caches["autoscalers"])

    async def _route(self, owner: JSON, canary: Canary, route: Route) -> None:
        target = self._deployment(canary.namespace, canary.spec.target_ref.name)
        if target is None:
            return
        label = selector_label(target, self.settings.workloads.selector_labels)
        for service in istio.services(canary, owner, label):
            await self.apply(service, self.caches["services"])
        for rule in istio.destination_rules(canary, owner):
            await self.apply(rule, self.caches["destination_rules"])
        await self.apply(istio.virtual_service(canary, owner, route),
                         self.caches["virtual_services"])
