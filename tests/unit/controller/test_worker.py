"""The worker around the decision: what it reads and writes, and in which order."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from canary.controller.executor import Applied
from canary.controller.finalizer import Finalizer
from canary.controller.rollout_queue import RolloutQueue
from canary.controller.services import Services
from canary.controller.worker import REFERENCE_GRACE, Worker
from canary.core import DecisionSettings
from canary.core.actions import Action
from canary.core.observation import Counters, HookResult, JudgeReading
from canary.core.timefmt import format_time
from canary.kube import Reflector, TransportError
from canary.models.canary import Canary
from canary.notify import Notifier
from canary.observability import ControllerMetrics
from canary.settings import Settings, WorkloadSettings
from canary.targets.deployment import REVISION_ANNOTATION, revision_of
from tests.unit.controller.caches import Cache, caches


def deployment(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "generation": 1,
                         "annotations": annotations or {}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "v2"}]}}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                       "availableReplicas": 2}}


class Fakes:
    """The services a Worker uses: fakes of those that reach out (the API, Prometheus,
    webhooks), recording every read, call and write, and the real rest."""

    def __init__(self, canary: dict[str, Any], *deployments: dict[str, Any]) -> None:
        self.log: list[str] = []
        self.readings = 0
        self.canaries = Cache(canary)
        self.patches: list[dict[str, Any]] = []
        self.events_recorded: list[tuple[str, str, str]] = []
        self.sent: list[str] = []
        self.services = self.build(Cache(*deployments))

    def build(self, deployments: Cache) -> Services:
        held = caches(canaries=self.canaries, deployments=deployments)
        settings = Settings(workloads=WorkloadSettings(selector_labels=("app",)))
        executor = FakeExecutor()
        return Services(
            client=self, settings=settings, caches=held,
            decision_settings=DecisionSettings(min_interval=1),
            analyst=self, webhooks=self, executor=executor,
            finalizer=Finalizer(Untouched(), Untouched(), self,
                                generated=held.generated, selector_labels=("app",),
                                mesh_provider="istio"),
            events=self, notifier=Notifier(secrets=held.secrets.get,
                                           providers=held.alert_providers.get),
            default_alerts=(), metrics=ControllerMetrics(process_metrics=False),
            rollouts=RolloutQueue(held.canaries, 0))

    def without_deployments(self) -> None:
        self.services = self.build(Cache())

    def send_event(self, canary: Canary, type_: str, note: str) -> None:
        self.sent.append(type_)

    async def measure(self, canary: Canary) -> tuple[()]:
        self.log.append("measure")
        return ()

    async def read_counters(self, canary: Canary) -> tuple[JudgeReading, ...] | None:
        self.log.append("read judge")
        self.readings += 1
        at = datetime(2026, 1, 1, tzinfo=UTC).timestamp() + 100 + self.readings
        return (JudgeReading("error-rate", Counters(100 * self.readings, 0, lost=0),
                             Counters(900 * self.readings, 9 * self.readings, lost=0),
                             at=at, since=datetime(2026, 1, 1, tzinfo=UTC).timestamp()),)

    async def call_type(self, canary: Canary, type_: str) -> tuple[HookResult, ...]:
        self.log.append(f"hook {type_}")
        return tuple(HookResult(h.name, type_, True) for h in canary.spec.analysis.webhooks
                     or [] if h.type == type_)

    async def merge_patch(self, resource: Any, name: str, patch: dict[str, Any],
                          namespace: str | None = None, subresource: str | None = None
                          ) -> dict[str, Any]:
        self.patches.append(patch)
        obj = copy.deepcopy(self.canaries.get("shop", "web"))
        assert obj is not None
        obj.setdefault("status", {}).update(patch["status"])
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        self.canaries.objects[("shop", "web")] = obj
        return obj

    async def list(self, resource: Any, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None) -> dict[str, Any]:
        self.log.append("list")
        obj = self.canaries.get("shop", "web")
        return {"items": [copy.deepcopy(obj)] if obj is not None else []}

    async def record(self, regarding: dict[str, Any], type_: str, reason: str,
                     note: str, action: str | None = None) -> None:
        self.events_recorded.append((type_, reason, note))


class FakeExecutor:
    """Carries out nothing, repairs nothing."""

    async def execute(self, owner: dict[str, Any], canary: Canary,
                      actions: tuple[Action, ...], established: bool = False) -> list[str]:
        return []


class Untouched:
    """The finalizer's API and applier, for Canaries without revertOnDeletion: any call
    fails the test."""

    async def get(self, resource: Any, name: str, namespace: str | None = None
                  ) -> dict[str, Any]:
        raise AssertionError("the finalizer read the API")

    async def merge_patch(self, resource: Any, name: str, patch: dict[str, Any],
                          namespace: str | None = None, subresource: str | None = None
                          ) -> dict[str, Any]:
        raise AssertionError("the finalizer patched an object")

    async def json_patch(self, resource: Any, name: str, operations: Sequence[dict[str, Any]],
                         namespace: str | None = None, subresource: str | None = None
                         ) -> dict[str, Any]:
        raise AssertionError("the finalizer patched an object")

    async def delete(self, resource: Any, name: str, namespace: str | None = None, *,
                     propagation: str = "Background") -> dict[str, Any]:
        raise AssertionError("the finalizer deleted an object")

    async def apply(self, manifest: dict[str, Any], cache: Reflector) -> Applied:
        raise AssertionError("the finalizer applied an object")


def analysing(now: datetime) -> tuple[dict[str, Any], Fakes]:
    """A judged Canary at weight 10 whose step is due, with a rollout hook and a
    confirm-traffic-increase gate, in a controller that sees both Deployments."""
    target = deployment("web")
    revision = revision_of(target, lambda kind, name: None)
    primary = deployment("web-primary", {REVISION_ANNOTATION: revision})
    started = format_time(now - timedelta(seconds=20), precise=True)
    canary = {
        "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": "shop", "generation": 1,
                     "resourceVersion": "7"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80}, "analysis": {
                     "interval": "10s", "threshold": 2, "stepWeight": 10, "maxWeight": 30,
                     "webhooks": [
                         {"name": "load", "type": "rollout", "url": "http://load/"},
                         {"name": "gate", "type": "confirm-traffic-increase",
                          "url": "http://gate/"}],
                     "judge": {"metrics": [{"name": "error-rate", "type": "errorRate"}]}}},
        "status": {"phase": "Progressing", "observedGeneration": 1, "canaryWeight": 10,
                   "failedChecks": 0,
                   "iterations": 0, "lastAppliedSpec": revision,
                   "lastPromotedSpec": "old", "analysisStartedAt": started,
                   "stepStartedAt": started, "judge": {
                       "revision": revision, "alpha": 0.05, "beta": 0.2, "metrics": [{
                           "name": "error-rate", "type": "errorRate",
                           "spec": "errorRate minimumEffect=1.5x", "minimumEffect": 1.5,
                           "baseline": {"canaryRequests": 0, "canaryEvents": 0,
                                        "primaryRequests": 0, "primaryEvents": 0},
                           "reading": {"canaryRequests": 0, "canaryEvents": 0,
                                       "primaryRequests": 0, "primaryEvents": 0},
                           "readingAt": "2026-01-01T00:00:00.000Z"}]}}}
    return canary, Fakes(canary, target, primary)


async def test_the_judge_is_read_after_the_hooks_just_before_the_decision_that_uses_it(
        ) -> None:
    canary, fakes = analysing(datetime.now(UTC))
    worker = Worker(fakes.services, "shop", "web")
    model = Canary.model_validate(canary)
    decision = await worker._decide(model, await worker._observe(model, canary))
    # Metrics and the rollout hook, then the gate; the counters are read after each
    # pass's hooks, so the pass that moves the weight decides on a fresh reading.
    assert fakes.log == ["measure", "hook rollout", "read judge",
                              "hook confirm-traffic-increase", "read judge"]
    assert decision.status.canary_weight == 20
    [metric] = decision.status.judge.metrics  # type: ignore[union-attr]
    assert metric.reading is not None and metric.reading.canary_requests == 200
    assert metric.reading_at == "2026-01-01T00:01:42.000Z"


async def test_an_unreadable_canary_says_why_once_in_a_condition_and_an_event() -> None:
    canary, fakes = analysing(datetime.now(UTC))
    canary["spec"]["analysis"]["judge"]["metrics"][0]["minimumEffect"] = "2000x"
    worker = Worker(fakes.services, "shop", "web")
    assert await worker.reconcile() is None
    [patch] = fakes.patches
    assert patch["metadata"] == {"resourceVersion": "7"}
    [ready] = [c for c in patch["status"]["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith(
        "the Canary cannot be read: spec.analysis.judge.metrics[0].minimumEffect: ")
    assert "at most 1000" in ready["message"] and ready["observedGeneration"] == 1
    # No wait fixes it: Stalled (kstatus: Failed), on the generation read.
    [stalled] = [c for c in patch["status"]["conditions"] if c["type"] == "Stalled"]
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec")
    assert patch["status"]["observedGeneration"] == 1
    assert set(patch["status"]) == {"conditions", "observedGeneration"}  # nothing else
    assert fakes.events_recorded == [("Warning", "InvalidSpec", ready["message"])]
    # Woken again (by its own write, or a timer): nothing new to say, nothing written.
    assert await worker.reconcile() is None
    assert len(fakes.patches) == 1 and len(fakes.events_recorded) == 1
    # A different problem is said again.
    fixed = fakes.canaries.get("shop", "web")
    assert fixed is not None
    fixed["spec"]["analysis"]["judge"]["metrics"][0]["minimumEffect"] = "+100000%"
    assert await worker.reconcile() is None
    assert len(fakes.patches) == 2 and "+99900%" in fakes.events_recorded[-1][2]


async def test_a_warning_event_is_logged_as_a_warning() -> None:
    """The log says as loudly as the event does that something is wrong: a target gone
    in the middle of an analysis is a Warning event (and the rollback it causes another),
    and a warning line."""
    _, fakes = analysing(datetime.now(UTC))
    fakes.without_deployments()  # the target is gone
    sent = fakes.sent
    worker = Worker(fakes.services, "shop", "web")
    with capture_logs() as logs:
        await worker.reconcile()
    assert [event[:2] for event in fakes.events_recorded] == [
        ("Warning", "TargetNotFound"), ("Warning", "RolledBack")]
    assert sent == ["Warning", "Warning"]
    [line] = [entry for entry in logs if entry.get("reason") == "TargetNotFound"]
    assert line["log_level"] == "warning"



async def test_an_unreadable_canary_keeps_the_time_it_became_unready() -> None:
    """Ready was already False: the InvalidSpec condition keeps its transition time; it
    was True: the time is now."""
    for ready, kept in (("False", True), ("True", False)):
        canary, fakes = analysing(datetime.now(UTC))
        canary["spec"]["analysis"]["judge"]["metrics"][0]["minimumEffect"] = "2000x"
        canary["status"]["conditions"] = [
            {"type": "Ready", "status": ready, "reason": "Progressing", "message": "",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Promoted", "status": "Unknown", "reason": "Waiting",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        await Worker(fakes.services, "shop", "web").reconcile()
        [patch] = fakes.patches
        [promoted, ready_now, _stalled] = patch["status"]["conditions"]
        assert promoted["type"] == "Promoted" and ready_now["reason"] == "InvalidSpec"
        assert (ready_now["lastTransitionTime"] == "2026-01-01T00:00:00Z") is kept


class RecordingExecutor:
    """Carries out nothing, and remembers the actions it was given."""

    def __init__(self) -> None:
        self.actions: list[object] = []

    async def execute(self, owner: object, canary: object, actions: tuple[object, ...],
                      established: bool = False) -> list[str]:
        self.actions += actions
        return []


@pytest.mark.parametrize(("provider", "default"), [("kubernetes", "istio"), (None, "kubernetes")])
async def test_a_provider_canary_cannot_route_with_is_refused_with_nothing_written(
        provider: str | None, default: str) -> None:
    """A weighted analysis with the kubernetes provider (which Services cannot route; the
    CRD refuses it with spec.provider, but a Canary without spec.provider under
    --mesh-provider kubernetes gets here): Ready=False UnsupportedProvider naming the
    field, one Warning event, no action, no finalizer added (the finalizer's API fails
    any call), and nothing more when woken again."""
    said = ("spec.provider kubernetes", "spec.analysis.stepWeight needs a provider with a mesh")
    canary, fakes = analysing(datetime.now(UTC))
    canary["spec"] |= {"revertOnDeletion": True}
    if provider is not None:
        canary["spec"]["provider"] = provider
    del canary["status"]
    settings = Settings(mesh_provider=default,
                        workloads=WorkloadSettings(selector_labels=("app",)))
    fakes.services = replace(fakes.services, settings=settings)
    executor = RecordingExecutor()
    fakes.services = replace(fakes.services, executor=executor)
    worker = Worker(fakes.services, "shop", "web")
    await worker.reconcile()
    [patch] = fakes.patches
    [ready] = [c for c in patch["status"]["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "UnsupportedProvider")
    assert all(part in ready["message"] for part in said), ready["message"]
    assert fakes.events_recorded == [("Warning", "UnsupportedProvider", ready["message"])]
    assert executor.actions == [] and "phase" not in patch["status"]
    await worker.reconcile()
    assert len(fakes.patches) == 1 and len(fakes.events_recorded) == 1
    assert executor.actions == []


def refused_route() -> dict[str, Any]:
    """canary's HTTPRoute web, refused by Gateway shop/public."""
    conditions = [{"type": "Accepted", "status": "False", "observedGeneration": 1,
                   "reason": "NoMatchingListenerHostname", "message": "no listener matches"},
                  {"type": "ResolvedRefs", "status": "True", "observedGeneration": 1,
                   "reason": "ResolvedRefs"}]
    return {"kind": "HTTPRoute", "metadata": {"name": "web", "namespace": "shop",
                                              "generation": 1},
            "spec": {"parentRefs": [{"name": "public"}]},
            "status": {"parents": [{"parentRef": {"name": "public"},
                                    "conditions": conditions}]}}


