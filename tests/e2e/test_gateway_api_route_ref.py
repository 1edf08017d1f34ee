"""Rollouts through the user's own HTTPRoute (``spec.service.routeRef``): the route has a
rule for the app, sending to the apex Service with a header filter of the user's, and a
rule for another path to another backend. canary splits the app's rule only: the weights
move (seen in the simulator's metrics through the Gateway), the other rule and the
filter stay as the user wrote them across a promotion and a rollback, an edit the user
makes mid-rollout survives canary's next write, and a deleted Canary with
revertOnDeletion gives the app's rule back to the apex Service."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import APP, FIELD_MANAGER, SUCCESS_RATE, canary_object, deploy, phase
from tests.e2e.routed import GATEWAY, HOST, gateway
from tests.e2e.test_gateway_api_rollouts import canary_share, primary_serves_all
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

JSON = dict[str, Any]
ROUTE, OTHER = "storefront", "other"
HEADER_FILTER = {"type": "RequestHeaderModifier",
                 "requestHeaderModifier": {"set": [{"name": "x-tenant", "value": "shop"}]}}


def users_route(namespace: str) -> JSON:
    """The user's route: the app's rule to the apex Service with a header filter, and
    /other to another Service."""
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": ROUTE, "namespace": namespace},
            "spec": {"parentRefs": [{"name": GATEWAY}], "hostnames": [HOST], "rules": [
                {"name": "app", "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "filters": [HEADER_FILTER], "backendRefs": [{"name": APP, "port": 80}]},
                {"name": "other",
                 "matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                 "backendRefs": [{"name": OTHER, "port": 80}]}]}}


async def start(kube: KubeClient, env: LocalEnvironment, namespace: str, analysis: JSON,
                **spec: Any) -> None:
    """The Gateway, the app, another Service, the user's route, a Canary routing through
    it and traffic through the Gateway; returns once the Canary is Initialized."""
    await kube.apply(gateway(namespace), field_manager=FIELD_MANAGER)
    await deploy(kube, namespace, {"revision": "1"})
    await kube.apply(manifests.service(OTHER, namespace), field_manager=FIELD_MANAGER)
    await kube.create(r.HTTP_ROUTES, users_route(namespace))
    canary = manifests.canary(APP, namespace, analysis=analysis, progressDeadlineSeconds=60,
                              provider="gatewayapi:v1", **spec)
    canary["spec"]["service"]["routeRef"] = {"kind": "HTTPRoute", "name": ROUTE}
    await kube.create(r.CANARIES, canary)
    await env.set_gateway_traffic(GATEWAY, namespace, HOST, 100)
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: phase(c) == "Initialized", "the Canary to be Initialized")


async def rules(kube: KubeClient, namespace: str) -> list[JSON]:
    route = await kube.get(r.HTTP_ROUTES, ROUTE, namespace)
    return list(route["spec"]["rules"])


def targets(rule: JSON) -> list[tuple[str, int]]:
    return [(ref["name"], ref.get("weight", 1)) for ref in rule["backendRefs"]]


def users_part(rule: JSON) -> JSON:
    """The app's rule without its backendRefs: what the user wrote and canary keeps."""
    return {k: v for k, v in rule.items() if k != "backendRefs"}


async def on_the_primary(kube: KubeClient, env: LocalEnvironment, namespace: str,
                         before: list[JSON]) -> None:
    """After a rollout: the app's rule sends everything to the primary, the user's parts
    are as they were, and the Gateway sends nothing to the canary."""
    after = await wait_until(functools.partial(rules, kube, namespace),
                             lambda now: targets(now[0])[0] == (f"{APP}-primary", 100),
                             "the app's rule back on the primary", timeout=15)
    assert targets(after[0]) == [(f"{APP}-primary", 100), (f"{APP}-canary", 0)]
    assert users_part(after[0]) == users_part(before[0])
    assert after[0]["filters"] == [HEADER_FILTER]
    assert after[1:] == before[1:]
    await primary_serves_all(env, namespace)


