"""`canary promote | abort | pause | resume`, from the command line, survive restarts."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from canary.core import template_hash
from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.models.annotations import ABORT_ANNOTATION, APPROVE_ANNOTATION, PROMOTE_ANNOTATION
from canary.targets import configs
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import (
    ANALYSIS,
    APP,
    FIELD_MANAGER,
    canary_object,
    deploy,
    phase,
    promotion_history,
    start,
    target_revision,
)
from tests.e2e.waiting import wait_until
from tests.unit.core.test_argocd_health import health as argocd_health

pytestmark = pytest.mark.usefixtures("running_controller")

SLOW = {**ANALYSIS, "interval": "20s", "maxWeight": 50, "stepWeight": 10}


async def run_cli(env: LocalEnvironment, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canary", *args, "--kubeconfig", str(env.kubeconfig),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def cli(env: LocalEnvironment, *args: str) -> str:
    code, out, err = await run_cli(env, *args)
    assert code == 0, err
    return out


async def served(kube: KubeClient, namespace: str, annotation: str) -> None:
    """A request the controller carried out leaves the Canary."""
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: annotation not in (c["metadata"].get("annotations") or {}),
                     f"{annotation} to be removed once served")


async def held(kube: KubeClient, environment: LocalEnvironment, namespace: str) -> str:
    """Revision 2, which refers to a ConfigMap, held by a confirm-rollout gate nobody
    answers (a closed loopback port); returns that revision as the controller computes
    it (the template with the ConfigMap's data)."""
    gate = {"name": "approval", "type": "confirm-rollout", "url": "http://127.0.0.1:9/",
            "timeout": "1s"}
    await start(kube, environment, namespace, analysis={**ANALYSIS, "webhooks": [gate]})
    name = f"{APP}-config"
    await kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": name, "namespace": namespace},
                      "data": {"color": "green"}}, field_manager=FIELD_MANAGER)
    deployment = manifests.deployment(APP, namespace, replicas=2,
                                      annotations={"revision": "2"})
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": name}}]
    await kube.apply(deployment, field_manager=FIELD_MANAGER)
    stored = await kube.get(r.CONFIG_MAPS, name, namespace)
    template = (await kube.get(r.DEPLOYMENTS, APP, namespace))["spec"]["template"]
    revision = configs.revision(template, lambda kind, config: stored if (
        kind, config) == (configs.CONFIG_MAP, name) else None)
    assert revision != template_hash(template)  # the ConfigMap's data counts
    waiting = await wait_until(lambda: canary_object(kube, namespace),
                               lambda c: phase(c) == "Waiting", "the rollout to be held")
    assert argocd_health(waiting)[0] == "Progressing"  # docs/argocd-health.lua
    return revision


async def in_progress(kube: KubeClient, namespace: str) -> None:
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Progressing" and c["status"].get("canaryWeight"),
                     "the rollout to be under way")


async def test_promote_skips_the_remaining_steps(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, analysis=SLOW)
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    await in_progress(kube, namespace)
    said = await cli(environment, "promote", APP, "-n", namespace)
    assert f"promote of revision {revision} requested" in said
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == revision,
                     "the promotion", timeout=15)  # far less than the 4 steps of 20 s left


async def test_abort_given_while_the_controller_is_down_is_carried_out_after_restart(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        running_controller: ControllerProcess) -> None:
    await start(kube, environment, namespace, analysis=SLOW)
    await deploy(kube, namespace, {"revision": "2"})
    await in_progress(kube, namespace)
    running_controller.kill()
    await cli(environment, "abort", APP, "-n", namespace)
    running_controller.start()
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the abort")
    promoted = {c["type"]: c for c in failed["status"]["conditions"]}["Promoted"]
    assert promoted["reason"] == "AbortRequested"


async def test_promote_given_while_the_controller_is_down_is_carried_out_after_restart(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        running_controller: ControllerProcess) -> None:
    await start(kube, environment, namespace, analysis=SLOW)
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    await in_progress(kube, namespace)
    running_controller.kill()
    await cli(environment, "promote", APP, "-n", namespace)
    running_controller.start()
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == revision,
                     "the promotion after restart", timeout=40)  # 4 steps of 20 s were left
    await served(kube, namespace, PROMOTE_ANNOTATION)


async def test_abort_refuses_a_held_rollout_and_is_refused_once_it_has_ended(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    revision = await held(kube, environment, namespace)
    said = await cli(environment, "abort", APP, "-n", namespace)
    assert f"abort of revision {revision} requested" in said
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the refusal")
    assert failed["status"]["lastAppliedSpec"] == revision
    assert failed["status"]["lastPromotedSpec"] != revision
    promoted = {c["type"]: c for c in failed["status"]["conditions"]}["Promoted"]
    assert promoted["reason"] == "AbortRequested"
    assert "before its rollout started" in promoted["message"]
    primary = await kube.get(r.DEPLOYMENTS, f"{APP}-primary", namespace)
    assert primary["metadata"]["annotations"].get(REVISION_ANNOTATION) != revision
    await served(kube, namespace, ABORT_ANNOTATION)
    code, _, err = await run_cli(environment, "abort", APP, "-n", namespace)
    assert code != 0 and "is Failed: there is no rollout to abort" in err, err


async def test_promote_approves_a_held_rollout_whose_analysis_then_runs(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    revision = await held(kube, environment, namespace)
    said = await cli(environment, "promote", APP, "-n", namespace)
    assert f"approval of revision {revision} requested" in said
    history = await promotion_history(kube, namespace, revision)
    assert len(set(history.weights()) - {0}) >= 2, history.weights()  # analysed step by step
    await served(kube, namespace, APPROVE_ANNOTATION)


async def test_pause_freezes_the_rollout_and_resume_continues_it(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, analysis={**ANALYSIS, "interval": "2s"})
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    await in_progress(kube, namespace)
    await cli(environment, "pause", APP, "-n", namespace)
    paused = await wait_until(
        lambda: canary_object(kube, namespace),
        lambda c: any(x["type"] == "Paused" and x["status"] == "True"
                      for x in c["status"].get("conditions") or []), "the pause")
    await asyncio.sleep(6)  # three intervals
    frozen = await canary_object(kube, namespace)
    assert frozen["status"]["canaryWeight"] == paused["status"]["canaryWeight"]
    assert phase(frozen) == "Progressing"
    assert argocd_health(frozen)[0] == "Suspended"  # docs/argocd-health.lua
    await cli(environment, "resume", APP, "-n", namespace)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == revision,
                     "the rollout to finish after resuming", timeout=120)