async def test_a_route_its_gateway_refused_holds_the_weight_naming_the_gateway() -> None:
    """The worker reads the route's acceptance from the caches through the router: at the
    step's end nothing is measured or moved, RouteAccepted says why, in one event."""
    canary, fakes = analysing(datetime.now(UTC))
    canary["spec"] |= {"provider": "gatewayapi:v1"}
    canary["spec"]["service"]["gatewayRefs"] = [{"name": "public"}]
    fakes.services = replace(fakes.services, caches=replace(
        fakes.services.caches, http_routes=cast(Reflector, Cache(refused_route()))))
    worker = Worker(fakes.services, "shop", "web")
    await worker.reconcile()
    [patch] = fakes.patches
    [held] = [c for c in patch["status"]["conditions"] if c["type"] == "RouteAccepted"]
    assert (held["status"], held["reason"]) == ("False", "RouteNotAccepted")
    assert held["message"] == ("HTTPRoute shop/web: Gateway shop/public refused the route: "
                               "NoMatchingListenerHostname: no listener matches")
    assert fakes.events_recorded == [("Warning", "RouteNotAccepted", held["message"])]
    assert fakes.log == [] and "canaryWeight" not in patch["status"]


def through_users_route(canary: dict[str, Any]) -> None:
    """Route the Canary through the user's HTTPRoute storefront."""
    canary["spec"] |= {"provider": "gatewayapi:v1"}
    canary["spec"]["service"]["routeRef"] = {"kind": "HTTPRoute", "name": "storefront"}


