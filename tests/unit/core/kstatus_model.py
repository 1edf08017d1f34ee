"""kstatus's Compute for a custom resource, transcribed from sigs.k8s.io/cli-utils
(pkg/kstatus/status: checkGenericProperties and checkGeneration in generic.go, Compute
and checkReadyCondition in status.go), so tests can say what Flux's ``wait`` would read."""

from __future__ import annotations

from typing import Any, Literal

KStatus = Literal["InProgress", "Failed", "Current", "Terminating"]


def compute(obj: dict[str, Any]) -> tuple[KStatus, str]:
    """The status kstatus gives ``obj`` (a kind it has no specific rules for), and why."""
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return "Terminating", "Resource scheduled for deletion"
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return "InProgress", (f"{obj.get('kind')} generation is {generation}, but latest "
                              f"observed generation is {observed}")
    conditions = status.get("conditions") or []
    for condition in conditions:
        if condition.get("type") == "Reconciling" and condition.get("status") == "True":
            return "InProgress", str(condition.get("message", ""))
        if condition.get("type") == "Stalled" and condition.get("status") == "True":
            return "Failed", str(condition.get("message", ""))
    for condition in conditions:
        if condition.get("type") != "Ready":
            continue
        if condition.get("status") == "True":
            return "Current", "Resource is Ready"
        if condition.get("status") in ("False", "Unknown"):
            return "InProgress", str(condition.get("message", ""))
    return "Current", "Resource is current"
