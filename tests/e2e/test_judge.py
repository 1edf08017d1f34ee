"""The statistical judge end to end: the controller reads Istio's counters for the canary
and the primary from the real Prometheus (fed by the traffic simulator), rolls back a
proven regression, promotes early a canary proven healthy, warns when the traffic is too
low, and `canary backtest` replays the same evidence afterwards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.devenv import LocalEnvironment
from canary.devenv.install import find_prometheus
from canary.devenv.traffic.routing import SIMULATOR
from canary.kube import Invalid, KubeClient
from canary.kube import resources as r
from canary.metrics.judgequery import judge_query
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import (
    APP,
    FIELD_MANAGER,
    History,
    canary_object,
    events,
    occurrences,
    phase,
    primary,
    target_revision,
)
from tests.e2e.waiting import prometheus_value, wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

ERROR_RATE = "devenv.canary.dev/error-rate"
ERROR_RATE_RAMP = "devenv.canary.dev/error-rate-ramp"
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


async def deploy_degrading(kube: KubeClient, namespace: str, revision: str, ramp: str) -> None:
    """A revision whose error rate follows ``ramp`` as its pods age: one template, so one
    revision, healthy at first and failing later."""
    annotations = {"revision": revision, ERROR_RATE_RAMP: ramp}
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
    # 5% on the primary, so that its errors in a 3-second step (12 expected) are never
    # zero: with none the ratio would be unbounded and have no estimate.
    manifest = await start(kube, environment, namespace, judged_analysis(), 0.05, rps=100)
    before = (await primary(kube, namespace))["metadata"]["annotations"][REVISION_ANNOTATION]
    await deploy(kube, namespace, "2", 0.4)
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
    # 40% errors against 5%: the estimate is far above the minimum effect.
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
    await start(kube, environment, namespace, analysis, 0.0, rps=300,
                latency="p50=100,p99=600")
    # 1.8% of the primary's requests are slower than 500 ms: over 3000 requests the P99
    # surely lies beyond that bucket bound (over a few hundred it may not).
    served = (f'sum(istio_requests_total{{reporter="destination",destination_workload_namespace='
              f'"{namespace}",destination_workload="{APP}-primary"}})')
    await wait_until(lambda: prometheus_value(environment.prometheus_url, served),
                     lambda v: v is not None and v >= 3000, "3000 requests on the primary")
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
    # a 36 s schedule; at 300 req/s the judge proves "no regression of x1.5" well before,
    # then again on the evidence of a 6-second bake at maxWeight alone.
    # alpha 0.001 keeps the chance of a false rollback (which would fail this test) tiny.
    analysis = {**judged_analysis(promoteEarly=True, alpha=0.001, bakeTime="6s"),
                "stepWeight": 5}
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
    weights = [w for w in history.weights() if w > 0]
    # From the weight of the proof straight to maxWeight, where it baked.
    assert weights[-1] == 60 and len(weights) >= 2 and weights[-2] < 55, history.weights()
    judge = final["status"]["judge"]
    assert judge["outcome"] == "no_regression_proven"
    # Fewer analysis steps than the schedule has (12 steps of 3 s).
    assert judge["steps"] < len(schedule)
    [metric] = judge["metrics"]
    assert metric["provenAtStep"] is not None
    assert metric["bakeLogNoRegression"] >= metric["evidence"]["logNoRegressionBound"]
    assert metric["skippedSteps"] == 0 and counted_exactly_once(metric)
    baking = await wait_until(lambda: events(kube, namespace, "Baking"), bool, "a Baking event")
    assert "bakes at maxWeight 60% for at least 6s" in baking[-1]["note"]
    promoting = await wait_until(lambda: events(kube, namespace, "Promoting"), bool,
                                 "a Promoting event")
    note = promoting[-1]["note"]
    assert "The judge proved no regression after a bake of" in note
    remaining = judge["bake"]["stepsLeft"] - 1
    assert remaining > 0 and f"skipping the remaining {remaining} step" in note
    assert (await primary(kube, namespace))["spec"]["template"]["metadata"]["annotations"][
        "revision"] == "2"


async def test_a_canary_that_degrades_while_baking_is_rolled_back_not_promoted(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """An early proof of no regression is not the last word: the canary goes straight to
    maxWeight to bake there, and a regression that starts then rolls it back."""
    # Both versions fail 40% of requests at first: with that many errors, at 300 req/s,
    # the judge proves "no regression of x1.5" within five 3-second steps (simulated: 4
    # runs in 10000 need five, none more), at most 15 s into the 36 s schedule. From 20 s
    # of age the new pods fail every request: found at 60% within a step or two, before
    # the 30 s bake or the time of the skipped steps could end in a promotion.
    analysis = {**judged_analysis(promoteEarly=True, alpha=0.001, bakeTime="30s"),
                "stepWeight": 5}
    await start(kube, environment, namespace, analysis, 0.4, rps=300)
    await deploy_degrading(kube, namespace, "2", "20s=0.4,22s=1")
    revision = await target_revision(kube, namespace)
    history = History()
    final = await wait_until(
        lambda: canary_object(kube, namespace),
        lambda c: bool(history.record(c)) and phase(c) in ("Failed", "Succeeded"),
        "the end of the rollout of revision 2", timeout=150, interval=0.1)
    assert phase(final) == "Failed", history.seen
    assert not {seen for seen, _ in history.seen} & {"Promoting", "Finalising", "Succeeded"}
    assert final["status"].get("lastPromotedSpec") != revision
    # Proven healthy early, the canary went from the weight of the proof to maxWeight.
    weights = [w for w in history.weights() if w > 0]
    assert weights[-1] == 60 and 2 <= len(weights) <= 6 and weights[-2] <= 25, weights
    promoted = conditions(final)["Promoted"]
    assert promoted["reason"] == "RegressionDetected", promoted
    assert "the judge found a regression in error-rate" in promoted["message"]
    await wait_until(lambda: events(kube, namespace, "RolledBack"), bool, "a RolledBack event",
                     timeout=10)
    reasons = [e["reason"] for e in await events(kube, namespace)]
    assert "Baking" in reasons, reasons
    assert "RolledBack" in reasons[reasons.index("Baking"):], reasons
    baking = (await events(kube, namespace, "Baking"))[-1]["note"]
    assert "bakes at maxWeight 60% for at least 30s" in baking
    assert (await primary(kube, namespace))["spec"]["template"]["metadata"]["annotations"][
        "revision"] == "1"


async def test_checks_between_steps_roll_back_before_the_step_ends(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {**judged_analysis(checkInterval="1s"), "interval": "20s"}
    await start(kube, environment, namespace, analysis, 0.01, rps=100)
    await deploy(kube, namespace, "2", 0.5)
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=120)
    status = failed["status"]
    promoted = conditions(failed)["Promoted"]
    assert promoted["reason"] == "RegressionDetected"
    assert "regression in error-rate between steps" in promoted["message"]
    started = datetime.fromisoformat(status["analysisStartedAt"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(promoted["lastTransitionTime"].replace("Z", "+00:00"))
    # Within the first 20-second step, at the first weight.
    assert (ended - started).total_seconds() < 20, (started, ended)
    assert status["judge"]["steps"] >= 1
    weights = [e["note"] for e in await events(kube, namespace, "WeightIncreased")]
    assert weights and all(note.endswith("weight to 20") for note in weights), weights


async def test_the_power_check_is_made_from_the_primary_s_traffic_before_the_rollout(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, {**judged_analysis(), "interval": "5s"},
                0.2, rps=150)
    # The release follows more than an interval of service, as it would in production.
    served = (f'sum(istio_requests_total{{reporter="destination",destination_workload_namespace='
              f'"{namespace}",destination_workload="{APP}-primary"}})')
    await wait_until(lambda: prometheus_value(environment.prometheus_url, served),
                     lambda v: v is not None and v >= 8 * 150, "eight seconds of service")
    await deploy(kube, namespace, "2", 0.2)
    before = await wait_until(
        lambda: canary_object(kube, namespace),
        lambda c: ((c["status"].get("judge") or {}).get("metrics") or [{}])[0].get(
            "power") is not None, "the first power check")
    judge = before["status"]["judge"]
    power = judge["metrics"][0]["power"]
    assert judge["steps"] == 0 and power["measured"] == "BeforeRollout", judge
    # All of the host's traffic reached the primary in the interval before.
    assert power["canaryRps"] == 0 and 100 <= power["primaryRps"] <= 200, power
    assert power["analysisSeconds"] == 15 and power["detectable"] is True
    traffic = conditions(before)["TrafficSufficient"]
    assert traffic["status"] == "True" and "before the rollout" in traffic["message"]
    after = await wait_until(
        lambda: canary_object(kube, namespace),
        lambda c: c["status"]["judge"]["steps"] >= 1, "the first judged step")
    assert after["status"]["judge"]["metrics"][0]["power"]["measured"] == "LastStep"


async def test_too_little_traffic_is_reported_in_status(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, judged_analysis(), 0.1, rps=4)
    await deploy(kube, namespace, "2", 0.1)
    # (A step in which the canary happens to get no request at all says NoRequests.)
    warned = await wait_until(
        lambda: canary_object(kube, namespace),
        lambda c: conditions(c).get("TrafficSufficient", {}).get("reason")
        == "InsufficientTraffic",
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
    # Past the models' bounds: refused here, never accepted and then ignored.
    (_judged_metric(type="errorRate", minimumEffect="2000x"), "at most 1000"),
    (_judged_metric(type="errorRate", minimumEffect="+100000%"), "at most +99900%"),
    (_judge(excludeSources=['load"}']), "excludeSources"),
    (_judged_metric(type="latency"), "needs bound or quantile"),
    (_judged_metric(type="errorRate", bound=500), "latency metrics only"),
    (_judge(alpha=0.6), "alpha"),
    (_judge(metrics=[{"name": "a", "type": "errorRate"}, {"name": "a", "type": "errorRate"}]),
     "names must be unique"),
], ids=["ratio-1", "zero-percent", "hundred-points", "not-an-effect", "ratio-2000",
        "percent-100000", "bad-source", "latency-no-bound", "bound-on-errors", "alpha",
        "duplicate-names"])
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
    judge = {"alpha": 0.05, "beta": 0.1, "promoteEarly": True, "bakeTime": "2m",
             "excludeSources": ["canary-loadtester"], "metrics": [
                 {"name": "error-rate", "type": "errorRate", "minimumEffect": "+0.5pp"},
                 {"name": "latency", "type": "latency", "bound": 500, "minimumEffect": "+20%"},
                 {"name": "tail", "type": "latency", "quantile": 0.99, "minimumEffect": "2x"},
                 {"name": "huge", "type": "errorRate", "minimumEffect": "1000x"},
                 {"name": "huge-percent", "type": "errorRate",
                  "minimumEffect": "+99900%"}]}
    manifest = manifests.canary("web", namespace)
    manifest["spec"]["analysis"]["judge"] = judge
    created = await kube.create(r.CANARIES, manifest)
    assert created["spec"]["analysis"]["judge"] == judge


async def test_a_judge_that_sees_no_requests_says_so_and_never_judges(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    # The simulator is the only source of requests: excluded, the judge sees none (as
    # with Istio's telemetry off or labels that do not match) and must say so.
    analysis = judged_analysis(excludeSources=[SIMULATOR.workload])
    await start(kube, environment, namespace, analysis, 0.01, rps=100)
    await deploy(kube, namespace, "2", 0.01)
    # Steps without requests are no evidence: the weight holds at its first step, and the
    # rollout is rolled back once none has arrived for the progress deadline (60 s).
    held = await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: conditions(c).get("Promoted", {}).get("reason")
                            == "WaitingForRequests", "the weight to hold", timeout=60)
    assert held["status"]["canaryWeight"] == 20 and held["status"]["noRequestsSince"]
    final = await wait_until(lambda: canary_object(kube, namespace),
                             lambda c: phase(c) == "Failed", "the rollback at the deadline",
                             timeout=120)
    promoted = conditions(final)["Promoted"]
    assert promoted["reason"] == "ProgressDeadlineExceeded"
    assert "no request reached the canary for" in promoted["message"]
    traffic = conditions(final)["TrafficSufficient"]
    assert (traffic["status"], traffic["reason"]) == ("False", "NoRequests")
    assert "no requests were seen" in traffic["message"]
    judge = final["status"]["judge"]
    [metric] = judge["metrics"]
    assert judge["steps"] == 0 and "state" not in metric and "evidence" not in metric
    assert metric["skippedSteps"] >= 4  # the reading before traffic and every step
    skipped = await wait_until(lambda: events(kube, namespace, "JudgeSkippedStep"),
                               lambda found: occurrences(found) >= 4,
                               "the skipped steps' events")
    assert all("no requests were seen" in e["note"] for e in skipped)


#: Series of istio_requests_total every 10 s from 0 s: (workload, pod, response code) ->
#: values, None being a stale marker (the pod went away, or a scrape failed).
SERIES: dict[tuple[str, str, str], list[int | None]] = {
    ("web", "a", "200"): [0, 100, 200, 300, 400, 500, 600, None],  # gone at 70 s
    ("web", "b", "200"): [100 * i for i in range(11)],
    ("web", "b", "503"): list(range(11)),
    ("web-primary", "p", "200"): [0, 100, 200, 300, None, 500, 600, 700, 800, 900, 1000],
    ("web-primary", "q", "200"): [0, 100, 200, 300, 400, 500, 600, 700, 5, 105, 205],
    ("web-primary", "r", "200"): [0, 100, 200, 300, 400, 3, 900, 1000, 1100, 1200, 1300],
}
#: (evaluation time, seconds since the previous reading) -> series lost per workload.
LOST = {(10, 10): {}, (20, 10): {}, (30, 10): {},
        (40, 10): {"web-primary": 1},  # p missed a scrape: vanished
        (50, 10): {"web-primary": 2},  # p came back; r went down
        (60, 10): {},
        (70, 10): {"web": 1},  # a went away
        (80, 10): {"web-primary": 1},  # q went down
        (90, 10): {},
        (60, 20): {"web-primary": 2}}  # r reset and regrew past its old count; p is back


def present(t: int, workload: str, codes: str) -> list[int]:
    """The values at ``t`` of the workload's series present then (codes: a prefix)."""
    return [value for key, values in SERIES.items()
            if key[0] == workload and key[2].startswith(codes) and t // 10 < len(values)
            and (value := values[t // 10]) is not None]


def promtool() -> Path:
    prometheus = find_prometheus()
    found = prometheus.parent / "promtool" if prometheus else None
    if found is None or not found.exists():
        pytest.fail("promtool, which comes with Prometheus, is needed next to it")
    return found


def test_the_judges_query_finds_every_series_that_would_bias_a_step(tmp_path: Path) -> None:
    """Prometheus's own engine (promtool) evaluates the controller's query over series
    that vanish, miss a scrape, reset, and reset hidden by growth: the sums are the
    counters', and ``lost`` names exactly the steps whose difference would be biased."""
    labels = ('reporter="destination",destination_workload_namespace="shop",'
              'destination_workload="{}",pod="{}",response_code="{}"')
    inputs = [{"series": "istio_requests_total{" + labels.format(*key) + "}",
               "values": " ".join("stale" if v is None else str(v) for v in values)}
              for key, values in SERIES.items()]
    tests = []
    for (t, since), lost in LOST.items():
        expected = []
        for workload in ("web", "web-primary"):
            for what, codes in (("requests", ""), ("errors", "5")):
                values = present(t, workload, codes)
                if values:
                    expected.append({"labels": f'{{canary_judge="{what}",destination_'
                                               f'workload="{workload}"}}',
                                     "value": sum(values)})
            if workload in lost:
                expected.append({"labels": f'{{canary_judge="lost",destination_workload='
                                           f'"{workload}"}}', "value": lost[workload]})
            before = present(t - since, workload, "")
            if before:  # the requests the previous reading saw, as Prometheus shows them now
                expected.append({"labels": f'{{canary_judge="previous",destination_'
                                           f'workload="{workload}"}}', "value": sum(before)})
        tests.append({"expr": judge_query("errorRate", "shop", ("web", "web-primary"),
                                          since=since),
                      "eval_time": f"{t}s", "exp_samples": expected})
    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "10s", "tests": [
        {"interval": "10s", "input_series": inputs, "promql_expr_test": tests}]}))
    checked = subprocess.run([str(promtool()), "test", "rules", str(path)],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
