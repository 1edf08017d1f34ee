"""Setting up an application under a Canary and following its rollout."""

from __future__ import annotations

from typing import Any

from canary.core import template_hash
from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.waiting import wait_until

FIELD_MANAGER = "e2e"
APP = "podinfo"

ANALYSIS: dict[str, Any] = {
    "interval": "3s", "threshold": 2, "maxWeight": 60, "stepWeight": 20,
    "metrics": [
        {"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}},
        {"name": "request-duration", "interval": "10s", "thresholdRange": {"max": 500}},
    ],
}

#: The success-rate check alone, for tests about where traffic goes.
SUCCESS_RATE: list[dict[str, Any]] = [
    {"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}}]


async def deploy(kube: KubeClient, namespace: str, annotations: dict[str, str]) -> None:
    """Apply the app's Deployment with a template carrying ``annotations`` (a new revision
    whenever they change)."""
    await kube.apply(manifests.deployment(APP, namespace, replicas=2, annotations=annotations),
                     field_manager=FIELD_MANAGER)


async def canary_object(kube: KubeClient, namespace: str, name: str = APP) -> dict[str, Any]:
    return await kube.get(r.CANARIES, name, namespace)


def phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


async def start(kube: KubeClient, env: LocalEnvironment, namespace: str, **spec: Any) -> None:
    """Deployment + Canary + traffic; returns once the Canary is Initialized."""
    await deploy(kube, namespace, {"revision": "1"})
    spec.setdefault("progressDeadlineSeconds", 60)
    await kube.create(r.CANARIES, manifests.canary(
        APP, namespace, analysis=spec.pop("analysis", ANALYSIS), **spec))
    await env.set_traffic(f"{APP}.{namespace}", rps=100)
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Initialized",
                     "the Canary to be Initialized")


async def target_revision(kube: KubeClient, namespace: str) -> str:
    deployment = await kube.get(r.DEPLOYMENTS, APP, namespace)
    return template_hash(deployment["spec"]["template"])


async def primary(kube: KubeClient, namespace: str) -> dict[str, Any]:
    return await kube.get(r.DEPLOYMENTS, f"{APP}-primary", namespace)


async def events(kube: KubeClient, namespace: str, reason: str | None = None,
                 regarding: str | None = None) -> list[dict[str, Any]]:
    """The events about Canaries of ``namespace`` (of the Canary ``regarding`` if given),
    oldest first; only those of ``reason`` if given."""
    listing = await kube.list(r.EVENTS, namespace)
    found = [e for e in listing["items"] if e.get("regarding", {}).get("kind") == "Canary"
             and regarding in (None, e["regarding"].get("name"))]
    found.sort(key=lambda e: e.get("eventTime") or "")
    return [e for e in found if reason is None or e.get("reason") == reason]


def occurrences(found: list[dict[str, Any]]) -> int:
    """How many times the events happened: a repeated event is one object with a count."""
    return sum(int((e.get("series") or {}).get("count") or e.get("deprecatedCount") or 1)
               for e in found)


class History:
    """Every (phase, weight) the Canary showed while being watched, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, int | None]] = []

    def record(self, obj: dict[str, Any]) -> dict[str, Any]:
        point = (phase(obj), (obj.get("status") or {}).get("canaryWeight"))
        if not self.seen or self.seen[-1] != point:
            self.seen.append(point)
        return obj

    def weights(self) -> list[int]:
        out: list[int] = []
        for _, weight in self.seen:
            if weight is not None and (not out or out[-1] != weight):
                out.append(weight)
        return out


async def promotion_history(kube: KubeClient, namespace: str, revision: str) -> History:
    """Follow the Canary closely until ``revision`` is promoted; return what it showed."""
    history = History()
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: bool(history.record(c)) and phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == revision,
                     f"the promotion of {revision}", timeout=120, interval=0.1)
    return history
