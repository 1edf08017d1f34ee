"""The statistical judge end to end: the controller reads Istio's counters for the canary
and the primary from the real Prometheus (fed by the traffic simulator), rolls back a
proven regression, promotes early a canary proven healthy, warns when the traffic is too
low, and `canary backtest` replays the same evidence afterwards."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.devenv import LocalEnvironment
from canary.kube import Invalid, KubeClient
from canary.kube import resources as r
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import (
    APP,
    FIELD_MANAGER,
    History,
    canary_object,
    events,
    phase,
    primary,
    target_revision,
)
from tests.e2e.waiting import prometheus_value, wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

ERROR_RATE = "devenv.canary.dev/error-rate"
LATENCY = "devenv.canary.dev/latency-ms"


def judged_analysis(**judge: Any) -> dict[str, Any]:
    """3-second steps of 20% to 60%, judged on the error rate only (no thresholds)."""
    return {"interval": "3s", "threshold": 2, "maxWeight": 60, "stepWeight": 20,
            "judge": {"metrics": [{"name": "error-rate", "type": "errorRate",
                                   "minimumEffect": "1.5x"}], **judge}}


async def deploy(kube: KubeClient, namespace: str, revision: str, error_rate: float,
                 latency: str | None = None) -> None:
    annotations = {"revision": revision, ERROR_RATE: str(error_rate)}
    if latency is not None:
        annotations[LATENCY] = latency
    await kube.apply(manifests.deployment(APP, namespace, replicas=2, annotations=annotations),
                     field_manager=FIELD_MANAGER)


async def start(kube: KubeClient, env: LocalEnvironment, namespace: str,
                analysis: dict[str, Any], error_rate: float, rps: float,
                latency: str | None = None) -> dict[str, Any]:
    """Deployment (revision 1 failing ``error_rate`` of requests) + Canary + traffic;
    returns the Canary manifest once it is Initialized."""
    await deploy(kube, namespace, "1", error_rate, latency)
    manifest = manifests.canary(APP, namespace, analysis=analysis, progressDeadlineSeconds=60)
    await kube.create(r.CANARIES, manifest)
    await env.set_traffic(f"{APP}.{namespace}", rps=rps)
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Initialized",
                     "the Canary to be Initialized")
    # A release follows a while of service: let Prometheus see the primary's traffic.
    served = (f'sum(istio_requests_total{{reporter="destination",destination_workload_namespace='
              f'"{namespace}",destination_workload="{APP}-primary"}})')
    await wait_until(lambda: prometheus_value(env.prometheus_url, served),
                     lambda v: v is not None and v >= 3 * rps, "the primary to serve traffic")
    return manifest


async def canary_command(*argv: str) -> tuple[int, str, str]:
    """Run ``canary ARGV...`` as a user would; its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canary", *argv, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


def counted_exactly_once(metric: dict[str, Any]) -> bool:
    """Every request between the first and the last reading entered the evidence once:
    the judge's totals are the last cumulative reading minus the first."""
    keys = ("canaryRequests", "canaryEvents", "primaryRequests", "primaryEvents")
    return all(metric["state"][k] == metric["reading"][k] - metric["baseline"][k]
               for k in keys)


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


