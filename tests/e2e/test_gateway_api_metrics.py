"""The built-in checks and the judge on Envoy Gateway's metrics: a Gateway API Canary with
``spec.service.gatewayImplementation: envoy-gateway`` is measured from the Envoy cluster
stats the simulator exposes for its Gateway's traffic, named as Envoy Gateway names them
(one cluster per backendRef of canary's route: ``httproute/<ns>/<svc>/rule/<i>/backend/<j>``);
it is promoted when healthy, rolled back when failing, and the judge's counts are those
of the canary's Envoy clusters, not Istio's."""

from __future__ import annotations

import functools
from typing import Any

import httpx
import pytest

from canary.core.timefmt import parse_time
from canary.devenv import LocalEnvironment
from canary.kube import Invalid, KubeClient
from canary.kube import resources as r
from tests.e2e import routed
from tests.e2e.rollout import APP, FIELD_MANAGER, canary_object, deploy, phase
from tests.e2e.routed import Routing
from tests.e2e.waiting import prometheus_value, wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

JSON = dict[str, Any]
ERROR_RATE = "devenv.canary.dev/error-rate"
CHECKS = [{"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}},
          {"name": "request-duration", "interval": "10s", "thresholdRange": {"max": 500}}]


class EnvoyGatewayRouting(Routing):
    """The Gateway API routing of :mod:`tests.e2e.routed`, on Envoy Gateway's metrics."""

    def canary(self, analysis: JSON, hosts: tuple[str, ...] = (routed.HOST,),
               deadline: int = 60) -> JSON:
        canary = super().canary(analysis, hosts, deadline)
        canary["spec"]["service"]["gatewayImplementation"] = "envoy-gateway"
        return canary


def cluster(namespace: str, backend: int) -> str:
    """The Envoy Gateway cluster of a backendRef of the first rule of canary's route."""
    return f"httproute/{namespace}/{APP}/rule/0/backend/{backend}"


async def start(kube: KubeClient, env: LocalEnvironment, namespace: str, analysis: JSON,
                annotations: dict[str, str] | None = None) -> None:
    """The Gateway, the app (revision 1 with ``annotations``), its Envoy Gateway Canary
    and 100 requests per second through the Gateway; returns once it is Initialized."""
    routing = EnvoyGatewayRouting("gatewayapi:v1", namespace)
    await kube.apply(routed.gateway(namespace), field_manager=FIELD_MANAGER)
    await deploy(kube, namespace, {"revision": "1", **(annotations or {})})
    await kube.create(r.CANARIES, routing.canary(analysis))
    await routing.send(env, rps=100)
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: phase(c) == "Initialized", "the Canary to be Initialized")


def last_checks(canary: JSON) -> dict[str, JSON]:
    record = canary["status"].get("lastAnalysis") or {}
    return {m["name"]: m for m in record.get("results") or []}


async def test_a_healthy_canary_is_promoted_on_envoy_gateways_metrics(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {"interval": "5s", "threshold": 3, "stepWeights": [30, 60], "metrics": CHECKS}
    await start(kube, environment, namespace, analysis)
    await deploy(kube, namespace, {"revision": "2"})
    measured = await wait_until(
        functools.partial(canary_object, kube, namespace),
        lambda c: len(last_checks(c)) == 2 and (c["status"].get("canaryWeight") or 0) > 0,
        "a step measured on the canary", timeout=60)
    checks = last_checks(measured)
    for name in ("request-success-rate", "request-duration"):
        assert checks[name]["verdict"] == "Passed", checks[name]
        assert f'/{namespace}/{APP}/rule/[0-9]+/backend/1"' in checks[name]["query"]
    assert "envoy_cluster_upstream_rq_xx" in checks["request-success-rate"]["query"]
    assert "envoy_cluster_upstream_rq_time_bucket" in checks["request-duration"]["query"]
    # Each backendRef of canary's route has a filter, hence its own Envoy cluster.
    route = await kube.get(r.HTTP_ROUTES, APP, namespace)
    assert all(ref.get("filters") for ref in route["spec"]["rules"][0]["backendRefs"])
    canary_requests = (f'sum(envoy_cluster_upstream_rq_xx{{envoy_cluster_name='
                       f'"{cluster(namespace, 1)}"}})')
    assert (await prometheus_value(environment.prometheus_url, canary_requests) or 0) > 0
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: phase(c) == "Succeeded", "the promotion", timeout=90)


