"""Misconfigurations that must never hurt: conflicting Canaries, a managed target, a
primary broken by hand, missing references. Each is held and said, never acted on."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import (
    ANALYSIS,
    APP,
    canary_object,
    deploy,
    events,
    phase,
    primary,
    start,
    target_revision,
)
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

#: The objects a Canary named APP generates, which a second Canary must leave alone.
CONTESTED = [(r.SERVICES, APP), (r.SERVICES, f"{APP}-primary"), (r.SERVICES, f"{APP}-canary"),
             (r.VIRTUAL_SERVICES, APP), (r.DEPLOYMENTS, f"{APP}-primary"),
             (r.DEPLOYMENTS, APP)]


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"), {})


async def written_by_canary(kube: KubeClient, namespace: str) -> dict[str, Any]:
    """What shows a write to the contested objects: canary's managedFields entries (their
    times change with every write canary makes) and each object's spec."""
    seen = {}
    for resource, name in CONTESTED:
        obj = await kube.get(resource, name, namespace)
        entries = [(m.get("manager"), m.get("operation"), m.get("time"))
                   for m in obj["metadata"].get("managedFields") or []
                   if str(m.get("manager", "")).startswith("canary")]
        seen[f"{resource.kind}/{name}"] = (entries, obj.get("spec"),
                                           obj["metadata"].get("ownerReferences"))
    return seen


