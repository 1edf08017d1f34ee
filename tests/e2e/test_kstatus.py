"""Waiting for a release as pipelines and GitOps tools do (docs/gitops.md): ``kubectl wait
--for=condition=Ready`` returns after the promotion, a rollback is ``Stalled``, and
``status.observedGeneration`` follows ``metadata.generation``."""

from __future__ import annotations

import asyncio
import os
import subprocess
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.devenv.install import locate
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.rollout import APP, canary_object, deploy, phase, start, target_revision
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


async def kubectl_wait(env: LocalEnvironment, namespace: str, condition: str,
                       timeout: int = 150) -> asyncio.subprocess.Process:
    """``kubectl wait --for=condition=CONDITION canary/podinfo``, started."""
    return await asyncio.create_subprocess_exec(
        str(locate()["kubectl"]), "wait", f"--for=condition={condition}", f"canary/{APP}",
        "-n", namespace, f"--timeout={timeout}s",
        env=dict(os.environ, KUBECONFIG=str(env.kubeconfig)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def finished(process: asyncio.subprocess.Process) -> str:
    out, err = await asyncio.wait_for(process.communicate(), timeout=200)
    assert process.returncode == 0, (process.returncode, out.decode(), err.decode())
    return out.decode()


async def test_kubectl_wait_returns_after_the_promotion_and_a_rollback_stalls(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace)
    rested = await canary_object(kube, namespace)
    assert conditions(rested)["Ready"]["status"] == "True"
    assert "Reconciling" not in conditions(rested) and "Stalled" not in conditions(rested)

    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    started = await wait_until(lambda: canary_object(kube, namespace),
                               lambda c: conditions(c)["Ready"]["status"] == "False",
                               "the rollout to start")
    assert conditions(started)["Reconciling"]["status"] == "True"
    waiting = await kubectl_wait(environment, namespace, "Ready")
    said = await finished(waiting)
    promoted = await canary_object(kube, namespace)  # read as soon as kubectl returned
    assert f"canary.canary.dev/{APP} condition met" in said
    assert phase(promoted) == "Succeeded"
    assert promoted["status"]["lastPromotedSpec"] == revision
    assert "Reconciling" not in conditions(promoted)

    await deploy(kube, namespace, {"revision": "3", "devenv.canary.dev/error-rate": "0.2"})
    stalling = await kubectl_wait(environment, namespace, "Stalled")
    await finished(stalling)
    failed = await canary_object(kube, namespace)
    stalled, ready = conditions(failed)["Stalled"], conditions(failed)["Ready"]
    assert phase(failed) == "Failed"
    assert (stalled["status"], stalled["reason"]) == ("True", "AnalysisFailed")
    assert "request-success-rate" in stalled["message"]
    assert (ready["status"], ready["reason"]) == ("False", "RolledBack")
    assert "Reconciling" not in conditions(failed)


async def test_observed_generation_follows_the_generation(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace)
    first = await canary_object(kube, namespace)
    assert first["status"]["observedGeneration"] == first["metadata"]["generation"]
    changed = await kube.merge_patch(r.CANARIES, APP, {"spec": {"analysis": {"threshold": 3}}},
                                     namespace)
    generation = changed["metadata"]["generation"]
    assert generation > first["metadata"]["generation"]
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: c["status"].get("observedGeneration") == generation,
                     "the new generation observed")
