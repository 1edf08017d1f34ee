"""Weighted canary rollouts on Istio, end to end: the controller, the real control plane,
the traffic simulator and Prometheus."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import (
    ANALYSIS,
    APP,
    History,
    canary_object,
    deploy,
    events,
    phase,
    primary,
    start,
    target_revision,
)
from tests.e2e.waiting import prometheus_value, wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


async def _recorded(kube: KubeClient, namespace: str, history: History) -> dict[str, Any]:
    return history.record(await canary_object(kube, namespace))


async def test_a_healthy_revision_is_promoted_step_by_step(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace)
    # The status is written before the actions run, so the scale-down may lag a moment.
    await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, namespace),
                     lambda d: d["spec"]["replicas"] == 0, "the target scaled to zero")
    # Another team owns a few fields of the generated VirtualService: they must survive.
    await kube.apply({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                      "metadata": {"name": APP, "namespace": namespace,
                                   "labels": {"team": "payments"}},
                      "spec": {"exportTo": ["."]}}, field_manager="platform-team")
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    history = History()
    final = await wait_until(lambda: _recorded(kube, namespace, history),
                             lambda c: phase(c) == "Succeeded" and
                             c["status"].get("lastPromotedSpec") == revision,
                             "the promotion of revision 2", timeout=120, interval=0.1)
    assert history.weights() == [0, 20, 40, 60, 0]
    promoted = await primary(kube, namespace)
    assert promoted["spec"]["template"]["metadata"]["annotations"]["revision"] == "2"
    assert promoted["metadata"]["annotations"][REVISION_ANNOTATION] == revision
    # Routing back to the primary, then the scale-down, follow the status write.
    await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, namespace),
                     lambda d: d["spec"]["replicas"] == 0, "the canary scaled to zero")
    condition = {c["type"]: c for c in final["status"]["conditions"]}["Promoted"]
    assert (condition["status"], condition["reason"]) == ("True", "Succeeded")
    analysis = final["status"]["lastAnalysis"]
    assert {m["name"]: m["verdict"] for m in analysis["results"]} == {
        "request-success-rate": "Passed", "request-duration": "Passed"}
    vs = await kube.get(r.VIRTUAL_SERVICES, APP, namespace)
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [100, 0]
    assert vs["spec"]["exportTo"] == ["."] and vs["metadata"]["labels"]["team"] == "payments"

    # Someone moves the weights by hand: the controller puts them back.
    vs["spec"]["http"][0]["route"][0]["weight"] = 50
    vs["spec"]["http"][0]["route"][1]["weight"] = 50
    await kube.replace(r.VIRTUAL_SERVICES, vs)
    await wait_until(lambda: kube.get(r.VIRTUAL_SERVICES, APP, namespace),
                     lambda v: [d["weight"] for d in v["spec"]["http"][0]["route"]] == [100, 0],
                     "the controller to restore the weights")


@pytest.mark.parametrize(("annotations", "metric"), [
    ({"devenv.canary.dev/error-rate": "0.2"}, "request-success-rate"),
    ({"devenv.canary.dev/latency-ms": "p50=400,p99=2000"}, "request-duration"),
], ids=["error-rate", "latency"])
async def test_a_regression_is_rolled_back_naming_metric_and_value(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        annotations: dict[str, str], metric: str) -> None:
    await start(kube, environment, namespace)
    before = (await primary(kube, namespace))["metadata"]["annotations"][REVISION_ANNOTATION]
    await deploy(kube, namespace, {"revision": "2", **annotations})
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=120)
    status = failed["status"]
    assert status["failedChecks"] == 2 and status["canaryWeight"] == 0
    result = {m["name"]: m for m in status["lastAnalysis"]["results"]}[metric]
    assert result["verdict"] == "Failed"
    if metric == "request-success-rate":
        # About 80%; the first checks see only tens of requests, so the estimate is rough.
        assert 50 < result["value"] < 95 and result["min"] == 99
    else:
        assert result["value"] > 500 and result["max"] == 500
    condition = {c["type"]: c for c in status["conditions"]}["Promoted"]
    assert (condition["status"], condition["reason"]) == ("False", "AnalysisFailed")
    assert metric in condition["message"]
    rolled_back = await wait_until(lambda: events(kube, namespace, "RolledBack"), bool,
                                   "a RolledBack event")
    assert metric in rolled_back[-1]["note"] and "failed checks 2/2" in rolled_back[-1]["note"]
    assert (await primary(kube, namespace))["metadata"]["annotations"][
        REVISION_ANNOTATION] == before
    await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, namespace),
                     lambda d: d["spec"]["replicas"] == 0, "the canary scaled to zero")
    vs = await kube.get(r.VIRTUAL_SERVICES, APP, namespace)
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [100, 0]


async def test_a_change_pushed_mid_analysis_restarts_it_on_the_newest_revision(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace)
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: (c["status"].get("canaryWeight") or 0) >= 20,
                     "the analysis of revision 2 to be under way")
    await deploy(kube, namespace, {"revision": "3"})
    newest = await target_revision(kube, namespace)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == newest,
                     "revision 3 to be promoted", timeout=120)
    promoted = await primary(kube, namespace)
    assert promoted["spec"]["template"]["metadata"]["annotations"]["revision"] == "3"
    notes = [e["note"] for e in await events(kube, namespace)]
    assert any("restarting the analysis" in note for note in notes), notes


async def test_killing_the_controller_mid_rollout_does_not_lose_or_repeat_work(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        running_controller: ControllerProcess) -> None:
    await start(kube, environment, namespace)
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Progressing" and
                     (c["status"].get("canaryWeight") or 0) >= 20,
                     "the rollout to be in progress")
    running_controller.kill()
    stopped_at = (await canary_object(kube, namespace))["status"]
    await asyncio.sleep(3)
    assert (await canary_object(kube, namespace))["status"] == stopped_at, \
        "something changed the status while the controller was down"
    running_controller.start()
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == revision,
                     "the rollout to finish after the restart", timeout=120)
    # Events are written after the status; give the last one a moment to land.
    promotions = await wait_until(
        lambda: events(kube, namespace, "Promoted"),
        lambda found: any(revision in e["note"] for e in found), "the Promoted event")
    await asyncio.sleep(2)
    promotions = [e for e in await events(kube, namespace, "Promoted") if revision in e["note"]]
    # One event, said once: a repeat would show as a second event or as a count.
    assert [e.get("deprecatedCount") for e in promotions] == [1], \
        [e["note"] for e in promotions]


async def test_a_canary_whose_deployment_is_missing_gets_a_condition_and_an_event(
        kube: KubeClient, namespace: str, running_controller: ControllerProcess) -> None:
    await kube.create(r.CANARIES, manifests.canary("ghost", namespace))
    found = await wait_until(
        lambda: canary_object(kube, namespace, "ghost"),
        lambda c: any(x["type"] == "Ready" and x["reason"] == "TargetNotFound"
                      for x in (c.get("status") or {}).get("conditions") or []),
        "a TargetNotFound condition")
    ready = {c["type"]: c for c in found["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False" and f"{namespace}/ghost not found" in ready["message"]
    assert await wait_until(lambda: events(kube, namespace, "TargetNotFound"), bool,
                            "a TargetNotFound event")
    assert running_controller.running()


async def test_deleting_a_canary_with_revert_on_deletion_keeps_traffic_flowing(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, revertOnDeletion=True)
    await kube.delete(r.CANARIES, APP, namespace)
    await wait_until(lambda: kube.list(r.CANARIES, namespace), lambda found: not found["items"],
                     "the Canary to be gone")
    target = await kube.get(r.DEPLOYMENTS, APP, namespace)
    assert target["spec"]["replicas"] == 2
    apex = await kube.get(r.SERVICES, APP, namespace)
    assert apex["spec"]["selector"] == {"app": APP}
    await wait_until(lambda: kube.list(r.DEPLOYMENTS, namespace),
                     lambda found: [d["metadata"]["name"] for d in found["items"]] == [APP],
                     "the primary to be garbage-collected")
    query = (f'sum(istio_requests_total{{reporter="destination",'
             f'destination_workload_namespace="{namespace}",destination_workload="{APP}",'
             f'response_code="200"}})')
    before = await prometheus_value(environment.prometheus_url, query) or 0.0
    await wait_until(lambda: prometheus_value(environment.prometheus_url, query),
                     lambda v: v is not None and v > before + 200,
                     "successful requests to the target after the deletion")


ERROR_PERCENT = (
    '100 * sum(rate(istio_requests_total{reporter="destination",'
    'destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",'
    'response_code=~"{{ variables.codes }}"}[{{ interval }}])) / '
    'sum(rate(istio_requests_total{reporter="destination",'
    'destination_workload_namespace="{{ namespace }}",'
    'destination_workload="{{ target }}"}[{{ interval }}]))')


async def test_a_metric_template_with_variables_judges_the_canary(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await kube.create(r.METRIC_TEMPLATES, {
        "apiVersion": "canary.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "error-percent", "namespace": namespace},
        "spec": {"provider": {"type": "prometheus", "address": environment.prometheus_url},
                 "query": ERROR_PERCENT}})
    analysis = {**ANALYSIS, "metrics": [{
        "name": "error-percent", "templateRef": {"name": "error-percent"},
        "templateVariables": {"codes": "5.."}, "interval": "10s",
        "thresholdRange": {"max": 5}}]}
    await start(kube, environment, namespace, analysis=analysis)
    await deploy(kube, namespace, {"revision": "2", "devenv.canary.dev/error-rate": "0.3"})
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=120)
    result = failed["status"]["lastAnalysis"]["results"][0]
    assert result["name"] == "error-percent" and result["verdict"] == "Failed"
    assert 10 < result["value"] < 60 and result["max"] == 5
    assert 'response_code=~"5.."' in result["query"]
