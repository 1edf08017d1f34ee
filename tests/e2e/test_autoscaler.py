"""With autoscalerRef, the primary gets its own HorizontalPodAutoscaler that follows the
user's at any time, and the user's autoscaler sizes the canary while it runs."""

from __future__ import annotations

import asyncio

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import APP, canary_object, deploy, phase, start
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


async def test_the_primary_autoscaler_follows_edits_of_the_users(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await kube.apply(manifests.autoscaler(APP, namespace, max_replicas=4), field_manager="e2e")
    await start(kube, environment, namespace,
                autoscalerRef={"apiVersion": "autoscaling/v2",
                               "kind": "HorizontalPodAutoscaler", "name": APP})
    copy = await wait_until(
        lambda: kube.get(r.HORIZONTAL_POD_AUTOSCALERS, f"{APP}-primary", namespace),
        lambda h: h["spec"]["maxReplicas"] == 4, "the primary's autoscaler")
    assert copy["spec"]["scaleTargetRef"]["name"] == f"{APP}-primary"
    assert copy["spec"]["minReplicas"] == 2
    assert copy["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    await kube.apply(manifests.autoscaler(APP, namespace, max_replicas=7), field_manager="e2e")
    await wait_until(lambda: kube.get(r.HORIZONTAL_POD_AUTOSCALERS, f"{APP}-primary", namespace),
                     lambda h: h["spec"]["maxReplicas"] == 7,
                     "the copy to follow the edit", timeout=15)


async def replicas(kube: KubeClient, namespace: str, name: str) -> int:
    return int((await kube.get(r.DEPLOYMENTS, name, namespace))["spec"]["replicas"])


async def test_the_autoscalers_size_the_primary_and_the_running_canary(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """The cluster's own HPA controller clamps the primary through its copy, and whatever an
    autoscaler makes of the canary during the analysis is left alone."""
    await kube.apply(manifests.autoscaler(APP, namespace, min_replicas=3, max_replicas=6),
                     field_manager="e2e")
    await start(kube, environment, namespace,
                analysis={"interval": "2s", "threshold": 2, "maxWeight": 60, "stepWeight": 2},
                autoscalerRef={"apiVersion": "autoscaling/v2",
                               "kind": "HorizontalPodAutoscaler", "name": APP})
    await wait_until(lambda: replicas(kube, namespace, f"{APP}-primary"), lambda n: n == 3,
                     "the HPA controller to raise the primary to minReplicas", timeout=30)
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Progressing" and c["status"].get("canaryWeight"),
                     "traffic to reach the canary")
    await wait_until(lambda: replicas(kube, namespace, APP), lambda n: n == 3,
                     "the canary to run within its autoscaler's bounds", timeout=30)
    # An autoscaler reacting to load raises the canary (within the HPA's bounds).
    await kube.merge_patch(r.DEPLOYMENTS, APP, {"spec": {"replicas": 5}}, namespace)
    for _ in range(5):  # several analysis steps
        await asyncio.sleep(2)
        assert await replicas(kube, namespace, APP) == 5
    assert phase(await canary_object(kube, namespace)) == "Progressing"
    assert await replicas(kube, namespace, f"{APP}-primary") == 3
