"""A metrics server outage in the middle of an analysis, end to end: Prometheus is
stopped for longer than ``threshold`` steps; the rollout holds (no rollback, no
promotion, no failed check) and says why, then continues and is promoted once
Prometheus is back, its gap in data after the restart counting as no failed check."""

from __future__ import annotations

from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from tests.e2e.prometheus_outage import prometheus_stopped
from tests.e2e.rollout import (
    ANALYSIS,
    SUCCESS_RATE,
    canary_object,
    deploy,
    events,
    occurrences,
    phase,
    start,
    target_revision,
)
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

#: One metric (each query to a stopped server takes the client's retries, seconds); the
#: test gives a progress deadline far beyond the outage.
OUTAGE_ANALYSIS = {**ANALYSIS, "metrics": SUCCESS_RATE, "threshold": 2}


def promoted(obj: dict[str, Any]) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = obj["status"].get("conditions") or []
    return next(c for c in conditions if c["type"] == "Promoted")


class HeldSteps:
    """The step ends seen while Prometheus is down: none may move, fail or finish the
    rollout."""

    def __init__(self) -> None:
        #: The weight and failed checks when Prometheus stopped.
        self.at: tuple[int, int] | None = None
        self.times: set[str] = set()

    def check(self, obj: dict[str, Any]) -> int:
        status = obj["status"]
        now = (status.get("canaryWeight") or 0, status.get("failedChecks") or 0)
        self.at = self.at or now
        assert phase(obj) == "Progressing" and now == self.at, status
        analysis = status.get("lastAnalysis") or {}
        if [r["verdict"] for r in analysis.get("results", [])] == ["Unavailable"]:
            self.times.add(analysis["time"])
        return len(self.times)


async def test_an_outage_of_prometheus_holds_the_rollout_until_it_answers_again(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace, analysis=OUTAGE_ANALYSIS,
                progressDeadlineSeconds=300)
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    before = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: c["status"].get("canaryWeight") == 20,
                              "the first step of the analysis", timeout=120, interval=0.1)
    held = HeldSteps()
    async with prometheus_stopped(environment) as start_again:
        # More held step ends than `threshold` would need to roll back on failed checks.
        down = await wait_until(lambda: canary_object(kube, namespace),
                                lambda c: held.check(c) > OUTAGE_ANALYSIS["threshold"],
                                "more steps held than the threshold", timeout=150, interval=0.2)
        condition = promoted(down)
        assert condition["reason"] == "MetricsUnavailable", condition
        server = environment.prometheus_url.removeprefix("http://")
        assert f"Prometheus at {server}: connection refused" in condition["message"]
        assert held.at is not None and f"holds at weight {held.at[0]}%" in condition["message"]
        assert down["status"]["metricsUnavailableSince"] > before["status"]["stepStartedAt"]
        assert occurrences(await events(kube, namespace, "MetricsUnavailable")) == 1
        await start_again()
    final = await wait_until(lambda: canary_object(kube, namespace),
                             lambda c: phase(c) in ("Succeeded", "Failed"),
                             "the rollout to finish once Prometheus is back", timeout=150)
    assert phase(final) == "Succeeded" and final["status"]["lastPromotedSpec"] == revision, \
        final["status"]
    # Neither the outage nor Prometheus' gap in data after it counted as a failed check.
    assert "failed check" not in promoted(final)["message"], promoted(final)
    assert "metricsUnavailableSince" not in final["status"]
    assert await events(kube, namespace, "MetricsAvailable")