async def test_the_users_route_is_split_promoted_and_rolled_back_leaving_the_rest(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    analysis = {"interval": "8s", "threshold": 2, "stepWeights": [20, 50],
                "metrics": SUCCESS_RATE}
    await start(kube, environment, namespace, analysis)
    # Initialized is written before the routing it decided is.
    before = await wait_until(functools.partial(rules, kube, namespace),
                              lambda now: now[0]["backendRefs"][0]["name"] != APP,
                              "the app's rule split", timeout=15)
    assert targets(before[0]) == [(f"{APP}-primary", 100), (f"{APP}-canary", 0)]
    assert before[0]["filters"] == [HEADER_FILTER]
    assert targets(before[1]) == [(OTHER, 1)]

    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: c["status"].get("canaryWeight") == 50,
                     "the canary at weight 50", timeout=60)
    split = await wait_until(functools.partial(rules, kube, namespace),
                             lambda now: targets(now[0])[1][1] == 50,
                             "the app's rule at weight 50", timeout=15)
    assert targets(split[0]) == [(f"{APP}-primary", 50), (f"{APP}-canary", 50)]
    assert split[1:] == before[1:] and users_part(split[0]) == users_part(before[0])
    # The Gateway follows the route once its watch sees it, and Prometheus scrapes once a
    # second: the window starts once both have caught up, and ends inside the 8 s step.
    await asyncio.sleep(1.5)
    assert await canary_share(environment, namespace, 3) == pytest.approx(0.5, abs=0.15)
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: phase(c) == "Succeeded", "the promotion", timeout=60)
    await on_the_primary(kube, environment, namespace, before)
    # At rest the route already carries canary's rules as the API server stored them
    # (its defaults filled in): the decisions of the next intervals write nothing.
    generation = (await kube.get(r.HTTP_ROUTES, ROUTE, namespace))["metadata"]["generation"]
    await asyncio.sleep(8)
    assert (await kube.get(r.HTTP_ROUTES, ROUTE, namespace))["metadata"]["generation"] == \
        generation

    await deploy(kube, namespace, {"revision": "3", "devenv.canary.dev/error-rate": "0.5"})
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: (c["status"].get("canaryWeight") or 0) > 0,
                     "the failing canary given traffic", timeout=60)
    assert await canary_share(environment, namespace, 2) > 0.05
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: phase(c) == "Failed", "the rollback", timeout=90)
    await on_the_primary(kube, environment, namespace, before)


async def test_an_edit_of_the_users_survives_and_deletion_gives_the_rule_back(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """Mid-rollout the user adds a rule and a hostname: canary's next write keeps both.
    Deleted with revertOnDeletion, the Canary leaves the app's rule on the apex Service."""
    analysis = {"interval": "4s", "threshold": 2, "stepWeights": [20, 40, 60],
                "metrics": SUCCESS_RATE}
    await start(kube, environment, namespace, analysis, revertOnDeletion=True)
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(functools.partial(canary_object, kube, namespace),
                     lambda c: c["status"].get("canaryWeight") == 20,
                     "the canary at weight 20", timeout=60)
    extra = {"name": "extra", "matches": [{"path": {"type": "PathPrefix", "value": "/extra"}}],
             "backendRefs": [{"name": OTHER, "port": 80}]}
    await kube.json_patch(r.HTTP_ROUTES, ROUTE, [
        {"op": "add", "path": "/spec/rules/-", "value": extra},
        {"op": "add", "path": "/spec/hostnames/-", "value": f"www.{HOST}"}], namespace)
    later = await wait_until(functools.partial(rules, kube, namespace),
                             lambda now: targets(now[0])[1][1] >= 40,
                             "canary's next write", timeout=60)
    assert [rule.get("name") for rule in later] == ["app", "other", "extra"]
    assert targets(later[2]) == [(OTHER, 1)]
    route = await kube.get(r.HTTP_ROUTES, ROUTE, namespace)
    assert route["spec"]["hostnames"] == [HOST, f"www.{HOST}"]

    await kube.delete(r.CANARIES, APP, namespace)
    released = await wait_until(functools.partial(rules, kube, namespace),
                                lambda now: targets(now[0]) == [(APP, 1)],
                                "the app's rule back on the apex Service", timeout=60)
    assert released[0]["filters"] == [HEADER_FILTER]
    assert [rule.get("name") for rule in released] == ["app", "other", "extra"]
    service = await kube.get(r.SERVICES, APP, namespace)
    assert service["spec"]["selector"] == {"app": APP}
