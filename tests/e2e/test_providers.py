"""spec.provider picks what routes a Canary: a provider the controller does not route
with is refused and nothing is written, never routed through Istio instead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r
from tests.e2e import manifests
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


async def test_a_provider_not_implemented_is_refused_and_nothing_is_written(
        kube: KubeClient, namespace: str) -> None:
    await deploy(kube, namespace, {"revision": "1"})
    await kube.create(r.CANARIES, manifests.canary(
        APP, namespace, analysis=ANALYSIS, provider="gatewayapi:v1", revertOnDeletion=True))
    refused = await wait_until(lambda: canary_object(kube, namespace),
                               lambda c: ready(c).get("reason") == "UnsupportedProvider",
                               "the Canary to be refused")
    condition = ready(refused)
    assert condition["status"] == "False"
    assert "spec.provider gatewayapi:v1" in condition["message"]
    assert "routes with istio, kubernetes" in condition["message"]
    assert phase(refused) is None
    # Woken again by its own status write and by the watches: still nothing written.
    await asyncio.sleep(5)
    assert await generated(kube, namespace) == []
    assert [e["note"] for e in await events(kube, namespace, "UnsupportedProvider")] == [
        condition["message"]]
    assert "finalizers" not in (await canary_object(kube, namespace))["metadata"]


async def test_an_explicit_istio_provider_initializes_with_its_routing(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, provider="istio")
    await wait_until(lambda: generated(kube, namespace), lambda found: len(found) == 7,
                     "the routing objects to be created")
    assert ready(await canary_object(kube, namespace))["status"] == "True"
