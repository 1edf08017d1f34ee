"""A canary whose pods never become ready fails at the progress deadline, and the status
and the event say why in the pods' own words (their waiting reason and message), not
just "not ready"."""

from __future__ import annotations

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import ANALYSIS, APP, canary_object, deploy, events, phase
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

PULL_MESSAGE = 'Back-off pulling image "registry.example.org/podinfo:9.9.9"'


async def test_a_canary_stuck_in_image_pull_back_off_fails_naming_it(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await deploy(kube, namespace, {"revision": "1"})
    await kube.create(r.CANARIES, manifests.canary(APP, namespace, analysis=ANALYSIS,
                                                   progressDeadlineSeconds=15))
    await environment.set_traffic(f"{APP}.{namespace}", rps=50)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Initialized", "the Canary to be Initialized")
    await deploy(kube, namespace, {"revision": "2",
                                   "devenv.canary.dev/waiting-reason": "ImagePullBackOff",
                                   "devenv.canary.dev/waiting-message": PULL_MESSAGE})
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=90)
    promoted = next(c for c in failed["status"]["conditions"] if c["type"] == "Promoted")
    assert promoted["reason"] == "ProgressDeadlineExceeded"
    message = promoted["message"]
    assert f"{APP} not ready for 15s" in message
    assert f"pod {APP}-" in message and "(and 1 more pod)" in message
    assert f"container app: ImagePullBackOff: {PULL_MESSAGE}" in message
    # The status is written before the events it decides: wait for the event.
    (rolled_back,) = await wait_until(lambda: events(kube, namespace, "RolledBack"), bool,
                                      "a RolledBack event", timeout=10)
    assert rolled_back["note"] == message
    assert failed["status"]["canaryWeight"] == 0