async def test_a_regression_is_rolled_back_with_the_judges_evidence_and_backtested(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        tmp_path: Path) -> None:
    manifest = await start(kube, environment, namespace, judged_analysis(), 0.01, rps=100)
    before = (await primary(kube, namespace))["metadata"]["annotations"][REVISION_ANNOTATION]
    await deploy(kube, namespace, "2", 0.2)
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=120)
    status = failed["status"]
    promoted = conditions(failed)["Promoted"]
    assert (promoted["status"], promoted["reason"]) == ("False", "RegressionDetected")
    assert "the judge found a regression in error-rate" in promoted["message"]
    assert status["failedChecks"] == 0, "the judge, not the thresholds, rolled back"

    judge = status["judge"]
    assert judge["outcome"] == "regression" and judge["revision"] == status["lastAppliedSpec"]
    [metric] = judge["metrics"]
    evidence = metric["evidence"]
    assert evidence["outcome"] == "regression"
    assert evidence["logRegression"] >= evidence["logRegressionBound"]
    # 20% errors against 1%: the estimate is far above the minimum effect.
    assert evidence["ratio"] > 3 and evidence["canaryEvents"] > 0
    assert evidence["canaryRequests"] > 0 and evidence["primaryRequests"] > 0
    assert metric["state"]["steps"] == evidence["steps"] >= 1
    assert len(metric["state"]["logLikelihoodRatios"]) == 20
    # The counts are differences: the readings were taken as cumulative counters.
    assert metric["baseline"]["primaryRequests"] > 0
    assert metric["skippedSteps"] == 0 and counted_exactly_once(metric)

    rolled_back = await wait_until(lambda: events(kube, namespace, "RolledBack"), bool,
                                   "a RolledBack event")
    note = rolled_back[-1]["note"]
    assert "regression in error-rate" in note and "ratio" in note and " in [" in note
    assert (await primary(kube, namespace))["metadata"]["annotations"][
        REVISION_ANNOTATION] == before
    await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, namespace),
                     lambda d: d["spec"]["replicas"] == 0, "the canary scaled to zero")

    # The backtest replays the same counters from Prometheus over the same period.
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(manifest))
    started = datetime.fromisoformat(status["analysisStartedAt"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(judge["lastReadingAt"].replace("Z", "+00:00"))
    window = ("-f", str(path), "--prometheus", environment.prometheus_url,
              "--start", f"{started.timestamp() - 2:.3f}",
              "--end", f"{ended.timestamp() + 3:.3f}", "--step", "3s")
    code, out, err = await canary_command("backtest", *window, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["verdict"]["outcome"] == "regression", result["summary"]
    assert result["verdict"]["metric"] == "error-rate"
    decided = [s for s in result["steps"] if s["evidence"]][-1]["evidence"]
    assert decided["ratio"] > 3
    code, out, err = await canary_command("backtest", *window)
    assert code == 0, err
    assert "verdict: regression in error-rate" in out


async def test_a_latency_regression_is_found_beyond_the_primarys_p99_bucket(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {**judged_analysis(), "judge": {"metrics": [
        {"name": "latency", "type": "latency", "quantile": 0.99, "minimumEffect": "2x"}]}}
    await start(kube, environment, namespace, analysis, 0.0, rps=100,
                latency="p50=100,p99=600")
    await deploy(kube, namespace, "2", 0.0, latency="p50=400,p99=2000")
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=120)
    [metric] = failed["status"]["judge"]["metrics"]
    # The primary's P99 (600 ms) lies in Istio's bucket up to 1000 ms: the bound, read
    # from the real histogram before the analysis.
    assert metric["bound"] == 1000
    assert metric["evidence"]["outcome"] == "regression"
    assert metric["evidence"]["canaryEvents"] > 0
    assert counted_exactly_once(metric)
    assert "regression in latency" in conditions(failed)["Promoted"]["message"]


async def test_a_healthy_canary_is_promoted_early_at_high_traffic(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    # Both versions fail 15% of requests: the canary is no worse. Twelve steps of 5% make
    # a 36 s schedule; at 300 req/s the judge proves "no regression of x1.5" well before.
    # alpha 0.001 keeps the chance of a false rollback (which would fail this test) tiny.
    analysis = {**judged_analysis(promoteEarly=True, alpha=0.001), "stepWeight": 5}
    await start(kube, environment, namespace, analysis, 0.15, rps=300)
    await deploy(kube, namespace, "2", 0.15)
    revision = await target_revision(kube, namespace)
    history = History()
    final = await wait_until(
        lambda: canary_object(kube, namespace),
        lambda c: bool(history.record(c)) and phase(c) == "Succeeded"
        and c["status"].get("lastPromotedSpec") == revision,
        "the early promotion of revision 2", timeout=150, interval=0.1)
    schedule = list(range(5, 61, 5))
    reached = max(history.weights())
    assert reached < 60, f"walked the whole schedule: {history.weights()}"
    judge = final["status"]["judge"]
    assert judge["outcome"] == "no_regression_proven"
    # Fewer analysis steps than the schedule has (12 steps of 3 s).
    assert judge["steps"] < len(schedule)
    [metric] = judge["metrics"]
    assert metric["provenAtStep"] is not None
    assert metric["evidence"]["logNoRegression"] >= metric["evidence"]["logNoRegressionBound"] \
        or metric["provenAtStep"] < metric["evidence"]["steps"]
    assert metric["skippedSteps"] == 0 and counted_exactly_once(metric)
    promoting = await wait_until(lambda: events(kube, namespace, "Promoting"), bool,
                                 "a Promoting event")
    note = promoting[-1]["note"]
    assert "The judge proved no regression" in note
    remaining = len([w for w in schedule if w > reached])
    assert f"skipping the remaining {remaining} step" in note
    assert (await primary(kube, namespace))["spec"]["template"]["metadata"]["annotations"][
        "revision"] == "2"


async def test_too_little_traffic_is_reported_in_status(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, judged_analysis(), 0.1, rps=4)
    await deploy(kube, namespace, "2", 0.1)
    warned = await wait_until(
        lambda: canary_object(kube, namespace),
        lambda c: conditions(c).get("TrafficSufficient", {}).get("status") == "False",
        "the TrafficSufficient condition to turn False", timeout=120)
    traffic = conditions(warned)["TrafficSufficient"]
    assert traffic["reason"] == "InsufficientTraffic"
    assert "error-rate" in traffic["message"] and "x1.5" in traffic["message"]
    # At 4 req/s, 10% failing: "would take about ...s to detect", or, if the primary has
    # not failed a single request yet, that no ratio can be measured.
    assert "would take" in traffic["message"] or "shows no events" in traffic["message"]
    power = warned["status"]["judge"]["metrics"][0]["power"]
    assert power["detectable"] is False and power["analysisSeconds"] == 9
    assert await wait_until(lambda: events(kube, namespace, "InsufficientTraffic"), bool,
                            "an InsufficientTraffic event")
    # A warning, not a verdict: the rollout goes on by its schedule.
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) in ("Succeeded", "Failed"), "the rollout to end",
                     timeout=120)
    assert phase(await canary_object(kube, namespace)) == "Succeeded"


async def test_a_controller_killed_mid_analysis_resumes_the_evidence_exactly(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        running_controller: ControllerProcess) -> None:
    analysis = {**judged_analysis(alpha=0.001), "stepWeight": 10}
    await start(kube, environment, namespace, analysis, 0.05, rps=100)
    await deploy(kube, namespace, "2", 0.05)
    revision = await target_revision(kube, namespace)
    under_way = await wait_until(
        lambda: canary_object(kube, namespace),
        lambda c: ((c.get("status") or {}).get("judge") or {}).get("steps", 0) >= 2,
        "two judged steps")
    running_controller.kill()
    stopped = (await canary_object(kube, namespace))["status"]["judge"]
    assert stopped["steps"] >= under_way["status"]["judge"]["steps"]
    await asyncio.sleep(4)  # the counters keep counting while nobody reads them
    running_controller.start()
    final = await wait_until(lambda: canary_object(kube, namespace),
                             lambda c: phase(c) == "Succeeded"
                             and c["status"].get("lastPromotedSpec") == revision,
                             "the rollout to finish after the restart", timeout=120)
    judge = final["status"]["judge"]
    [before], [after] = stopped["metrics"], judge["metrics"]
    assert judge["steps"] > stopped["steps"]
    assert after["baseline"] == before["baseline"]
    assert after["state"]["steps"] > before["state"]["steps"]
    # The step across the restart counted the requests served while the controller was
    # down, once: nothing lost, nothing counted twice.
    assert after["skippedSteps"] == 0 and counted_exactly_once(after)
    assert after["state"]["primaryRequests"] >= before["state"]["primaryRequests"] + 300


def _judge(**fields: Any) -> Any:
    def change(m: dict[str, Any]) -> None:
        m["spec"]["analysis"]["judge"] = {
            "metrics": [{"name": "error-rate", "type": "errorRate"}], **fields}
    return change


def _judged_metric(**fields: Any) -> Any:
    return _judge(metrics=[{"name": "m", **fields}])


@pytest.mark.parametrize(("change", "message"), [
    (_judged_metric(type="errorRate", minimumEffect="1x"), "ratio must be above 1"),
    (_judged_metric(type="errorRate", minimumEffect="+0%"), "must be above +0%"),
    (_judged_metric(type="errorRate", minimumEffect="+100pp"), "between +0pp and +100pp"),
    (_judged_metric(type="errorRate", minimumEffect="half"), "minimumEffect"),
    (_judged_metric(type="latency"), "needs bound or quantile"),
    (_judged_metric(type="errorRate", bound=500), "latency metrics only"),
    (_judge(alpha=0.6), "alpha"),
    (_judge(metrics=[{"name": "a", "type": "errorRate"}, {"name": "a", "type": "errorRate"}]),
     "names must be unique"),
], ids=["ratio-1", "zero-percent", "hundred-points", "not-an-effect", "latency-no-bound",
        "bound-on-errors", "alpha", "duplicate-names"])
async def test_an_invalid_judge_is_refused(kube: KubeClient, namespace: str, change: Any,
                                           message: str) -> None:
    manifest = manifests.canary("web", namespace)
    change(manifest)
    with pytest.raises(Invalid) as refused:
        await kube.create(r.CANARIES, manifest)
    assert message in refused.value.message


async def test_the_judge_needs_randomly_shared_traffic(kube: KubeClient,
                                                       namespace: str) -> None:
    manifest = manifests.canary("web", namespace, analysis={
        "interval": "1m", "threshold": 1, "iterations": 5,
        "judge": {"metrics": [{"name": "e", "type": "errorRate"}]}})
    with pytest.raises(Invalid) as refused:
        await kube.create(r.CANARIES, manifest)
    assert "weighted canary or blue/green mirroring" in refused.value.message
    manifest["spec"]["analysis"]["mirror"] = True
    created = await kube.create(r.CANARIES, manifest)
    assert created["spec"]["analysis"]["judge"]["metrics"][0]["type"] == "errorRate"


async def test_a_valid_judge_is_accepted_as_written(kube: KubeClient, namespace: str) -> None:
    judge = {"alpha": 0.05, "beta": 0.1, "promoteEarly": True, "metrics": [
        {"name": "error-rate", "type": "errorRate", "minimumEffect": "+0.5pp"},
        {"name": "latency", "type": "latency", "bound": 500, "minimumEffect": "+20%"},
        {"name": "tail", "type": "latency", "quantile": 0.99, "minimumEffect": "2x"}]}
    manifest = manifests.canary("web", namespace)
    manifest["spec"]["analysis"]["judge"] = judge
    created = await kube.create(r.CANARIES, manifest)
    assert created["spec"]["analysis"]["judge"] == judge
