"""Canaries and events as the API returns them, at moments of a rollout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)


def at(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def condition(kind: str, status: str, reason: str, message: str, ago: float = 30) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": at(ago)[:19] + "Z"}


def canary(name: str = "podinfo", namespace: str = "test", *,
           analysis: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
           age: float = 3600, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                     "creationTimestamp": at(age)[:19] + "Z"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": analysis or {
                "interval": "30s", "threshold": 2, "maxWeight": 60, "stepWeight": 20,
                "metrics": [
                    {"name": "request-success-rate", "interval": "1m",
                     "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "interval": "1m",
                     "thresholdRange": {"max": 500}}]},
            **spec,
        },
        "status": status or {},
    }


def results(success: float = 99.93, duration: float = 132.41) -> list[dict[str, Any]]:
    return [
        {"name": "request-success-rate", "value": success, "min": 99,
         "verdict": "Passed" if success >= 99 else "Failed",
         "message": None if success >= 99 else f"request-success-rate {success} < 99"},
        {"name": "request-duration", "value": duration, "max": 500,
         "verdict": "Passed" if duration <= 500 else "Failed"},
    ]


def progressing(weight: int = 40, failed: int = 0, success: float = 99.93,
                analysed_at: int = 20, **changes: Any) -> dict[str, Any]:
    """Half-way through a weighted rollout of revision rev2 (the last analysis was at
    weight ``analysed_at``, 10 s ago)."""
    return canary(status={
        "phase": "Progressing", "strategy": "Canary", "canaryWeight": weight,
        "failedChecks": failed, "iterations": 0, "lastAppliedSpec": "rev2",
        "lastPromotedSpec": "rev1", "lastTransitionTime": at(50)[:19] + "Z",
        "stepStartedAt": at(10),
        "lastAnalysis": {"time": at(10), "revision": "rev2", "weight": analysed_at,
                         "results": results(success)},
        "conditions": [
            condition("Promoted", "Unknown", "Progressing", "analysing revision rev2", 50),
            condition("Ready", "False", "Progressing", "analysing revision rev2", 50)],
    }, **changes)


def failed() -> dict[str, Any]:
    message = ("Rolling back podinfo: request-success-rate 80.21 (must be >= 99) "
               "(failed checks 2/2)")
    return canary(status={
        "phase": "Failed", "strategy": "Canary", "canaryWeight": 0, "failedChecks": 2,
        "lastAppliedSpec": "rev2", "lastPromotedSpec": "rev1",
        "lastTransitionTime": at(20)[:19] + "Z",
        "lastAnalysis": {"time": at(20), "revision": "rev2", "weight": 20,
                         "results": results(80.21)},
        "conditions": [condition("Promoted", "False", "AnalysisFailed", message, 20),
                       condition("Ready", "False", "RolledBack", message, 20)],
    })


def succeeded() -> dict[str, Any]:
    message = "Promotion of podinfo revision rev2 completed"
    return canary(status={
        "phase": "Succeeded", "strategy": "Canary", "canaryWeight": 0, "failedChecks": 0,
        "lastAppliedSpec": "rev2", "lastPromotedSpec": "rev2",
        "lastTransitionTime": at(5)[:19] + "Z",
        "lastAnalysis": {"time": at(6), "revision": "rev2", "weight": 60,
                         "results": results()},
        "conditions": [condition("Promoted", "True", "Succeeded", message, 5)],
    })


def event(reason: str, note: str, seconds_ago: float, type_: str = "Normal",
          name: str = "podinfo") -> dict[str, Any]:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"{name}.{reason}.{seconds_ago}", "namespace": "test",
                         "uid": f"{reason}-{seconds_ago}"},
            "eventTime": at(seconds_ago), "type": type_, "reason": reason, "note": note,
            "regarding": {"kind": "Canary", "name": name, "namespace": "test"}}


def rollout_events() -> list[dict[str, Any]]:
    """A rollout's events, deliberately out of order."""
    return [
        event("WeightIncreased", "Advance podinfo canary weight to 40", 10),
        event("NewRevision", "New revision rev2 of podinfo detected; starting canary "
              "analysis", 50),
        event("WeightIncreased", "Advance podinfo canary weight to 20", 40),
    ]
