"""gRPC rollouts routed by the Gateway API: a Canary with ``appProtocol: grpc`` gets a
GRPCRoute (never an HTTPRoute) attached to a Gateway of the simulator's class, whose gRPC
calls it splits as the weights say; a revision failing its calls (HTTP 200 with a gRPC
error, as Istio counts them) is rolled back by a gRPC success rate; and an A/B test sends
only the calls carrying its header to the canary."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r
from tests.e2e import routed
from tests.e2e.rollout import (
    APP,
    FIELD_MANAGER,
    canary_object,
    deploy,
    phase,
    promotion_history,
    target_revision,
)
from tests.e2e.routed import GATEWAY, Routing
from tests.e2e.test_gateway_api_rollouts import canary_share, primary_serves_all
from tests.e2e.waiting import prometheus_value, wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

JSON = dict[str, Any]
#: Users of a gRPC service: every request a gRPC call of one of two methods.
GRPC = {"content-type": "application/grpc"}
CALLS = [{"path": "/shop.Cart/Add", "method": "POST"},
         {"path": "/shop.Catalog/List", "method": "POST"}]
GRPC_USERS = {"users": 200, "profiles": [{"headers": GRPC}], "paths": CALLS}
#: The share of calls that were not OK, in percent: a failed gRPC call is HTTP 200.
GRPC_SUCCESS_RATE = (
    'sum(rate(istio_requests_total{reporter="destination",'
    'destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",'
    'grpc_response_status="0"}[{{ interval }}])) '
    '/ sum(rate(istio_requests_total{reporter="destination",'
    'destination_workload_namespace="{{ namespace }}",'
    'destination_workload="{{ target }}"}[{{ interval }}])) * 100')
METRICS = [{"name": "grpc-success-rate", "templateRef": {"name": "grpc-success-rate"},
            "interval": "10s", "thresholdRange": {"min": 99}}]


async def start(kube: KubeClient, env: LocalEnvironment, namespace: str, analysis: JSON,
                users: JSON = GRPC_USERS) -> Routing:
    """A Gateway, the gRPC success rate, the app and its gRPC Canary routed by the Gateway
    API, and ``users``' calls through the Gateway; returns once it is Initialized."""
    routing = Routing("gatewayapi:v1", namespace)
    await kube.apply(routed.gateway(namespace), field_manager=FIELD_MANAGER)
    await kube.create(r.METRIC_TEMPLATES, {
        "apiVersion": "canary.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "grpc-success-rate", "namespace": namespace},
        "spec": {"provider": {"type": "prometheus", "address": env.prometheus_url},
                 "query": GRPC_SUCCESS_RATE}})
    await deploy(kube, namespace, {"revision": "1"})
    canary = routing.canary(analysis, deadline=30)
    canary["spec"]["service"]["appProtocol"] = "grpc"
    await kube.create(r.CANARIES, canary)
    await routing.send(env, rps=100, mix=users)
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: phase(c) == "Initialized", "the Canary to be Initialized")
    # Initialized is written before the routing it decided.
    await wait_until(lambda: kube.list(r.GRPC_ROUTES, namespace),
                     lambda found: bool(found["items"]), "the GRPCRoute", timeout=10)
    return routing


def weights(route: JSON) -> list[int]:
    """The weights of the main rule's backends (primary, canary): the route's last rule."""
    return [ref["weight"] for ref in route["spec"]["rules"][-1]["backendRefs"]]


async def back_on_the_primary(kube: KubeClient, env: LocalEnvironment, namespace: str) -> None:
    """The GRPCRoute sends everything to the primary, and so does the Gateway."""
    await wait_until(lambda: kube.get(r.GRPC_ROUTES, APP, namespace),
                     lambda route: weights(route) == [100, 0],
                     "the GRPCRoute back on the primary", timeout=10)
    await primary_serves_all(env, namespace)


def calls(namespace: str, workload: str, labels: str = "") -> str:
    """The calls through the Gateway ``workload`` answered, with further ``labels``."""
    return (f'sum(istio_requests_total{{reporter="destination",source_workload="{GATEWAY}",'
            f'destination_workload_namespace="{namespace}",destination_workload="{workload}"'
            f'{labels}}})')