async def started(kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """The app under an Initialized Canary, with its routing objects: the status is
    written before the actions run, so they follow Initialized by a moment."""
    await start(kube, environment, namespace)
    await wait_until(lambda: _exists(kube, r.VIRTUAL_SERVICES, APP, namespace), bool,
                     "the routing objects to be created")


async def test_a_second_canary_on_one_deployment_is_refused_and_writes_nothing(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await started(kube, environment, namespace)
    await kube.create(r.CANARIES, manifests.canary(
        "rival", namespace, target=APP, port=8080, analysis=ANALYSIS))
    rival = await wait_until(lambda: canary_object(kube, namespace, "rival"),
                             lambda c: ready(c).get("reason") == "Conflict",
                             "the second Canary to be refused")
    assert ready(rival)["status"] == "False"
    assert ready(rival)["message"].startswith(f"Canary {APP} already claims Deployment {APP}")
    before = await written_by_canary(kube, namespace)
    rival_version = rival["metadata"]["resourceVersion"]
    await asyncio.sleep(30)
    assert await written_by_canary(kube, namespace) == before
    rival = await canary_object(kube, namespace, "rival")
    assert rival["metadata"]["resourceVersion"] == rival_version  # no status churn either
    assert phase(rival) is None
    conflicts = [e for e in await events(kube, namespace, "Conflict")
                 if e["regarding"]["name"] == "rival"]
    assert len(conflicts) == 1 and conflicts[0]["type"] == "Warning"
    assert phase(await canary_object(kube, namespace)) == "Initialized"
    # When the first goes, the second takes over.
    await kube.delete(r.CANARIES, APP, namespace)
    taken = await wait_until(lambda: canary_object(kube, namespace, "rival"),
                             lambda c: phase(c) == "Initialized", "the second to take over",
                             timeout=120)
    assert ready(taken)["status"] == "True"
    # The status is written before the actions: the Service follows, once the garbage
    # collector has removed the first Canary's.
    service = await wait_until(lambda: kube.get(r.SERVICES, APP, namespace),
                               lambda s: s["spec"]["ports"][0]["port"] == 8080,
                               "the second Canary's Service")
    assert service["metadata"]["ownerReferences"][0]["name"] == "rival"


async def test_another_canarys_primary_as_target_is_refused_and_its_deletion_harms_nothing(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await started(kube, environment, namespace)
    await kube.create(r.CANARIES, manifests.canary(
        "layered", namespace, target=f"{APP}-primary", analysis=ANALYSIS))
    layered = await wait_until(lambda: canary_object(kube, namespace, "layered"),
                               lambda c: ready(c).get("reason") == "UnsupportedTarget",
                               "the Canary on a primary to be refused")
    assert f"managed by Canary {APP}" in ready(layered)["message"]
    assert "spec.targetRef" in ready(layered)["message"]
    with pytest.raises(NotFound):
        await kube.get(r.DEPLOYMENTS, f"{APP}-primary-primary", namespace)
    owners = (await kube.get(r.SERVICES, f"{APP}-primary", namespace))["metadata"][
        "ownerReferences"]
    assert [o["name"] for o in owners] == [APP]
    await kube.delete(r.CANARIES, "layered", namespace)
    await wait_until(lambda: _exists(kube, r.CANARIES, "layered", namespace),
                     lambda exists: not exists, "the Canary on a primary to be gone")
    await asyncio.sleep(3)  # the garbage collector would act within this
    for resource, name in CONTESTED:
        await kube.get(resource, name, namespace)  # all still there
    assert phase(await canary_object(kube, namespace)) == "Initialized"


async def _exists(kube: KubeClient, resource: r.Resource, name: str, namespace: str) -> bool:
    try:
        await kube.get(resource, name, namespace)
    except NotFound:
        return False
    return True


@contextlib.asynccontextmanager
async def paused(controller: ControllerProcess) -> AsyncIterator[None]:
    """The controller stopped (SIGSTOP) so the cluster can be broken behind its back."""
    assert controller.process is not None
    controller.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        controller.process.send_signal(signal.SIGCONT)


async def test_a_primary_scaled_to_zero_is_restored_and_a_release_waits_for_it(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        running_controller: ControllerProcess) -> None:
    await started(kube, environment, namespace)
    async with paused(running_controller):
        await kube.merge_patch(r.DEPLOYMENTS, f"{APP}-primary", {"spec": {"replicas": 0}},
                               namespace)
        await wait_until(lambda: primary(kube, namespace),
                         lambda d: not (d.get("status") or {}).get("availableReplicas"),
                         "the primary to have no available pod")
        await deploy(kube, namespace, {"revision": "2"})
    resumed = asyncio.get_running_loop().time()
    revision = await target_revision(kube, namespace)
    seen: list[tuple[str | None, int]] = []
    await wait_until(lambda: _sample(kube, namespace, seen),
                     lambda both: both[1]["spec"]["replicas"] == 2,
                     "the primary's replicas to be put back", timeout=10, interval=0.1)
    assert asyncio.get_running_loop().time() - resumed < 10
    await wait_until(lambda: _sample(kube, namespace, seen),
                     lambda both: phase(both[0]) == "Succeeded"
                     and both[0]["status"].get("lastPromotedSpec") == revision,
                     "the release to be promoted", timeout=120, interval=0.1)
    # The release never ran while the primary had no pod to take the traffic back.
    assert ("Progressing", 0) not in seen, seen
    reasons = [e["reason"] for e in await events(kube, namespace)]
    assert "PrimaryUnavailable" in reasons and "Restored" in reasons
    assert reasons.index("PrimaryUnavailable") < reasons.index("NewRevision")
    [restored] = [e for e in await events(kube, namespace, "Restored")]
    assert restored["note"] == (f"Deployment {APP}-primary was scaled to 0 outside canary: "
                                "2 replicas put back")


async def _sample(kube: KubeClient, namespace: str, seen: list[tuple[str | None, int]]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Canary and its primary, noting the phase beside the primary's available pods."""
    canary, deployment = await canary_object(kube, namespace), await primary(kube, namespace)
    seen.append((phase(canary), int((deployment.get("status") or {}).get("availableReplicas")
                                    or 0)))
    return canary, deployment


async def test_deleted_and_edited_routing_objects_are_put_back_and_said(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await started(kube, environment, namespace)
    await kube.delete(r.SERVICES, APP, namespace)
    deleted = asyncio.get_running_loop().time()
    await wait_until(lambda: _exists(kube, r.SERVICES, APP, namespace), bool,
                     "the Service to be back", timeout=10, interval=0.1)
    assert asyncio.get_running_loop().time() - deleted < 10
    # Someone shifts half the traffic by hand.
    vs = await kube.get(r.VIRTUAL_SERVICES, APP, namespace)
    http = vs["spec"]["http"]
    http[-1]["route"][0]["weight"], http[-1]["route"][1]["weight"] = 50, 50
    await kube.merge_patch(r.VIRTUAL_SERVICES, APP, {"spec": {"http": http}}, namespace)
    edited = asyncio.get_running_loop().time()
    await wait_until(lambda: kube.get(r.VIRTUAL_SERVICES, APP, namespace),
                     lambda v: v["spec"]["http"][-1]["route"][1]["weight"] == 0,
                     "the weights to be put back", timeout=10, interval=0.1)
    assert asyncio.get_running_loop().time() - edited < 10
    notes = [e["note"] for e in await wait_until(
        lambda: events(kube, namespace, "Restored"), lambda found: len(found) == 2,
        "both repairs to be said")]
    assert notes[0] == f"Service {APP} was missing: created again"
    assert notes[1].startswith(f"VirtualService {APP} was changed outside canary (spec.http")
    assert "was 50, canary's is 100" in notes[1] and notes[1].endswith(": put back")


TEMPLATE = {"apiVersion": "canary.dev/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": "always-good"},
            "spec": {"provider": {"type": "prometheus"},
                     "query": 'sum(vector({{ variables.value }}))'}}


async def test_a_release_waits_while_a_reference_is_missing(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    template = {**TEMPLATE, "metadata": {"name": "always-good", "namespace": namespace}}
    await kube.create(r.METRIC_TEMPLATES, template)
    analysis = {**ANALYSIS, "metrics": [
        {"name": "good", "templateRef": {"name": "always-good"},
         "templateVariables": {"value": "1"}, "thresholdRange": {"min": 1}}]}
    await start(kube, environment, namespace, analysis=analysis)
    await kube.delete(r.METRIC_TEMPLATES, "always-good", namespace)
    await deploy(kube, namespace, {"revision": "2"})
    held = await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: ready(c).get("reason") == "MissingReference",
                            "the Canary to say the template is missing")
    assert ready(held)["message"].startswith(
        f"spec.analysis.metrics[0].templateRef: MetricTemplate {namespace}/always-good "
        "not found")
    await asyncio.sleep(5)
    assert phase(await canary_object(kube, namespace)) == "Initialized"
    vs = await kube.get(r.VIRTUAL_SERVICES, APP, namespace)
    assert vs["spec"]["http"][-1]["route"][1]["weight"] == 0
    assert [e["reason"] for e in await events(kube, namespace, "RevisionHeld")] == \
        ["RevisionHeld"]
    await kube.create(r.METRIC_TEMPLATES, template)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) in ("Progressing", "Promoting", "Succeeded"),
                     "the release to start once the template exists")


async def test_a_canary_with_missing_references_is_not_initialized(
        kube: KubeClient, namespace: str) -> None:
    await deploy(kube, namespace, {"revision": "1"})
    template = {**TEMPLATE, "metadata": {"name": "always-good", "namespace": namespace}}
    await kube.create(r.METRIC_TEMPLATES, template)
    await kube.create(r.CANARIES, manifests.canary(
        APP, namespace, autoscalerRef={"apiVersion": "autoscaling/v2",
                                       "kind": "HorizontalPodAutoscaler", "name": APP},
        analysis={**ANALYSIS, "metrics": [
            {"name": "good", "templateRef": {"name": "always-good"},
             "thresholdRange": {"min": 1}},
            {"name": "gone", "templateRef": {"name": "gone"}, "thresholdRange": {"min": 1}}]}))
    held = await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: ready(c).get("reason") == "MissingReference",
                            "the Canary to name its missing references")
    message = ready(held)["message"]
    assert "spec.analysis.metrics[0].templateVariables: MetricTemplate " \
           f"{namespace}/always-good uses {{{{ variables.value }}}}, which is not set" in message
    assert f"spec.analysis.metrics[1].templateRef: MetricTemplate {namespace}/gone not " \
           "found" in message
    assert f"spec.autoscalerRef: HorizontalPodAutoscaler {namespace}/{APP} not found" in message
    assert phase(held) is None
    with pytest.raises(NotFound):
        await kube.get(r.DEPLOYMENTS, f"{APP}-primary", namespace)


async def test_what_a_canary_names_applied_just_after_it_is_never_said_missing(
        kube: KubeClient, namespace: str) -> None:
    """A GitOps controller applies a commit's objects one after another (Flux: the
    Canary before its MetricTemplate); here the Canary comes a second before its target,
    its template and its autoscaler. It is Initialized, and nothing is said missing."""
    canary = manifests.canary(
        APP, namespace, autoscalerRef={"apiVersion": "autoscaling/v2",
                                       "kind": "HorizontalPodAutoscaler", "name": APP},
        analysis={**ANALYSIS, "metrics": [
            {"name": "good", "templateRef": {"name": "always-good"},
             "templateVariables": {"value": "1"}, "thresholdRange": {"min": 1}}]})
    await kube.create(r.CANARIES, canary)
    await asyncio.sleep(1)
    await deploy(kube, namespace, {"revision": "1"})
    await kube.create(r.METRIC_TEMPLATES,
                      {**TEMPLATE, "metadata": {"name": "always-good", "namespace": namespace}})
    await kube.create(r.HORIZONTAL_POD_AUTOSCALERS, manifests.autoscaler(APP, namespace))
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Initialized", "the Canary to be Initialized")
    assert [(e["reason"], e["note"]) for e in await events(kube, namespace)
            if e.get("type") == "Warning"] == []
