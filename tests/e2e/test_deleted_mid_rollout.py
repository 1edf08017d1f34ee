"""What a rollout's surroundings can lose in the middle of it: the target Deployment (its
canary pods go with it, so every request must go back to the primary at once, not at
the deadline) and the whole namespace (the Canary's finalizer must not hold the
namespace, and other namespaces' rollouts carry on)."""

from __future__ import annotations

import asyncio
from typing import Any

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import APP, SUCCESS_RATE, canary_object, deploy, events, phase, start
from tests.e2e.waiting import wait_until

#: Ten steps of 2 s: the analysis is still running when its surroundings go.
SLOW: dict[str, Any] = {"interval": "2s", "threshold": 5, "maxWeight": 50, "stepWeight": 5,
                        "metrics": SUCCESS_RATE}
FAST: dict[str, Any] = SLOW | {"stepWeight": 25}


async def weights(kube: KubeClient, namespace: str) -> list[int]:
    route = await kube.get(r.VIRTUAL_SERVICES, APP, namespace)
    return [int(d["weight"]) for d in route["spec"]["http"][0]["route"]]


async def analysing(kube: KubeClient, env: LocalEnvironment, namespace: str,
                    analysis: dict[str, Any]) -> None:
    """An Initialized Canary whose second revision has some of the traffic."""
    await start(kube, env, namespace, analysis=analysis)
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: weights(kube, namespace), lambda w: w[1] > 0,
                     "the canary to take some traffic", timeout=60)


async def test_a_target_deleted_mid_analysis_sends_all_traffic_to_the_primary(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        running_controller: ControllerProcess) -> None:
    await analysing(kube, environment, namespace, SLOW)
    await kube.delete(r.DEPLOYMENTS, APP, namespace)
    await wait_until(lambda: weights(kube, namespace), lambda w: w == [100, 0],
                     "all traffic back on the primary", timeout=15)
    found = await wait_until(lambda: canary_object(kube, namespace),
                             lambda c: phase(c) == "Failed", "the rollout to fail", timeout=15)
    promoted = {c["type"]: c for c in found["status"]["conditions"]}["Promoted"]
    assert promoted["reason"] == "TargetNotFound", promoted
    assert "deleted during the analysis" in promoted["message"]
    assert found["status"]["canaryWeight"] == 0
    primary = await kube.get(r.DEPLOYMENTS, f"{APP}-primary", namespace)
    assert primary["status"].get("availableReplicas", 0) >= 1
    await wait_until(lambda: events(kube, namespace, "RolledBack"), bool,
                     "the RolledBack event")
    await asyncio.sleep(3)  # no more decisions: the rollback is said once
    assert len(await events(kube, namespace, "RolledBack")) == 1
    assert running_controller.running()


async def test_a_namespace_deleted_mid_rollout_goes_and_other_rollouts_carry_on(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, running_controller: ControllerProcess) -> None:
    await asyncio.gather(analysing(kube, environment, namespace, SLOW),
                         analysing(kube, environment, other_namespace, FAST))
    await kube.delete(r.NAMESPACES, namespace)

    async def gone() -> bool:
        try:
            await kube.get(r.NAMESPACES, namespace)
        except NotFound:
            return True
        return False

    await wait_until(gone, bool, "the namespace to be deleted", timeout=90, interval=1)
    await wait_until(lambda: canary_object(kube, other_namespace),
                     lambda c: phase(c) == "Succeeded", "the other rollout to finish",
                     timeout=90)
    assert running_controller.running()
