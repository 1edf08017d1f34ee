"""A not-ready workload's pods, read to say why in their own words.

Pods are not cached: a cluster has many, and canary needs them only while one of a
Canary's two Deployments is not ready. Then it lists that Deployment's pods (by its
selector), at most once every :data:`EVERY` seconds per Deployment, and adds the pods'
reason (:mod:`canary.targets.pods`) to the workload's detail, which the rollback
message and its event carry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import structlog

from canary.controller.services import CanaryApi
from canary.core import Workload
from canary.kube import JSON, KubeError
from canary.kube import resources as r
from canary.targets.pods import selector, unready_reason

log = structlog.get_logger("canary.controller")

#: Seconds between two listings of one Deployment's pods.
EVERY = 10.0


class PodReasons:
    """Explains the not-ready workloads of one Canary (each worker has its own)."""

    def __init__(self, client: CanaryApi, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.client = client
        self.clock = clock
        self._read: dict[str, tuple[float, str | None]] = {}

    async def explain(self, deployment: JSON | None, state: Workload) -> Workload:
        """``state`` with its pods' reason added to its detail while it is not ready."""
        if deployment is None or state.ready or state.replicas == 0:
            return state
        reason = await self._reason(deployment)
        if reason is None:
            return state
        return replace(state, detail=f"{state.detail}; {reason}" if state.detail else reason)

    async def _reason(self, deployment: JSON) -> str | None:
        meta = deployment["metadata"]
        name, namespace = str(meta["name"]), str(meta["namespace"])
        now = self.clock()
        read = self._read.get(name)
        if read is not None and now - read[0] < EVERY:
            return read[1]
        labels = selector(deployment)
        if labels is None:
            return None
        try:
            pods = await self.client.list(r.PODS, namespace, label_selector=labels)
        except KubeError as exc:
            log.warning("could not read the pods of a workload that is not ready",
                        deployment=f"{namespace}/{name}", error=str(exc))
            return None
        reason = unready_reason(pods.get("items") or [])
        self._read[name] = (now, reason)
        return reason
