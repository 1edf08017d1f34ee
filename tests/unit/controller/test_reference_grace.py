"""A Canary applied together with what it names: a GitOps controller applies the objects
one after another and their watches bring them in any order, so a spec canary has not
acted on yet gets ``REFERENCE_GRACE`` seconds before anything it names is said missing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from canary.controller.worker import REFERENCE_GRACE, Worker
from tests.unit.controller.caches import Cache
from tests.unit.controller.test_worker import Fakes, RecordingExecutor, analysing, deployment

TEMPLATE = {"apiVersion": "canary.dev/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": "error-percent", "namespace": "shop"},
            "spec": {"provider": {"type": "prometheus", "address": "http://prometheus"},
                     "query": "sum(rate(errors[1m]))"}}
MISSING_TEMPLATE = ("spec.analysis.metrics[0].templateRef: MetricTemplate "
                    "shop/error-percent not found")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def new_canary() -> dict[str, Any]:
    """A Canary just applied (no status) on Deployment web, whose analysis uses
    MetricTemplate error-percent."""
    canary, _ = analysing(datetime.now(UTC))
    del canary["status"]
    canary["spec"]["analysis"] = {
        "interval": "10s", "threshold": 2, "stepWeight": 10, "maxWeight": 30,
        "metrics": [{"name": "errors", "templateRef": {"name": "error-percent"},
                     "thresholdRange": {"max": 1}}]}
    return canary


def applied(canary: dict[str, Any], *targets: dict[str, Any]
            ) -> tuple[Fakes, RecordingExecutor, Worker, Clock]:
    fakes = Fakes(canary, *targets)
    executor = RecordingExecutor()
    fakes.services = replace(fakes.services, executor=executor)
    clock = Clock()
    return fakes, executor, Worker(fakes.services, "shop", "web", clock=clock), clock


def templates(fakes: Fakes) -> Cache:
    return cast(Cache, fakes.services.caches.metric_templates)


def warnings(fakes: Fakes) -> list[tuple[str, str]]:
    return [(reason, note) for type_, reason, note in fakes.events_recorded
            if type_ == "Warning"]


async def test_a_template_applied_after_its_canary_is_never_said_missing() -> None:
    fakes, executor, worker, clock = applied(new_canary(), deployment("web"))
    assert await worker.reconcile() == REFERENCE_GRACE
    assert fakes.patches == [] and fakes.events_recorded == [] and executor.actions == []
    clock.now += 1
    assert await worker.reconcile() == REFERENCE_GRACE - 1
    # The template's watch event comes: the Canary is initialized, nothing was missing.
    templates(fakes).objects[("shop", "error-percent")] = TEMPLATE
    await worker.reconcile()
    assert executor.actions, "nothing was created"
    assert warnings(fakes) == []
    conditions = fakes.patches[-1]["status"]["conditions"]
    assert all(c["reason"] != "MissingReference" for c in conditions), conditions


async def test_a_target_applied_after_its_canary_is_never_said_missing() -> None:
    fakes, executor, worker, _ = applied(new_canary())
    templates(fakes).objects[("shop", "error-percent")] = TEMPLATE
    assert await worker.reconcile() == REFERENCE_GRACE
    assert fakes.events_recorded == [] and executor.actions == []
    cast(Cache, fakes.services.caches.deployments).objects[("shop", "web")] = deployment("web")
    await worker.reconcile()
    assert executor.actions and warnings(fakes) == []


async def test_what_stays_missing_through_the_grace_is_said_missing_once() -> None:
    fakes, executor, worker, clock = applied(new_canary(), deployment("web"))
    assert await worker.reconcile() == REFERENCE_GRACE
    clock.now += REFERENCE_GRACE
    await worker.reconcile()
    assert fakes.events_recorded == [("Warning", "MissingReference", MISSING_TEMPLATE)]
    [ready] = [c for c in fakes.patches[-1]["status"]["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "MissingReference")
    assert executor.actions == []
    # Woken again: decided at once, nothing said twice.
    clock.now += 1
    assert await worker.reconcile() != REFERENCE_GRACE
    assert len(fakes.events_recorded) == 1


async def test_a_new_generation_gets_its_own_grace() -> None:
    """An Initialized Canary whose new spec names a template applied after it."""
    canary, fakes = analysing(datetime.now(UTC))
    canary["status"] = {"phase": "Initialized", "observedGeneration": 1,
                        "lastAppliedSpec": canary["status"]["lastAppliedSpec"]}
    canary["spec"]["analysis"] = new_canary()["spec"]["analysis"]
    fakes, _, worker, clock = applied(canary, *fakes.services.caches.deployments.items())
    templates(fakes).objects[("shop", "error-percent")] = TEMPLATE
    await worker.reconcile()
    assert warnings(fakes) == []
    obj = fakes.canaries.get("shop", "web")
    assert obj is not None and obj["status"]["observedGeneration"] == 1
    obj["metadata"]["generation"] = 2
    obj["spec"]["analysis"]["metrics"][0]["templateRef"]["name"] = "latency"
    clock.now += 60
    assert await worker.reconcile() == REFERENCE_GRACE
    assert warnings(fakes) == []
    clock.now += REFERENCE_GRACE
    await worker.reconcile()
    assert warnings(fakes) == [("MissingReference", "spec.analysis.metrics[0].templateRef: "
                                "MetricTemplate shop/latency not found")]


async def test_a_target_deleted_in_the_middle_of_a_rollout_is_acted_on_at_once() -> None:
    """The traffic goes back to the primary without waiting: the spec is acted on."""
    canary, _ = analysing(datetime.now(UTC))
    canary["status"]["observedGeneration"] = 1
    fakes, _, worker, _ = applied(canary)  # no Deployment
    await worker.reconcile()
    assert [e[:2] for e in fakes.events_recorded] == [
        ("Warning", "TargetNotFound"), ("Warning", "RolledBack")]
