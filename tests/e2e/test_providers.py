"""spec.provider picks what routes a Canary: what its provider cannot route is refused and
nothing is written, never routed through another provider instead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r
from tests.e2e import manifests, routed
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import ANALYSIS, APP, canary_object, deploy, events, phase, start
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

#: Everything canary would generate for a Canary named APP.
GENERATED = [(r.SERVICES, APP), (r.SERVICES, f"{APP}-primary"), (r.SERVICES, f"{APP}-canary"),
             (r.VIRTUAL_SERVICES, APP), (r.DESTINATION_RULES, f"{APP}-primary"),
             (r.DESTINATION_RULES, f"{APP}-canary"), (r.DEPLOYMENTS, f"{APP}-primary")]


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"), {})


async def generated(kube: KubeClient, namespace: str) -> list[str]:
    """The generated objects that exist, as kind/name."""
    found = []
    for resource, name in GENERATED:
        try:
            await kube.get(resource, name, namespace)
        except NotFound:
            continue
        found.append(f"{resource.kind}/{name}")
    return found


async def test_a_weighted_canary_under_a_mesh_less_default_is_refused_and_writes_nothing(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        controller: ControllerProcess) -> None:
    """Without spec.provider, under --mesh-provider kubernetes (which the CRD cannot see),
    a weighted analysis cannot be routed by Services: refused, nothing written."""
    controller.stop()  # this test runs a controller of its own, on this namespace only
    own = ControllerProcess(
        environment, environment.run_dir / "logs" / f"kubernetes-default-{namespace}.log",
        "--namespace", namespace, "--mesh-provider", "kubernetes")
    own.start()
    try:
        await deploy(kube, namespace, {"revision": "1"})
        await kube.create(r.CANARIES, manifests.canary(
            APP, namespace, analysis=ANALYSIS, revertOnDeletion=True))
        refused = await wait_until(lambda: canary_object(kube, namespace),
                                   lambda c: ready(c).get("reason") == "UnsupportedProvider",
                                   "the Canary to be refused")
        condition = ready(refused)
        assert condition["status"] == "False"
        assert "spec.analysis.stepWeight needs a provider with a mesh" in condition["message"]
        assert phase(refused) is None
        # Woken again by its own status write and by the watches: still nothing written.
        await asyncio.sleep(5)
        assert await generated(kube, namespace) == []
        assert [e["note"] for e in await events(kube, namespace, "UnsupportedProvider")] == [
            condition["message"]]
        assert "finalizers" not in (await canary_object(kube, namespace))["metadata"]
    finally:
        own.stop()


async def test_an_explicit_istio_provider_initializes_with_its_routing(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, provider="istio")
    await wait_until(lambda: generated(kube, namespace), lambda found: len(found) == 7,
                     "the routing objects to be created")
    assert ready(await canary_object(kube, namespace))["status"] == "True"


async def test_changing_the_provider_replaces_the_old_routing_objects(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """istio to gatewayapi:v1 on a live Canary: the HTTPRoute is written, then the
    VirtualService and DestinationRules go; the Services and the primary stay."""
    await start(kube, environment, namespace, provider="istio")
    await wait_until(lambda: generated(kube, namespace), lambda found: len(found) == 7,
                     "the Istio routing objects to be created")
    await kube.apply(routed.gateway(namespace), field_manager="e2e")
    await kube.merge_patch(r.CANARIES, APP, {"spec": {
        "provider": "gatewayapi:v1",
        "service": {"gatewayRefs": [{"name": routed.GATEWAY}], "hosts": [routed.HOST]}}},
        namespace)
    route = await wait_until(lambda: _maybe(kube, r.HTTP_ROUTES, APP, namespace),
                             lambda found: found is not None, "the HTTPRoute to be created")
    assert route is not None
    assert [ref["name"] for ref in route["spec"]["rules"][0]["backendRefs"]] == [
        f"{APP}-primary", f"{APP}-canary"]
    left = await wait_until(lambda: generated(kube, namespace), lambda found: len(found) == 4,
                            "the Istio objects to be deleted")
    assert left == [f"Service/{APP}", f"Service/{APP}-primary", f"Service/{APP}-canary",
                    f"Deployment/{APP}-primary"]
    assert ready(await canary_object(kube, namespace))["status"] == "True"


async def _maybe(kube: KubeClient, resource: r.Resource, name: str, namespace: str
                 ) -> dict[str, Any] | None:
    try:
        return await kube.get(resource, name, namespace)
    except NotFound:
        return None
