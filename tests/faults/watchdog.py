"""Invariants that must hold at every moment of a rollout, not only at its end, checked
by sampling the cluster while faults are injected: routes add up to 100, no traffic to a
canary without a ready pod, a primary that keeps a ready pod, and no revision promoted
once it was rolled back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.rollout import APP
from tests.faults.observed import Violations

JSON = dict[str, Any]
#: Seconds between two samples.
PERIOD = 0.3
#: The phases on the way to, or at, a promotion.
PROMOTING = frozenset({"Promoting", "Finalising", "Succeeded"})


def ready_replicas(deployments: dict[tuple[str, str], JSON], namespace: str, name: str) -> int:
    found = deployments.get((namespace, name)) or {}
    return int((found.get("status") or {}).get("readyReplicas") or 0)


def canary_routed(service: JSON) -> bool:
    """Whether the VirtualService sends (or mirrors) any request to the canary."""
    for rule in (service.get("spec") or {}).get("http") or []:
        if rule.get("mirror"):
            return True
        for destination in rule.get("route") or []:
            if destination["destination"]["host"] == f"{APP}-canary" and \
                    int(destination.get("weight") or 0) > 0:
                return True
    return False


def weights_add_up(service: JSON) -> bool:
    """Every rule that weighs its destinations gives them 100 in all."""
    for rule in (service.get("spec") or {}).get("http") or []:
        weights = [d.get("weight") for d in rule.get("route") or []]
        if any(w is not None for w in weights) and sum(int(w or 0) for w in weights) != 100:
            return False
    return True


@dataclass
class Watchdog:
    """Samples every watched namespace until stopped; records what it saw break."""

    kube: KubeClient
    namespaces: list[str]
    violations: Violations
    samples: int = 0
    #: The fewest ready primary pods seen, once the Canary was initialised.
    fewest_primary_pods: int | None = None
    #: Per namespace, the revisions seen rolled back.
    rolled_back: dict[str, set[str]] = field(default_factory=dict)

    async def sample(self) -> None:
        """One look at the cluster. A canary's pods are read before and after its routes,
        so a canary that became ready (or was scaled down) between two reads is not
        mistaken for one routed without a ready pod."""
        before = await self._deployments()
        services = {s["metadata"]["namespace"]: s
                    for s in (await self.kube.list(r.VIRTUAL_SERVICES))["items"]
                    if s["metadata"]["name"] == APP}
        canaries = {c["metadata"]["namespace"]: c
                    for c in (await self.kube.list(r.CANARIES))["items"]}
        after = await self._deployments()
        self.samples += 1
        for namespace in self.namespaces:
            service, canary = services.get(namespace), canaries.get(namespace)
            if service is not None:
                self._routes(namespace, service, before, after)
            if canary is not None:
                self._canary(namespace, canary, after)

    async def _deployments(self) -> dict[tuple[str, str], JSON]:
        listing = await self.kube.list(r.DEPLOYMENTS)
        return {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in listing["items"]
                if d["metadata"]["namespace"] in self.namespaces}

    def _routes(self, namespace: str, service: JSON, before: dict[tuple[str, str], JSON],
                after: dict[tuple[str, str], JSON]) -> None:
        self.violations.check(weights_add_up(service),
                              f"{namespace}: route weights do not add up to 100: "
                              f"{service['spec'].get('http')}")
        if canary_routed(service):
            pods = max(ready_replicas(before, namespace, APP),
                       ready_replicas(after, namespace, APP))
            self.violations.check(pods > 0, f"{namespace}: traffic routed to {APP}-canary, "
                                  "which has no ready pod")

    def _canary(self, namespace: str, canary: JSON, deployments: dict[tuple[str, str], JSON]
                ) -> None:
        status = canary.get("status") or {}
        phase = status.get("phase")
        if phase is None or phase == "Initializing":
            return
        pods = ready_replicas(deployments, namespace, f"{APP}-primary")
        self.fewest_primary_pods = pods if self.fewest_primary_pods is None \
            else min(self.fewest_primary_pods, pods)
        self.violations.check(pods > 0, f"{namespace}: the primary has no ready pod ({phase})")
        rolled_back = self.rolled_back.setdefault(namespace, set())
        applied = status.get("lastAppliedSpec")
        if phase == "Failed" and applied:
            rolled_back.add(applied)
        self.violations.check(
            not (phase in PROMOTING and applied in rolled_back),
            f"{namespace}: revision {applied} is {phase} after it was rolled back")
        self.violations.check(status.get("lastPromotedSpec") not in rolled_back,
                              f"{namespace}: revision {status.get('lastPromotedSpec')} "
                              "promoted after it was rolled back")

    async def run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(PERIOD)


@contextlib.asynccontextmanager
async def watching(kube: KubeClient, namespaces: Iterable[str],
                   violations: Violations) -> AsyncIterator[Watchdog]:
    """A watchdog sampling ``namespaces`` for as long as the block runs."""
    dog = Watchdog(kube, list(namespaces), violations)
    task = asyncio.create_task(dog.run())
    try:
        yield dog
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