async def test_a_missing_users_route_holds_the_canary_naming_route_ref() -> None:
    """A new Canary whose route is missing: Ready=False naming spec.service.routeRef,
    and nothing is created, so no traffic moves."""
    canary, fakes = analysing(datetime.now(UTC))
    through_users_route(canary)
    del canary["status"]
    executor = RecordingExecutor()
    fakes.services = replace(fakes.services, executor=executor)
    times = iter([0.0, REFERENCE_GRACE])  # still missing after the grace a new spec gets
    worker = Worker(fakes.services, "shop", "web", clock=lambda: next(times))
    assert await worker.reconcile() == REFERENCE_GRACE
    await worker.reconcile()
    [patch] = fakes.patches
    [ready] = [c for c in patch["status"]["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "MissingReference")
    assert ready["message"] == "spec.service.routeRef: HTTPRoute shop/storefront not found"
    assert executor.actions == []


async def test_the_acceptance_of_the_users_route_holds_the_weight() -> None:
    """The Gateway refused the user's route: RouteAccepted says so, naming that route."""
    canary, fakes = analysing(datetime.now(UTC))
    through_users_route(canary)
    route = refused_route()
    route["metadata"]["name"] = "storefront"
    route["spec"]["rules"] = [{"backendRefs": [{"name": "web", "port": 80}]}]
    fakes.services = replace(fakes.services, caches=replace(
        fakes.services.caches, http_routes=cast(Reflector, Cache(route))))
    await Worker(fakes.services, "shop", "web").reconcile()
    [patch] = fakes.patches
    [held] = [c for c in patch["status"]["conditions"] if c["type"] == "RouteAccepted"]
    assert held["message"] == ("HTTPRoute shop/storefront: Gateway shop/public refused the "
                               "route: NoMatchingListenerHostname: no listener matches")
    assert fakes.log == [] and "canaryWeight" not in patch["status"]


def at_rest_with_a_new_revision() -> tuple[dict[str, Any], Fakes]:
    """A Succeeded Canary whose target has a revision its primary does not run yet."""
    target = deployment("web")
    primary = deployment("web-primary", {REVISION_ANNOTATION: "old"})
    canary, _ = analysing(datetime.now(UTC))
    canary["status"] = {"phase": "Succeeded", "canaryWeight": 0, "lastAppliedSpec": "old",
                        "lastPromotedSpec": "old"}
    return canary, Fakes(canary, target, primary)


async def test_a_new_revision_waits_for_the_slot_another_canary_holds() -> None:
    """Under --max-concurrent-rollouts 1, with another Canary's rollout under way, the
    worker writes phase Queued naming the place, said once; once that rollout is over
    (as the cache shows), the same worker starts the analysis."""
    _, fakes = at_rest_with_a_new_revision()
    other: dict[str, Any] = {"metadata": {"name": "api", "namespace": "shop"}, "spec": {},
                             "status": {"phase": "Progressing"}}
    fakes.canaries.objects[("shop", "api")] = other
    fakes.services = replace(fakes.services, rollouts=RolloutQueue(
        cast(Reflector, fakes.canaries), 1))
    worker = Worker(fakes.services, "shop", "web")
    await worker.reconcile()
    status = fakes.patches[-1]["status"]
    assert status["phase"] == "Queued" and status["queuedAt"]
    [promoted] = [c for c in status["conditions"] if c["type"] == "Promoted"]
    assert promoted["message"].endswith(
        "1st in the queue of 1; 1 of 1 rollout running (--max-concurrent-rollouts 1)")
    await worker.reconcile()
    assert [event[1] for event in fakes.events_recorded] == ["Queued"]
    other["status"]["phase"] = "Succeeded"
    await worker.reconcile()
    status = fakes.patches[-1]["status"]
    assert status["phase"] == "Progressing" and status["queuedAt"] is None
    assert [event[1] for event in fakes.events_recorded] == ["Queued", "NewRevision"]


class FailingFirst:
    """Fails the first ``failures`` executions as a timed-out write would; remembers
    whether each was told the Canary's objects should exist already."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.established: list[bool] = []

    async def execute(self, owner: object, canary: object, actions: tuple[object, ...],
                      established: bool = False) -> list[str]:
        self.established.append(established)
        if self.failures:
            self.failures -= 1
            raise TransportError("PATCH /api/v1/namespaces/shop/services/web: TimeoutError")
        return []


async def test_objects_a_failed_initialization_left_uncreated_are_not_reported_restored(
        ) -> None:
    """The status says Initialized, but the actions creating the objects failed part
    way (an API server too slow to answer): on the retry, a missing object is created
    as new, not reported as deleted by someone ("was missing: created again"), until
    the actions once succeed."""
    canary, fakes = analysing(datetime.now(UTC))
    del canary["spec"]["analysis"]["judge"], canary["status"]["judge"]
    canary["status"]["phase"] = "Initializing"
    executor = FailingFirst(failures=2)
    fakes.services = replace(fakes.services, executor=executor)
    worker = Worker(fakes.services, "shop", "web")
    for _ in range(2):
        with pytest.raises(TransportError):
            await worker.reconcile()
        cached = copy.deepcopy(fakes.canaries.get("shop", "web"))
        assert cached is not None
        cached["status"]["phase"] = "Initialized"  # as the decision before the actions wrote
        cached["metadata"]["resourceVersion"] = str(int(cached["metadata"]["resourceVersion"])
                                                    + 1)
        fakes.canaries.objects[("shop", "web")] = cached
    await worker.reconcile()
    await worker.reconcile()
    assert executor.established == [False, False, False, True]


async def test_a_canary_creating_its_primary_waits_for_a_turn() -> None:
    """With every turn to create a primary taken, a new Canary writes nothing (not even
    its status) until one is given back; then it initializes."""
    canary, _ = analysing(datetime.now(UTC))
    del canary["status"]
    fakes = Fakes(canary, deployment("web"))  # no primary yet
    fakes.services = replace(fakes.services, initializations=asyncio.Semaphore(1))
    turns = fakes.services.initializations
    assert turns is not None
    await turns.acquire()  # another Canary creating its primary
    worker = Worker(fakes.services, "shop", "web")
    worker.start()
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert fakes.patches == []
        turns.release()
        for _ in range(20):
            await asyncio.sleep(0)
        assert fakes.patches and fakes.patches[0]["status"]["phase"] == "Initializing"
    finally:
        await worker.stop()


async def test_a_canary_that_had_its_turn_is_not_queued_again() -> None:
    """The reconcile after the one that created the primary may come before the watch
    brings that primary: it goes ahead, whoever holds the turns then."""
    canary, _ = analysing(datetime.now(UTC))
    del canary["status"]
    fakes = Fakes(canary, deployment("web"))  # the primary never shows in the cache
    fakes.services = replace(fakes.services, initializations=asyncio.Semaphore(1))
    turns = fakes.services.initializations
    assert turns is not None
    worker = Worker(fakes.services, "shop", "web")
    worker.start()
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(fakes.patches) == 1  # Initializing, in its turn
        await turns.acquire()  # the next Canary's turn
        written = len(fakes.patches)
        cached = fakes.canaries.get("shop", "web")
        assert cached is not None
        cached["metadata"]["annotations"] = {"canary.dev/paused": "true"}
        worker.wake.set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(fakes.patches) > written
    finally:
        await worker.stop()


async def test_a_canary_whose_primary_exists_needs_no_turn() -> None:
    """Turns are for creating a primary: a Canary under analysis reconciles while every
    turn is taken."""
    _, fakes = analysing(datetime.now(UTC))
    fakes.services = replace(fakes.services, initializations=asyncio.Semaphore(1))
    turns = fakes.services.initializations
    assert turns is not None
    await turns.acquire()
    worker = Worker(fakes.services, "shop", "web")
    worker.start()
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert fakes.patches and fakes.patches[0]["status"]["canaryWeight"] == 20
    finally:
        await worker.stop()
