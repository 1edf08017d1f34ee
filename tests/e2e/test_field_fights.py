"""A GitOps controller re-applying the target with ``replicas`` (docs/gitops.md): canary
says so once and leaves the replicas to it, so pods are not started and killed at every
reconcile; without ``replicas`` in the manifest nothing is fought at all.

The GitOps controller is emulated first: the Deployment is server-side applied as Flux's
kustomize-controller does (its field manager, forced) every 2 s for a minute, much more
often than Flux's usual interval; the last test runs Flux itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import yaml

from canary.devenv import LocalEnvironment
from canary.devenv.gitserver import Repository
from canary.kube import KubeClient, KubeError
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import ANALYSIS, APP, canary_object, events, occurrences, phase
from tests.e2e.test_gitops_flux import FLUX_INTERVAL, GitOpsApp
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

GITOPS = "kustomize-controller"
#: How often the emulated GitOps controller re-applies, and for how long (seconds).
PERIOD, WINDOW = 2.0, 30.0
#: Seconds Flux itself reconciles in steady state, with replicas in Git and then without:
#: the acceptance's five minutes with ``CANARY_STEADY_SECONDS=300``.
STEADY = float(os.environ.get("CANARY_STEADY_SECONDS") or 30)


def manifest(namespace: str, replicas: int | None) -> dict[str, Any]:
    """The Deployment as Git holds it: with ``replicas``, or without (None)."""
    deployment = manifests.deployment(APP, namespace, replicas=replicas or 1,
                                      annotations={"revision": "1"})
    if replicas is None:
        del deployment["spec"]["replicas"]
    return deployment


async def initialized(kube: KubeClient, env: LocalEnvironment, namespace: str,
                      replicas: int | None) -> dict[str, Any]:
    """The app applied as the GitOps controller does, under an Initialized Canary whose
    target canary has scaled to zero."""
    await kube.apply(manifest(namespace, replicas), field_manager=GITOPS)
    await kube.create(r.CANARIES, manifests.canary(APP, namespace, analysis=ANALYSIS,
                                                   progressDeadlineSeconds=60))
    await env.set_traffic(f"{APP}.{namespace}", rps=100)
    await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, namespace),
                     lambda d: d["spec"]["replicas"] == 0, "canary to scale the target to zero")
    return await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: phase(c) == "Initialized", "the Canary to be Initialized")


@contextlib.asynccontextmanager
async def pods_created(kube: KubeClient, namespace: str) -> AsyncIterator[set[str]]:
    """The uids of the target's pods created while in the block (the primary's pods carry
    ``app: <name>-primary``), from a watch: a pod killed within a moment still counts."""
    created: set[str] = set()
    listing = await kube.list(r.PODS, namespace, label_selector=f"app={APP}")
    existing = {p["metadata"]["uid"] for p in listing["items"]}
    version = listing["metadata"]["resourceVersion"]

    async def watch() -> None:
        resumed_from = version
        while True:  # the API server ends a watch after timeout_seconds: resume it
            async for event in kube.watch(r.PODS, namespace, resumed_from,
                                          timeout_seconds=300, label_selector=f"app={APP}"):
                obj = event.get("object") or {}
                resumed_from = obj.get("metadata", {}).get("resourceVersion", resumed_from)
                uid = obj.get("metadata", {}).get("uid")
                if event.get("type") == "ADDED" and uid not in existing:
                    created.add(uid)

    task = asyncio.create_task(watch())
    try:
        await asyncio.sleep(0.5)  # the watch is open before anything happens
        yield created
        await asyncio.sleep(PERIOD)  # the last write's pods reach the watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, KubeError):
            await task


async def reapply(kube: KubeClient, namespace: str, replicas: int | None,
                  seen: list[dict[str, Any]]) -> None:
    """Apply the manifest as the GitOps controller every PERIOD for WINDOW seconds,
    recording the Canary each time."""
    deadline = time.monotonic() + WINDOW
    while time.monotonic() < deadline:
        await kube.apply(manifest(namespace, replicas), field_manager=GITOPS)
        await asyncio.sleep(PERIOD)
        seen.append(await canary_object(kube, namespace))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == type_), None)


async def test_replicas_set_back_by_gitops_are_said_once_and_not_fought(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    before = await initialized(kube, environment, namespace, replicas=2)
    seen: list[dict[str, Any]] = []
    async with pods_created(kube, namespace) as created:
        await reapply(kube, namespace, 2, seen)
    print(f"\npods of the target created in {WINDOW:.0f}s of re-applies every "
          f"{PERIOD:.0f}s with replicas: 2 in the manifest: {len(created)}")

    # No new revision, no analysis: the Canary rested in Initialized throughout.
    assert {phase(c) for c in seen} == {"Initialized"}
    assert {c["status"]["lastAppliedSpec"] for c in seen} == \
        {before["status"]["lastAppliedSpec"]}
    assert not seen[-1]["status"].get("lastAnalysis")
    assert not await events(kube, namespace, "NewRevision")
    # Said on the Canary, and once in an event, naming the manager and the fix.
    conflict = condition(seen[-1], "FieldConflict")
    assert conflict is not None and conflict["status"] == "True", seen[-1]["status"]
    assert f"spec.replicas is set back to 2 by {GITOPS}" in conflict["message"]
    assert "remove `replicas` from the manifest in Git" in conflict["message"]
    warnings = [e for e in await events(kube, namespace) if e.get("type") == "Warning"]
    assert [e["reason"] for e in warnings] == ["FieldConflict"] and occurrences(warnings) == 1
    assert GITOPS in warnings[0]["note"]
    ready = condition(seen[-1], "Ready")
    assert ready is not None and ready["status"] == "True"  # Flux's wait is not held up
    # Pods started from zero by the first reset, or by two within the second canary
    # scaled down (which cannot be told from the replicas the target had before).
    assert 0 < len(created) <= 4, created
    target = await kube.get(r.DEPLOYMENTS, APP, namespace)
    assert target["spec"]["replicas"] == 2

    # The documented fix: no replicas in Git; canary scales the target down again.
    await kube.apply(manifest(namespace, None), field_manager=GITOPS)
    resolved = await wait_until(lambda: canary_object(kube, namespace),
                                lambda c: condition(c, "FieldConflict") is None,
                                "the FieldConflict condition to go")
    assert phase(resolved) == "Initialized"
    await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, namespace),
                     lambda d: d["spec"]["replicas"] == 0, "the target to be scaled to zero")
    assert len(await events(kube, namespace, "FieldConflictResolved")) == 1


async def test_without_replicas_in_the_manifest_nothing_is_fought(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await initialized(kube, environment, namespace, replicas=None)
    seen: list[dict[str, Any]] = []
    async with pods_created(kube, namespace) as created:
        await reapply(kube, namespace, None, seen)
    print(f"\npods of the target created in {WINDOW:.0f}s of re-applies every "
          f"{PERIOD:.0f}s without replicas in the manifest: {len(created)}")
    assert not created
    assert {phase(c) for c in seen} == {"Initialized"}
    assert all(condition(c, "FieldConflict") is None for c in seen)
    assert not [e for e in await events(kube, namespace) if e.get("type") == "Warning"]
    target = await kube.get(r.DEPLOYMENTS, APP, namespace)
    assert target["spec"]["replicas"] == 0


class ReplicasInGit(GitOpsApp):
    """An application whose Deployment carries ``replicas`` in Git (or not), without an
    autoscaler: what docs/gitops.md advises against, then the fix."""

    replicas: int | None = 2

    def files(self, tag: str, annotations: dict[str, str] | None = None,
              analysis: dict[str, Any] | None = None) -> dict[str, str]:
        files = super().files(tag, annotations, analysis)
        del files["app/autoscaler.yaml"]
        deployment = yaml.safe_load(files["app/deployment.yaml"])
        if self.replicas is not None:
            deployment["spec"]["replicas"] = self.replicas
        canary = yaml.safe_load(files["app/canary.yaml"])
        del canary["spec"]["autoscalerRef"]
        files["app/deployment.yaml"] = yaml.safe_dump(deployment)
        files["app/canary.yaml"] = yaml.safe_dump(canary)
        return files


@pytest.mark.usefixtures("flux")
async def test_flux_setting_the_replicas_back_is_said_once_and_not_fought(
        kube: KubeClient, environment: LocalEnvironment,
        git_repository: Callable[[str], Repository],
        namespace: str) -> None:
    """Flux's kustomize-controller reconciling every 2 s with ``replicas: 2`` in Git."""
    app = ReplicasInGit(kube, environment, git_repository(namespace), namespace)
    try:
        await app.start()
        before = await app.canary()
        async with pods_created(kube, app.namespace) as created:
            await asyncio.sleep(STEADY)
        print(f"\npods of the target created in {STEADY:.0f}s of Flux reconciling every "
              f"{FLUX_INTERVAL} with replicas: 2 in Git: {len(created)}")
        obj = await app.canary()
        # No new revision, no analysis.
        assert obj["status"]["lastAppliedSpec"] == before["status"]["lastAppliedSpec"]
        assert not obj["status"].get("lastAnalysis")
        conflict = condition(obj, "FieldConflict")
        assert conflict is not None and GITOPS in conflict["message"], obj["status"]
        warnings = [e for e in await events(kube, app.namespace) if e.get("type") == "Warning"]
        assert [e["reason"] for e in warnings] == ["FieldConflict"]
        assert occurrences(warnings) == 1
        # Flux's first reset may come before the window opens (the condition shows it
        # came): at most its pods, or those of two within the second canary scaled down.
        assert phase(obj) == "Initialized" and len(created) <= 4, created
        assert not await events(kube, app.namespace, "NewRevision")

        app.replicas = None
        fix = app.repository.commit(app.files("6.7.0"), "Leave the replicas to canary")
        await app.ready_at(fix)
        await wait_until(app.canary, lambda c: condition(c, "FieldConflict") is None,
                         "the FieldConflict condition to go")
        await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, app.namespace),
                         lambda d: d["spec"]["replicas"] == 0,
                         "the target to be scaled to zero")
        async with pods_created(kube, app.namespace) as created:
            await asyncio.sleep(STEADY)
        print(f"pods of the target created in {STEADY:.0f}s once Git has no "
              f"replicas: {len(created)}")
        assert not created
    finally:
        with contextlib.suppress(Exception):
            await environment.stop_traffic(app.namespace)
