"""A not-ready workload's pods are read, at most every EVERY seconds, to say why."""

from __future__ import annotations

import pytest

from canary.controller.pod_reasons import EVERY, PodReasons
from canary.core import Workload
from canary.kube import JSON, Forbidden
from canary.kube.resources import Resource

DEPLOYMENT = {"metadata": {"name": "web", "namespace": "shop"},
              "spec": {"selector": {"matchLabels": {"app": "web"}}}}
PULLING = {"metadata": {"name": "web-1"}, "status": {
    "conditions": [{"type": "Ready", "status": "False"}],
    "containerStatuses": [{"name": "app", "ready": False,
                           "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
UNREADY = Workload(exists=True, replicas=2, detail="0 of 2 replicas available")


class Pods:
    """The API's pod listing, counting the calls."""

    def __init__(self, *pods: JSON, refuse: bool = False) -> None:
        self.pods, self.refuse = list(pods), refuse
        self.calls: list[tuple[str, str | None, str | None]] = []

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None) -> JSON:
        self.calls.append((resource.plural, namespace, label_selector))
        if self.refuse:
            raise Forbidden(403, "Forbidden", "pods is forbidden")
        return {"items": self.pods}

    async def merge_patch(self, resource: Resource, name: str, patch: JSON,
                          namespace: str | None = None,
                          subresource: str | None = None) -> JSON:
        raise AssertionError("not called")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_pods_reason_is_added_to_the_detail() -> None:
    api = Pods(PULLING)
    explained = await PodReasons(api).explain(DEPLOYMENT, UNREADY)
    assert explained.detail == ("0 of 2 replicas available; pod web-1: container app: "
                                "ImagePullBackOff")
    assert api.calls == [("pods", "shop", "app=web")]


@pytest.mark.parametrize("state", [
    Workload(exists=True, replicas=2, ready=True), Workload(exists=True, replicas=0),
])
async def test_ready_or_scaled_down_workloads_read_no_pods(state: Workload) -> None:
    api = Pods(PULLING)
    assert await PodReasons(api).explain(DEPLOYMENT, state) == state
    assert api.calls == []


async def test_pods_are_read_at_most_every_few_seconds() -> None:
    api, clock = Pods(PULLING), Clock()
    reasons = PodReasons(api, clock)
    for _ in range(5):
        await reasons.explain(DEPLOYMENT, UNREADY)
    clock.now += EVERY
    await reasons.explain(DEPLOYMENT, UNREADY)
    assert len(api.calls) == 2


async def test_a_refused_listing_leaves_the_detail_as_it_was() -> None:
    assert await PodReasons(Pods(refuse=True)).explain(DEPLOYMENT, UNREADY) == UNREADY
