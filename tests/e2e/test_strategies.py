"""Each delivery strategy shapes traffic as it promises, seen through the mesh's metrics,
on Istio and through a Gateway API Gateway (``spec.provider: gatewayapi:v1``)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from tests.e2e.rollout import (
    APP,
    SUCCESS_RATE,
    canary_object,
    deploy,
    phase,
    promotion_history,
    target_revision,
)
from tests.e2e.routed import PROVIDERS, Routing, start
from tests.e2e.waiting import prometheus_value, wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


@pytest.fixture(params=PROVIDERS)
def routing(request: pytest.FixtureRequest, namespace: str) -> Routing:
    """Each test once on Istio, once through a Gateway."""
    return Routing(str(request.param), namespace)



def requests(namespace: str, workload: str, reporter: str = "destination") -> str:
    return (f'sum(istio_requests_total{{reporter="{reporter}",'
            f'destination_workload_namespace="{namespace}",destination_workload="{workload}"}})')


async def value(env: LocalEnvironment, query: str) -> float:
    return await prometheus_value(env.prometheus_url, query) or 0.0


async def analysing(kube: KubeClient, namespace: str) -> dict[str, Any]:
    return await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: phase(c) == "Progressing"
                            and bool(c["status"].get("analysisStartedAt")),
                            "the analysis to start")


async def succeeded(kube: KubeClient, namespace: str, revision: str) -> dict[str, Any]:
    return await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: phase(c) == "Succeeded"
                            and c["status"].get("lastPromotedSpec") == revision,
                            "the promotion", timeout=120)


async def test_ab_testing_sends_only_matched_users_to_the_canary(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        routing: Routing) -> None:
    regex = r"^(.*?;\s*)?(canary=always)(;.*)?$"
    cookie = {"headers": {"cookie": {"regex": regex}}}
    analysis = {"interval": "5s", "threshold": 2, "iterations": 3, "metrics": SUCCESS_RATE,
                "match": [cookie]}
    await start(kube, environment, routing, analysis)
    host = routing.users_host
    # One user in four opted in; every user carries another cookie too.
    await routing.send(environment, rps=100, mix={
        "users": 400, "profiles": [
            {"weight": 1, "cookies": {"theme": "dark", "canary": "always"}},
            {"weight": 3, "cookies": {"theme": "dark", "canary": "never"}}]})
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    status = (await analysing(kube, namespace))["status"]
    assert status["strategy"] == "ABTesting" and status["canaryWeight"] == 0
    # The status is written before the routing it decides: wait for the A/B rule.
    first = (await wait_until(lambda: routing.main_rules(kube), lambda rules: len(rules) == 2,
                              "the A/B rule before the main one", timeout=10))[0]
    if routing.gateway_api:
        assert [m["headers"] for m in first["matches"]] == [[
            {"name": "cookie", "type": "RegularExpression", "value": regex}]]
    else:
        assert first["match"] == analysis["match"]
    await asyncio.sleep(3)
    before = [await value(environment, requests(namespace, w)) for w in (APP, f"{APP}-primary")]
    await asyncio.sleep(4)
    after = [await value(environment, requests(namespace, w)) for w in (APP, f"{APP}-primary")]
    users = await environment.users(host)
    assert phase(await canary_object(kube, namespace)) == "Progressing"
    canary_share = (after[0] - before[0]) / ((after[0] - before[0]) + (after[1] - before[1]))
    # A quarter of the users opted in; the main route gives the canary 0%.
    assert canary_share == pytest.approx(0.25, abs=0.1)
    # The opted-in users are answered by the canary from the start of the analysis (some
    # by the primary before it) and everyone else by the primary: nobody ever went back.
    assert users["switches"].get(f"{APP} -> {APP}-primary", 0) == 0, users
    assert users["switches"].get(f"{APP}-primary -> {APP}", 0) <= 150, users
    assert 60 <= users["lastAnsweredBy"].get(APP, 0) <= 140, users
    final = await succeeded(kube, namespace, revision)
    assert final["status"]["iterations"] == 3


async def test_blue_green_mirroring_copies_traffic_but_users_get_primary_answers(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        routing: Routing) -> None:
    analysis = {"interval": "5s", "threshold": 2, "iterations": 3, "mirror": True,
                "mirrorWeight": 40, "metrics": SUCCESS_RATE}
    await start(kube, environment, routing, analysis)
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    assert (await analysing(kube, namespace))["status"]["strategy"] == "BlueGreenMirroring"
    await wait_until(lambda: value(environment, requests(namespace, APP)), lambda v: v > 50,
                     "mirrored requests at the canary")
    before = [await value(environment, requests(namespace, w)) for w in (APP, f"{APP}-primary")]
    await asyncio.sleep(4)
    after = [await value(environment, requests(namespace, w)) for w in (APP, f"{APP}-primary")]
    assert phase(await canary_object(kube, namespace)) == "Progressing"
    # Every user request reaches the primary; mirrorWeight percent of them are copied.
    copied = (after[0] - before[0]) / (after[1] - before[1])
    assert copied == pytest.approx(0.4, abs=0.12)
    answered_by_canary = await value(environment, requests(namespace, APP, reporter="source"))
    assert answered_by_canary == 0, "a user got a response from the mirrored canary"
    first = (await routing.main_rules(kube))[0]
    if routing.gateway_api:
        assert [f["requestMirror"]["percent"] for f in first["filters"]] == [40]
    else:
        assert first["mirrorPercentage"] == {"value": 40.0}
    await succeeded(kube, namespace, revision)


async def test_blue_green_keeps_users_on_the_primary_then_switches_at_once(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        routing: Routing) -> None:
    analysis = {"interval": "4s", "threshold": 2, "iterations": 2, "metrics": SUCCESS_RATE}
    await start(kube, environment, routing, analysis)
    # As a load tester would: requests straight to the canary Service give it metrics.
    await environment.set_traffic(f"{APP}-canary.{namespace}", rps=30)
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    await analysing(kube, namespace)
    await wait_until(lambda: value(environment, requests(namespace, APP)), lambda v: v > 60,
                     "the canary to serve its own Service's requests")
    # The simulator says which workload answered each of the users (the load tester's
    # requests are not theirs): all of them the primary, none the canary.
    users = await environment.users(routing.users_host)
    assert phase(await canary_object(kube, namespace)) == "Progressing"
    assert set(users["lastAnsweredBy"]) == {f"{APP}-primary"}, users
    assert not any(switch.endswith(f"-> {APP}") for switch in users["switches"]), users
    history = await promotion_history(kube, namespace, revision)
    # Never a share in between: all of the traffic moves at once (and the switch to the
    # canary, before the primary takes the new revision, may be quicker than a poll).
    assert history.weights() in ([0, 100, 0], [0])
    assert ("Progressing", 0) in history.seen


async def test_gradual_promotion_walks_traffic_back_to_the_primary(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        routing: Routing) -> None:
    # A generous threshold: the weights are the subject here, and on a busy machine the
    # first checks after traffic moves may find no canary series in Prometheus yet.
    analysis = {"interval": "3s", "threshold": 5, "stepWeights": [20, 40],
                "stepWeightPromotion": 20, "metrics": SUCCESS_RATE}
    await start(kube, environment, routing, analysis)
    await deploy(kube, namespace, {"revision": "2"})
    history = await promotion_history(kube, namespace, await target_revision(kube, namespace))
    assert history.weights() == [0, 20, 40, 20, 0]
    assert ("Promoting", 20) in history.seen


async def test_with_session_affinity_a_user_who_reached_the_canary_stays_there(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        routing: Routing) -> None:
    analysis = {"interval": "3s", "threshold": 2, "stepWeights": [10, 30, 60],
                "metrics": SUCCESS_RATE,
                "sessionAffinity": {"cookieName": "canary-affinity", "maxAge": 3600}}
    await start(kube, environment, routing, analysis)
    host = routing.users_host
    await routing.send(environment, rps=150, mix={"users": 300})
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    at_top = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: (c["status"].get("canaryWeight") or 0) == 60,
                              "the canary to reach its last weight")
    assert at_top["status"]["phase"] == "Progressing"
    sticky = (await routing.main_rules(kube))[0]
    regex = (sticky["matches"][0]["headers"][0]["value"] if routing.gateway_api
             else sticky["match"][0]["headers"]["cookie"]["regex"])
    assert re.fullmatch(regex, f"theme=dark; canary-affinity={revision}")
    assert not re.fullmatch(regex, "canary-affinity=other")
    users = await environment.users(host)
    on_canary = users["lastAnsweredBy"].get(APP, 0)
    assert on_canary > 50, users
    # Users moved to the canary as weights grew, but none went back to the primary.
    assert users["switches"].get(f"{APP}-primary -> {APP}", 0) > 0, users
    assert users["switches"].get(f"{APP} -> {APP}-primary", 0) == 0, users
    await succeeded(kube, namespace, revision)
