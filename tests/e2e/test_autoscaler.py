"""With autoscalerRef, the primary gets its own HorizontalPodAutoscaler that follows the
user's at any time."""

from __future__ import annotations

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.rollout import APP, start
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


def autoscaler(namespace: str, max_replicas: int) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": APP, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": APP},
                     "minReplicas": 2, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization",
                                                   "averageUtilization": 80}}}]}}


async def test_the_primary_autoscaler_follows_edits_of_the_users(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await kube.apply(autoscaler(namespace, 4), field_manager="e2e")
    await start(kube, environment, namespace,
                autoscalerRef={"apiVersion": "autoscaling/v2",
                               "kind": "HorizontalPodAutoscaler", "name": APP})
    copy = await wait_until(
        lambda: kube.get(r.HORIZONTAL_POD_AUTOSCALERS, f"{APP}-primary", namespace),
        lambda h: h["spec"]["maxReplicas"] == 4, "the primary's autoscaler")
    assert copy["spec"]["scaleTargetRef"]["name"] == f"{APP}-primary"
    assert copy["spec"]["minReplicas"] == 2
    assert copy["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    await kube.apply(autoscaler(namespace, 7), field_manager="e2e")
    await wait_until(lambda: kube.get(r.HORIZONTAL_POD_AUTOSCALERS, f"{APP}-primary", namespace),
                     lambda h: h["spec"]["maxReplicas"] == 7,
                     "the copy to follow the edit", timeout=15)