async def test_a_failing_canary_is_rolled_back_on_envoy_gateways_metrics(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {"interval": "3s", "threshold": 2, "stepWeight": 20, "maxWeight": 60,
                "metrics": CHECKS[:1]}
    await start(kube, environment, namespace, analysis)
    await deploy(kube, namespace, {"revision": "2", ERROR_RATE: "0.5"})
    failed = await wait_until(functools.partial(canary_object, kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=90)
    check = last_checks(failed)["request-success-rate"]
    assert check["verdict"] == "Failed" and "envoy_cluster_upstream_rq_xx" in check["query"]
    assert check["value"] < 99


async def value_at(url: str, query: str, at: float) -> float:
    """The single value of ``query`` evaluated at ``at`` (seconds)."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{url}/api/v1/query",
                                  params={"query": query, "time": f"{at:.3f}"})
    [result] = response.json()["data"]["result"]
    return float(result["value"][1])


async def test_the_judge_counts_the_canary_s_envoy_clusters(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """Requests sent straight to the canary's Service (through the mesh, not the Gateway)
    are in Istio's counts of the canary but in no Envoy Gateway cluster: the judge's
    readings are exactly those of the canary's and the primary's clusters."""
    analysis = {"interval": "3s", "threshold": 2, "maxWeight": 60, "stepWeight": 20,
                "judge": {"metrics": [{"name": "error-rate", "type": "errorRate",
                                       "minimumEffect": "1.5x"}]}}
    # 5% on the primary too, so that its errors in a step are never zero.
    await start(kube, environment, namespace, analysis, {ERROR_RATE: "0.05"})
    await environment.set_traffic(f"{APP}-canary.{namespace}", rps=50)
    await deploy(kube, namespace, {"revision": "2", ERROR_RATE: "0.4"})
    failed = await wait_until(functools.partial(canary_object, kube, namespace),
                              lambda c: phase(c) == "Failed", "the judge's rollback",
                              timeout=120)
    [metric] = failed["status"]["judge"]["metrics"]
    assert metric["evidence"]["outcome"] == "regression"
    reading, at = metric["reading"], parse_time(metric["readingAt"]).timestamp()
    url = environment.prometheus_url
    envoy = {backend: await value_at(url, f'sum(envoy_cluster_upstream_rq_xx{{envoy_cluster_'
                                          f'name="{cluster(namespace, backend)}"}})', at)
             for backend in (0, 1)}
    assert reading["canaryRequests"] == envoy[1] and reading["primaryRequests"] == envoy[0]
    istio = await value_at(url, f'sum(istio_requests_total{{reporter="destination",'
                                f'destination_workload_namespace="{namespace}",'
                                f'destination_workload="{APP}"}})', at)
    assert istio > envoy[1], "the direct requests are Istio's only"


async def test_an_implementation_without_known_metrics_needs_metric_templates_at_apply(
        kube: KubeClient, namespace: str) -> None:
    def contour(analysis: JSON) -> JSON:
        manifest = Routing("gatewayapi:v1", namespace).canary(analysis)
        manifest["spec"]["service"]["gatewayImplementation"] = "contour"
        return manifest

    steps = {"interval": "10s", "threshold": 2, "stepWeight": 20, "maxWeight": 60}
    with pytest.raises(Invalid) as refused:
        await kube.create(r.CANARIES, contour({**steps, "metrics": CHECKS}))
    assert "spec.analysis.metrics: request-success-rate and request-duration are built " \
        "in for the metrics of istio, envoy-gateway only" in refused.value.message
    judge = {"metrics": [{"name": "error-rate", "type": "errorRate"}]}
    with pytest.raises(Invalid) as refused:
        await kube.create(r.CANARIES, contour({**steps, "judge": judge}))
    assert "spec.analysis.judge reads the metrics of istio, envoy-gateway only" in \
        refused.value.message
    templated = [{"name": "request-success-rate", "templateRef": {"name": "success"},
                  "thresholdRange": {"min": 99}}]
    created = await kube.create(r.CANARIES, contour({**steps, "metrics": templated}))
    assert created["spec"]["service"]["gatewayImplementation"] == "contour"


async def test_a_grpc_canary_on_envoy_gateway_cannot_be_judged_on_errors_by_built_ins(
        kube: KubeClient, namespace: str) -> None:
    """Envoy Gateway counts responses by HTTP status; a failed gRPC call is HTTP 200."""
    def grpc(analysis: JSON) -> JSON:
        manifest = EnvoyGatewayRouting("gatewayapi:v1", namespace).canary(analysis)
        manifest["spec"]["service"]["appProtocol"] = "GRPC"
        return manifest

    steps = {"interval": "10s", "threshold": 2, "stepWeight": 20, "maxWeight": 60}
    with pytest.raises(Invalid) as refused:
        await kube.create(r.CANARIES, grpc({**steps, "metrics": CHECKS}))
    assert "spec.analysis.metrics: request-success-rate on Envoy Gateway counts HTTP " \
        "statuses, and a failed gRPC call is HTTP 200" in refused.value.message
    judge = {"metrics": [{"name": "error-rate", "type": "errorRate"}]}
    with pytest.raises(Invalid) as refused:
        await kube.create(r.CANARIES, grpc({**steps, "judge": judge}))
    assert "spec.analysis.judge: errorRate on Envoy Gateway counts HTTP statuses" in \
        refused.value.message
    latency = [c for c in CHECKS if c["name"] == "request-duration"]
    created = await kube.create(r.CANARIES, grpc({**steps, "metrics": latency}))
    assert created["spec"]["service"]["appProtocol"] == "GRPC"
