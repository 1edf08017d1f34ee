"""A limit on concurrent rollouts on a real cluster: with ``--max-concurrent-rollouts 1``,
released Canaries roll out one after the other, those waiting show phase Queued (with
one event), and a controller restarted in the middle of the queue keeps its order.

Which Canaries roll out together is read from single LISTs of all the Canaries: each is
one consistent snapshot, so an overlap seen is a real one (polling may miss a short
overlap, never invent one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import (
    SUCCESS_RATE,
    deploy,
    events,
    occurrences,
    phase,
    start,
    target_revision,
)
from tests.e2e.waiting import wait_until
from tests.unit.core.test_argocd_health import health as argocd_health

#: Five steps of 3 s: a rollout lasts long enough for the others to queue behind it
#: (and for the controller to restart meanwhile).
ANALYSIS: dict[str, Any] = {"interval": "3s", "threshold": 2, "maxWeight": 50,
                            "stepWeight": 10, "metrics": SUCCESS_RATE}
#: The phases of a rollout under way, each holding the one slot.
ROLLING = ("Progressing", "Promoting", "Finalising")
#: Seconds for a queue of rollouts to drain, one after the other, on a busy machine.
DRAIN = 240.0

Canaries = dict[str, dict[str, Any]]


@pytest.fixture
def apps(namespace: str, other_namespace: str, two_more_namespaces: list[str]) -> list[str]:
    """The namespaces of this test's applications, one Canary each."""
    return [namespace, other_namespace, *two_more_namespaces]


@pytest.fixture
def one_at_a_time(environment: LocalEnvironment, controller: ControllerProcess,
                  apps: list[str]) -> Iterator[ControllerProcess]:
    """A controller with ``--max-concurrent-rollouts 1`` watching only this test's
    namespaces, instead of the session's (stopped meanwhile: two controllers would act on
    the same Canaries; started again afterwards if it was running)."""
    was_running = controller.running()
    if was_running:
        controller.stop()
    process = ControllerProcess(environment,
                                environment.logs_dir / f"controller-queue-{apps[0]}.log",
                                "--max-concurrent-rollouts", "1",
                                "--namespace", ",".join(apps))
    try:
        process.start()
        yield process
    finally:
        process.stop()
        if was_running:
            controller.start()


class Rollouts:
    """What consistent snapshots of the Canaries showed: the order in which each first
    rolled out, and the most that ever rolled out together."""

    def __init__(self, kube: KubeClient, namespaces: list[str]) -> None:
        self.kube, self.namespaces = kube, namespaces
        self.started: list[str] = []
        self.most_together = 0

    async def snapshot(self) -> Canaries:
        listing = await self.kube.list(r.CANARIES)
        canaries = {c["metadata"]["namespace"]: c for c in listing["items"]
                    if c["metadata"]["namespace"] in self.namespaces}
        rolling = [ns for ns in self.namespaces if phase(canaries.get(ns, {})) in ROLLING]
        self.most_together = max(self.most_together, len(rolling))
        self.started += [ns for ns in rolling if ns not in self.started]
        return canaries

    async def wait(self, predicate: Callable[[Canaries], bool], what: str,
                   timeout: float = 90.0) -> Canaries:
        canaries: Canaries = await wait_until(self.snapshot, predicate, what,
                                              timeout=timeout, interval=0.2)
        return canaries

    async def release(self, namespace: str) -> str:
        """Deploy revision 2 of the app in ``namespace``; returns the revision."""
        await deploy(self.kube, namespace, {"revision": "2"})
        return await target_revision(self.kube, namespace)

    async def all_promoted(self, revisions: dict[str, str]) -> Canaries:
        return await self.wait(lambda cs: all(
            phase(cs[ns]) == "Succeeded" and cs[ns]["status"].get("lastPromotedSpec") == rev
            for ns, rev in revisions.items()), "every rollout to be promoted", timeout=DRAIN)


def queued(namespace: str) -> Callable[[Canaries], bool]:
    return lambda canaries: phase(canaries[namespace]) == "Queued"


def promoted_condition(canary: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in canary["status"]["conditions"] if c["type"] == "Promoted")


async def test_two_released_canaries_roll_out_one_after_the_other(
        kube: KubeClient, environment: LocalEnvironment, apps: list[str],
        one_at_a_time: ControllerProcess) -> None:
    """The second, released while the first rolls out, shows Queued (its place in the
    Promoted condition, one event) and starts once the first is promoted."""
    first, second = apps[:2]
    await asyncio.gather(*(start(kube, environment, ns, analysis=ANALYSIS)
                           for ns in (first, second)))
    rollouts = Rollouts(kube, [first, second])
    revisions = {first: await rollouts.release(first)}
    await rollouts.wait(lambda cs: phase(cs[first]) == "Progressing",
                        "the first rollout to start")
    revisions[second] = await rollouts.release(second)
    seen = await rollouts.wait(lambda cs: phase(cs[second]) == "Queued",
                               "the second rollout to be queued")
    assert phase(seen[first]) in ROLLING, "queued although the slot was free"
    condition = promoted_condition(seen[second])
    assert condition["reason"] == "Queued", condition
    assert argocd_health(seen[second])[0] == "Progressing"  # docs/argocd-health.lua
    assert condition["message"].endswith("1st in the queue of 1; 1 of 1 rollout running "
                                         "(--max-concurrent-rollouts 1)"), condition
    assert seen[second]["status"]["queuedAt"]
    done = await rollouts.all_promoted(revisions)
    assert rollouts.started == [first, second]
    assert rollouts.most_together == 1
    assert "queuedAt" not in done[second]["status"]
    assert occurrences(await events(kube, second, "Queued")) == 1
    assert await events(kube, first, "Queued") == []
    assert one_at_a_time.running()


async def test_a_restart_in_the_middle_of_the_queue_keeps_its_order(
        kube: KubeClient, environment: LocalEnvironment, apps: list[str],
        one_at_a_time: ControllerProcess) -> None:
    """Three released one after the other; the controller restarts while two are
    queued; the queued ones start in the order they were released, one at a time."""
    order = apps[:3]
    await asyncio.gather(*(start(kube, environment, ns, analysis=ANALYSIS) for ns in order))
    rollouts = Rollouts(kube, order)
    revisions = {order[0]: await rollouts.release(order[0])}
    await rollouts.wait(lambda cs: phase(cs[order[0]]) == "Progressing",
                        "the first rollout to start")
    for ns in order[1:]:
        revisions[ns] = await rollouts.release(ns)
        await rollouts.wait(queued(ns), f"{ns} to be queued")
    before = await rollouts.snapshot()
    joined = [before[ns]["status"]["queuedAt"] for ns in order[1:]]
    assert joined == sorted(joined), joined
    assert promoted_condition(before[order[2]])["message"].endswith(
        "2nd in the queue of 2; 1 of 1 rollout running (--max-concurrent-rollouts 1)")
    assert phase(before[order[0]]) in ROLLING, "the restart would not be mid-queue"

    await asyncio.to_thread(one_at_a_time.stop)
    await asyncio.to_thread(one_at_a_time.start)

    after = await rollouts.snapshot()
    for ns, when in zip(order[1:], joined, strict=True):
        if phase(after[ns]) == "Queued":
            assert after[ns]["status"]["queuedAt"] == when, f"{ns} lost its place"
    await rollouts.all_promoted(revisions)
    assert rollouts.started == order
    assert rollouts.most_together == 1
    for ns in order[1:]:
        assert occurrences(await events(kube, ns, "Queued")) == 1, ns