async def test_a_weighted_grpc_canary_is_promoted_step_by_step_through_a_grpc_route(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {"interval": "8s", "threshold": 5, "stepWeights": [20, 50], "metrics": METRICS}
    await start(kube, environment, namespace, analysis)
    route = await kube.get(r.GRPC_ROUTES, APP, namespace)
    assert [ref["name"] for ref in route["spec"]["parentRefs"]] == [GATEWAY]
    with pytest.raises(NotFound):
        await kube.get(r.HTTP_ROUTES, APP, namespace)
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: c["status"].get("canaryWeight") == 50,
                     "the canary at weight 50", timeout=60)
    # The status is written before the routing it decides: wait for the route.
    await wait_until(lambda: kube.get(r.GRPC_ROUTES, APP, namespace),
                     lambda route: weights(route) == [50, 50], "the route at 50/50",
                     timeout=10)
    # The Gateway splits the gRPC calls as the GRPCRoute says, and they are gRPC calls.
    # The Gateway follows the route once its watch sees it, and Prometheus scrapes once a
    # second: the window starts once both have caught up, and ends inside the 8 s step.
    await asyncio.sleep(1.5)
    assert await canary_share(environment, namespace, 3) == pytest.approx(0.5, abs=0.15)
    grpc_ok = await prometheus_value(environment.prometheus_url, calls(
        namespace, APP, ',request_protocol="grpc",grpc_response_status="0"'))
    assert grpc_ok is not None and grpc_ok > 0
    assert await prometheus_value(environment.prometheus_url, calls(
        namespace, APP, ',request_protocol!="grpc"')) is None
    history = await promotion_history(kube, namespace, revision)
    assert history.weights()[-2:] == [50, 0]
    await back_on_the_primary(kube, environment, namespace)


async def test_a_revision_failing_its_grpc_calls_is_rolled_back_by_the_built_in(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """The built-in request-success-rate counts a call failed on the server (HTTP 200,
    grpc-status UNKNOWN) as a failure."""
    analysis = {"interval": "3s", "threshold": 2, "stepWeight": 20, "maxWeight": 60,
                "metrics": [{"name": "request-success-rate", "interval": "10s",
                             "thresholdRange": {"min": 99}}]}
    await start(kube, environment, namespace, analysis)
    await deploy(kube, namespace, {"revision": "2", "devenv.canary.dev/error-rate": "0.5"})
    failed = await wait_until(functools.partial(canary_object, kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=90)
    assert failed["status"]["canaryWeight"] == 0
    result = failed["status"]["lastAnalysis"]["results"][0]
    assert result["name"] == "request-success-rate" and result["verdict"] == "Failed"
    assert 20 < result["value"] < 80
    # The failed calls were HTTP 200 with gRPC status UNKNOWN, never a 5xx.
    failures = await prometheus_value(environment.prometheus_url, calls(
        namespace, APP, ',response_code="200",grpc_response_status="2"'))
    assert failures is not None and failures > 0
    assert await prometheus_value(environment.prometheus_url, calls(
        namespace, APP, ',response_code=~"5.."')) is None
    # Failed records the decision; routing back to the primary follows that write.
    await back_on_the_primary(kube, environment, namespace)


async def test_an_ab_grpc_canary_takes_only_the_calls_carrying_its_header(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {"interval": "5s", "threshold": 2, "iterations": 3, "metrics": METRICS,
                "match": [{"headers": {"x-tester": {"exact": "yes"}}}]}
    # One user in four is a tester; every call is a gRPC call.
    users = {**GRPC_USERS, "users": 400, "profiles": [
        {"weight": 1, "headers": {**GRPC, "x-tester": "yes"}},
        {"weight": 3, "headers": {**GRPC, "x-tester": "no"}}]}
    routing = await start(kube, environment, namespace, analysis, users)
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: phase(c) == "Progressing"
                     and bool(c["status"].get("analysisStartedAt")), "the analysis to start")
    # The status is written before the routing it decides: wait for the A/B rule.
    route = await wait_until(lambda: kube.get(r.GRPC_ROUTES, APP, namespace),
                             lambda found: len(found["spec"]["rules"]) == 2,
                             "the A/B rule before the main one", timeout=10)
    first = route["spec"]["rules"][0]
    assert first["matches"] == [{"headers": [{"name": "x-tester", "type": "Exact",
                                              "value": "yes"}]}]
    assert [(ref["name"], ref["weight"]) for ref in first["backendRefs"]] == [
        (f"{APP}-primary", 0), (f"{APP}-canary", 100)]
    assert weights(route) == [100, 0]
    await asyncio.sleep(3)
    assert await canary_share(environment, namespace, 4) == pytest.approx(0.25, abs=0.1)
    # Testers are answered by the canary once the analysis started, everyone else by the
    # primary: nobody went from the canary back to the primary.
    answered = await environment.users(routing.users_host)
    assert answered["switches"].get(f"{APP} -> {APP}-primary", 0) == 0, answered
    assert 60 <= answered["lastAnsweredBy"].get(APP, 0) <= 140, answered
    final = await promotion_history(kube, namespace, revision)
    assert final.seen[-1][0] == "Succeeded"
    await back_on_the_primary(kube, environment, namespace)
