"""Rollouts routed by the Gateway API (``spec.provider: gatewayapi:v1``): canary's own
HTTPRoute attached to a Gateway of the simulator's class, traffic sent through the
Gateway, the weights seen in the simulator's metrics; a failing canary rolled back; and a
route its Gateway refuses holding the rollout, in the Gateway's words."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import routed
from tests.e2e.rollout import APP, canary_object, deploy, phase, promotion_history, target_revision
from tests.e2e.routed import GATEWAY, HOST, Routing
from tests.e2e.waiting import prometheus_value, wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

SUCCESS_RATE = [{"name": "request-success-rate", "interval": "10s",
                 "thresholdRange": {"min": 99}}]
JSON = dict[str, Any]


async def start(kube: KubeClient, env: LocalEnvironment, namespace: str, analysis: JSON,
                hosts: tuple[str, ...] = (HOST,)) -> None:
    """A Gateway, the app and its Canary routed by the Gateway API, with a 30 s progress
    deadline, and traffic through the Gateway; returns once it is Initialized."""
    await routed.start(kube, env, Routing("gatewayapi:v1", namespace), analysis, hosts,
                       deadline=30)


def through_gateway(namespace: str, workload: str) -> str:
    return (f'sum(istio_requests_total{{reporter="destination",source_workload="{GATEWAY}",'
            f'destination_workload_namespace="{namespace}",destination_workload="{workload}"}})')


async def canary_share(env: LocalEnvironment, namespace: str, seconds: float) -> float:
    """The share of the Gateway's requests the canary answered over ``seconds``."""
    async def counts() -> list[float]:
        return [await prometheus_value(env.prometheus_url, through_gateway(namespace, w))
                or 0.0 for w in (APP, f"{APP}-primary")]
    before = await counts()
    await asyncio.sleep(seconds)
    after = await counts()
    moved = [a - b for a, b in zip(after, before, strict=True)]
    return moved[0] / sum(moved) if sum(moved) else 0.0


async def primary_serves_all(env: LocalEnvironment, namespace: str) -> None:
    """Soon (once Prometheus scraped the last requests the canary answered) the Gateway
    sends nothing more to the canary."""
    await wait_until(lambda: canary_share(env, namespace, 2), lambda share: share == 0.0,
                     "the Gateway to send everything to the primary", timeout=30)


def route_condition(canary: JSON) -> JSON | None:
    return next((c for c in canary["status"].get("conditions") or []
                 if c["type"] == "RouteAccepted"), None)


async def test_a_weighted_canary_is_promoted_step_by_step_through_the_gateway(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {"interval": "8s", "threshold": 5, "stepWeights": [20, 50],
                "metrics": SUCCESS_RATE}
    await start(kube, environment, namespace, analysis)
    route = await kube.get(r.HTTP_ROUTES, APP, namespace)
    assert [ref["name"] for ref in route["spec"]["parentRefs"]] == [GATEWAY]
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    at_50 = await wait_until(functools.partial(canary_object, kube, namespace),
                             lambda c: c["status"].get("canaryWeight") == 50,
                             "the canary at weight 50", timeout=60)
    # The route may have waited for the Gateway to report on it; it was never refused.
    held = route_condition(at_50)
    assert phase(at_50) == "Progressing" and (held is None or held["status"] == "True")
    # The Gateway splits its traffic as canary's route says.
    # The Gateway follows the route once its watch sees it, and Prometheus scrapes once a
    # second: the window starts once both have caught up, and ends inside the 8 s step.
    await asyncio.sleep(1.5)
    assert await canary_share(environment, namespace, 3) == pytest.approx(0.5, abs=0.15)
    history = await promotion_history(kube, namespace, revision)
    assert history.weights()[-2:] == [50, 0]
    route = await kube.get(r.HTTP_ROUTES, APP, namespace)
    assert [ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    await primary_serves_all(environment, namespace)


async def test_a_failing_canary_is_rolled_back_through_the_gateway(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {"interval": "3s", "threshold": 2, "stepWeight": 20, "maxWeight": 60,
                "metrics": SUCCESS_RATE}
    await start(kube, environment, namespace, analysis)
    await deploy(kube, namespace, {"revision": "2", "devenv.canary.dev/error-rate": "0.5"})
    failed = await wait_until(functools.partial(canary_object, kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=90)
    assert failed["status"]["canaryWeight"] == 0
    # Failed records the decision; routing back to the primary follows that write.
    await wait_until(lambda: kube.get(r.HTTP_ROUTES, APP, namespace),
                     lambda route: [ref["weight"] for ref in
                                    route["spec"]["rules"][0]["backendRefs"]] == [100, 0],
                     "the route back on the primary", timeout=10)
    await primary_serves_all(environment, namespace)


async def test_a_route_the_gateway_refuses_holds_the_rollout_naming_its_reason(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """The route's hostname matches no listener: the Gateway says NoMatchingListenerHostname,
    no weight moves, and past the progress deadline the revision is rolled back."""
    analysis = {"interval": "2s", "threshold": 2, "stepWeight": 20, "maxWeight": 60,
                "metrics": SUCCESS_RATE}
    await start(kube, environment, namespace, analysis, hosts=("elsewhere.example.org",))
    await deploy(kube, namespace, {"revision": "2"})
    held = await wait_until(functools.partial(canary_object, kube, namespace),
                            lambda c: (route_condition(c) or {}).get("reason")
                            == "RouteNotAccepted", "the route to be said refused", timeout=60)
    condition = route_condition(held)
    assert condition is not None and condition["status"] == "False"
    assert f"Gateway {namespace}/{GATEWAY}" in condition["message"]
    assert "NoMatchingListenerHostname" in condition["message"]
    assert phase(held) == "Progressing" and (held["status"].get("canaryWeight") or 0) == 0
    failed = await wait_until(functools.partial(canary_object, kube, namespace),
                              lambda c: phase(c) == "Failed", "the deadline's rollback",
                              timeout=90)
    promoted = next(c for c in failed["status"]["conditions"] if c["type"] == "Promoted")
    assert promoted["reason"] == "ProgressDeadlineExceeded"
    assert "NoMatchingListenerHostname" in promoted["message"]
