"""Why a workload's pods are not ready, as their own status says it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.targets.pods import MAX_MESSAGE, pod_reason, selector, unready_reason


def pod(name: str, *, ready: bool = False, scheduled: dict[str, Any] | None = None,
        containers: list[dict[str, Any]] | None = None, deleting: bool = False
        ) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", **scheduled})
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"conditions": conditions,
                                         "containerStatuses": containers or []}}


def waiting(reason: str, message: str = "", last: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "app", "ready": False,
                              "state": {"waiting": {"reason": reason, "message": message}}}
    if last:
        status["lastState"] = {"terminated": last}
    return status


PULL = waiting("ImagePullBackOff", 'Back-off pulling image "shop/web:2"')


class TestOnePod:
    def test_an_image_that_cannot_be_pulled(self) -> None:
        assert pod_reason(pod("web-1", containers=[PULL])) == (
            'container app: ImagePullBackOff: Back-off pulling image "shop/web:2"')

    def test_a_crash_loop_says_the_last_exit(self) -> None:
        crash = waiting("CrashLoopBackOff", "back-off 5m0s",
                        last={"reason": "OOMKilled", "exitCode": 137})
        assert pod_reason(pod("web-1", containers=[crash])) == (
            "container app: CrashLoopBackOff: back-off 5m0s (last exit: OOMKilled, code 137)")

    def test_an_unschedulable_pod_says_the_schedulers_message(self) -> None:
        unscheduled = {"status": "False", "reason": "Unschedulable",
                       "message": "0/3 nodes are available: 3 Insufficient cpu."}
        assert pod_reason(pod("web-1", scheduled=unscheduled)) == (
            "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.")

    def test_a_failing_readiness_probe(self) -> None:
        running = {"name": "app", "ready": False, "state": {"running": {}}}
        assert pod_reason(pod("web-1", containers=[running])) == (
            "container app: running but not ready (its readiness probe fails)")

    def test_ready_and_starting_pods_have_no_reason(self) -> None:
        assert pod_reason(pod("web-1", ready=True, containers=[PULL])) is None
        assert pod_reason(pod("web-1", containers=[waiting("ContainerCreating")])) is None

    @given(st.text(min_size=MAX_MESSAGE + 1, max_size=4 * MAX_MESSAGE))
    def test_long_messages_are_shortened(self, message: str) -> None:
        reason = pod_reason(pod("web-1", containers=[waiting("ErrImagePull", message)]))
        assert reason is not None
        assert len(reason) <= len("container app: ErrImagePull: ") + MAX_MESSAGE


class TestManyPods:
    def test_the_most_common_reason_with_one_pod_and_the_count(self) -> None:
        pods = [pod("web-1", containers=[PULL]), pod("web-2", containers=[PULL]),
                pod("web-3", containers=[waiting("CrashLoopBackOff")]),
                pod("web-4", ready=True)]
        assert unready_reason(pods) == (
            'pod web-1 (and 1 more pod): container app: ImagePullBackOff: Back-off pulling '
            'image "shop/web:2"')

    def test_pods_being_deleted_and_pods_without_a_reason_say_nothing(self) -> None:
        pods = [pod("web-1", containers=[PULL], deleting=True), pod("web-2", ready=True)]
        assert unready_reason(pods) is None


def test_the_selector_is_the_deployments_match_labels() -> None:
    deployment = {"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}}
    assert selector(deployment) == "app=web,tier=front"
    assert selector({"spec": {}}) is None
