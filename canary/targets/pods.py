"""Why a Deployment's pods are not ready, in the words of their own status (pure).

A Deployment's status says only how many replicas are available; an SRE looking at a
failed rollout wants what ``kubectl describe pod`` would show: ``ImagePullBackOff``,
``CrashLoopBackOff`` with the last exit, ``Unschedulable`` with the scheduler's message.
The controller lists a not-ready workload's pods and puts the most common reason in the
workload's detail, so the status message and the rollback event carry it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

JSON = dict[str, Any]

#: Waiting reasons every pod goes through on its way to running: not a problem yet.
TRANSIENT = frozenset({"ContainerCreating", "PodInitializing"})
#: The longest message kept from a pod's status (registries can answer at length).
MAX_MESSAGE = 160


def selector(deployment: JSON) -> str | None:
    """The Deployment's ``matchLabels`` as a label selector; None without any."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or None


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "..."


def _said(reason: str, message: str | None) -> str:
    return f"{reason}: {_short(message)}" if message else reason


def _container_reason(status: Mapping[str, Any]) -> str | None:
    """A container's own reason for not running or not being ready."""
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason and reason not in TRANSIENT:
        said = _said(str(reason), waiting.get("message"))
        last = (status.get("lastState") or {}).get("terminated") or {}
        if last.get("reason"):
            said += f" (last exit: {last['reason']}, code {last.get('exitCode', '?')})"
        return said
    terminated = state.get("terminated") or {}
    if terminated.get("reason") and terminated.get("exitCode") not in (None, 0):
        return _said(str(terminated["reason"]), terminated.get("message"))
    if "running" in state and status.get("ready") is False:
        return "running but not ready (its readiness probe fails)"
    return None


def pod_reason(pod: JSON) -> str | None:
    """Why one pod is not ready, from its own status; None when it is ready or its
    status gives no reason yet."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if (conditions.get("Ready") or {}).get("status") == "True":
        return None
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        return _said(str(scheduled.get("reason") or "Unschedulable"), scheduled.get("message"))
    for key in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(key) or []:
            reason = _container_reason(container)
            if reason is not None:
                return f"container {container.get('name')}: {reason}"
    return None


def unready_reason(pods: Iterable[JSON]) -> str | None:
    """The most common reason among the pods that are not ready (with a pod that has
    it, and how many others share it); None when none gives one."""
    found: Counter[str] = Counter()
    example: dict[str, str] = {}
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        reason = pod_reason(pod)
        if reason is not None:
            found[reason] += 1
            example.setdefault(reason, str((pod.get("metadata") or {}).get("name")))
    if not found:
        return None
    reason, count = found.most_common(1)[0]
    others = f" (and {count - 1} more pod{'s' if count > 2 else ''})" if count > 1 else ""
    return f"pod {example[reason]}{others}: {reason}"
