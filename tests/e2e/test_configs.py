"""A change to a referenced ConfigMap is a new revision; the primary gets its copy at
promotion."""

from __future__ import annotations

from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import ANALYSIS, APP, FIELD_MANAGER, canary_object, phase
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


def config(namespace: str, color: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{APP}-config", "namespace": namespace},
            "data": {"color": color}}


async def test_a_config_change_is_analysed_and_reaches_the_primary_at_promotion(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await kube.apply(config(namespace, "blue"), field_manager=FIELD_MANAGER)
    deployment = manifests.deployment(APP, namespace, replicas=2,
                                      annotations={"revision": "1"})
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": f"{APP}-config"}}]
    await kube.apply(deployment, field_manager=FIELD_MANAGER)
    await kube.create(r.CANARIES, manifests.canary(APP, namespace, analysis=ANALYSIS,
                                                   progressDeadlineSeconds=60))
    await environment.set_traffic(f"{APP}.{namespace}", rps=100)
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Initialized",
                     "the Canary to be Initialized")
    primary = await kube.get(r.DEPLOYMENTS, f"{APP}-primary", namespace)
    ref = primary["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]
    assert ref["name"] == f"{APP}-config-primary"
    copy = await kube.get(r.CONFIG_MAPS, f"{APP}-config-primary", namespace)
    assert copy["data"] == {"color": "blue"}
    before = (await canary_object(kube, namespace))["status"]["lastAppliedSpec"]

    await kube.apply(config(namespace, "green"), field_manager=FIELD_MANAGER)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: c["status"].get("lastAppliedSpec") != before,
                     "the config change to start a rollout")
    assert (await kube.get(r.CONFIG_MAPS, f"{APP}-config-primary", namespace))["data"] == \
        {"color": "blue"}, "the primary's copy changed before promotion"
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Succeeded",
                     "the promotion", timeout=120)
    await wait_until(lambda: kube.get(r.CONFIG_MAPS, f"{APP}-config-primary", namespace),
                     lambda c: c["data"] == {"color": "green"}, "the primary's copy updated")
