"""A canary whose pods never become ready fails at the progress deadline, and the status
and the event say why in the pods' own words (their waiting reason and message, or the
scheduler's), not just "not ready": an image that cannot be pulled, a container in a
crash loop, pods no node can take."""

from __future__ import annotations

from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import ANALYSIS, APP, FIELD_MANAGER, canary_object, deploy, events, phase
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

PULL_MESSAGE = 'Back-off pulling image "registry.example.org/podinfo:9.9.9"'
CRASH_MESSAGE = "back-off 40s restarting failed container=app"
#: A node label no node of the environment has.
NOWHERE = {"devenv.canary.dev/zone": "nowhere"}


def waiting(reason: str, message: str) -> dict[str, Any]:
    """Revision 2, whose pods the environment's kwok stages keep waiting with ``reason``,
    as a kubelet would."""
    return manifests.deployment(APP, "", replicas=2, annotations={
        "revision": "2", "devenv.canary.dev/waiting-reason": reason,
        "devenv.canary.dev/waiting-message": message})


def unschedulable() -> dict[str, Any]:
    """Revision 2, asking for a node that does not exist: the scheduler leaves its pods
    Pending with PodScheduled=False."""
    manifest = manifests.deployment(APP, "", replicas=2, annotations={"revision": "2"})
    manifest["spec"]["template"]["spec"]["nodeSelector"] = NOWHERE
    return manifest


@pytest.mark.parametrize(("revision", "said"), [
    (waiting("ImagePullBackOff", PULL_MESSAGE),
     f"container app: ImagePullBackOff: {PULL_MESSAGE}"),
    (waiting("CrashLoopBackOff", CRASH_MESSAGE),
     f"container app: CrashLoopBackOff: {CRASH_MESSAGE}"),
    (unschedulable(), "Unschedulable: 0/"),  # the scheduler's "0/N nodes are available"
], ids=["image-pull", "crash-loop", "unschedulable"])
async def test_a_canary_whose_pods_never_become_ready_fails_naming_why(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        revision: dict[str, Any], said: str) -> None:
    await deploy(kube, namespace, {"revision": "1"})
    await kube.create(r.CANARIES, manifests.canary(APP, namespace, analysis=ANALYSIS,
                                                   progressDeadlineSeconds=15))
    await environment.set_traffic(f"{APP}.{namespace}", rps=50)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Initialized", "the Canary to be Initialized")
    await kube.apply(revision | {"metadata": revision["metadata"] | {"namespace": namespace}},
                     field_manager=FIELD_MANAGER)
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=90)
    promoted = next(c for c in failed["status"]["conditions"] if c["type"] == "Promoted")
    assert promoted["reason"] == "ProgressDeadlineExceeded"
    message = promoted["message"]
    assert f"{APP} not ready for 15s" in message
    assert f"pod {APP}-" in message and "(and 1 more pod)" in message
    assert said in message, message
    # The status is written before the events it decides: wait for the event.
    (rolled_back,) = await wait_until(lambda: events(kube, namespace, "RolledBack"), bool,
                                      "a RolledBack event", timeout=10)
    assert rolled_back["note"] == message
    assert failed["status"]["canaryWeight"] == 0
