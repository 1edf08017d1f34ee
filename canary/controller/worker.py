"""One worker per Canary: woken by watch events and by its own timer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from canary.backoff import Backoff
from canary.controller import claims, references
from canary.controller.executor import OwnedElsewhere
from canary.controller.field_owners import replicas_owner
from canary.controller.pod_reasons import PodReasons
from canary.controller.services import Services
from canary.core import Decision, Observation, decide
from canary.core import conditions as built
from canary.core.observation import ManualRequests, RouteHold
from canary.kube import JSON, Conflict, KubeError, NotFound
from canary.kube import resources as r
from canary.models.annotations import (
    ABORT_ANNOTATION,
    APPROVE_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_ANNOTATION,
)
from canary.models.canary import Canary, CanaryStatus, Condition, Phase
from canary.models.problems import describe
from canary.notify import alert_for_event, dashboard_url
from canary.observability import rollout_seconds
from canary.router import problem, provider_of, router_for, users_route
from canary.targets.deployment import (
    REVISION_ANNOTATION,
    UnsupportedTarget,
    primary_name,
    revision_of,
    rollout_state,
    selector_label,
)

log = structlog.get_logger("canary.controller")

#: Seconds to wait before retrying after a failure (0.5, doubled per failure, at most 30).
RETRY_BACKOFF = Backoff(0.5, 30.0, jitter=0.2)
#: Seconds a spec canary has not acted on yet may name objects the caches do not hold
#: before canary decides (and says they are missing). A GitOps controller applies a
#: commit's objects one after another (Flux applies a Canary a few milliseconds before
#: the MetricTemplate it names), and each kind's watch brings them in its own time: the
#: Canary that came first would otherwise be told "not found" of an object on its way.
REFERENCE_GRACE = 5.0


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch turning ``old`` into ``new``: removed keys become null."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch = {key: merge_patch(old.get(key), value) for key, value in new.items()
             if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


def _as_condition(raw: JSON | None) -> Condition | None:
    """A condition as an invalid Canary's status holds it, enough to carry its transition
    time over: None without a status and a transition time."""
    if raw is None or raw.get("status") not in ("True", "False", "Unknown"):
        return None
    since = raw.get("lastTransitionTime")
    if not since or not isinstance(since, str):
        return None
    return Condition.model_construct(type=str(raw.get("type")), status=raw["status"],
                                     reason=str(raw.get("reason")), last_transition_time=since)


class Worker:
    def __init__(self, services: Services, namespace: str, name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.clock = clock
        self.namespace, self.name = namespace, name
        self.wake = asyncio.Event()
        self.log = log.bind(canary=f"{namespace}/{name}")
        #: The object as our last write (or re-read) returned it, used while the watch
        #: cache still shows one of the older resourceVersions in ``_superseded``.
        self._fresh: JSON | None = None
        self._superseded: set[str] = set()
        self.task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pods = PodReasons(services.client)
        #: The actions that create the Canary's objects failed part way: until they once
        #: succeed, an object found missing was never created, not deleted by someone.
        self._creating = False
        #: A reconcile has had its turn to create the primary and ended well: the next
        #: ones go ahead, though the watch may not have brought that primary yet.
        self._had_turn = False
        #: The generation whose spec names objects the caches do not hold, and since when
        #: (monotonic seconds) the worker has seen it so; None while nothing is missing.
        self._absent_since: tuple[int, float] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"canary {self.namespace}/{self.name}")
        self.wake.set()

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.task.done()

    async def stop(self, grace: float = 0.0) -> None:
        """Stop after the reconcile in progress, waiting for it at most ``grace`` seconds."""
        self._stopping = True
        self.wake.set()
        if self.task is None:
            return
        if grace > 0:
            await asyncio.wait({self.task}, timeout=grace)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def run(self) -> None:
        """Reconcile whenever woken or due; never dies of a failed reconcile."""
        delay: float | None = None
        failures = 0
        while not self._stopping:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a
            # cancellation that races with the event, and the worker would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.wake.wait()
            if self._stopping:
                return
            self.wake.clear()
            started = time.monotonic()
            try:
                turns = self._turns()
                async with turns or contextlib.nullcontext():
                    delay = await self.reconcile()
                self._had_turn = self._had_turn or turns is not None
                failures = 0
                continue
            except Conflict:
                self.log.info("the Canary changed underneath; reading it again")
                with contextlib.suppress(KubeError):
                    await self._reread()
                    delay = 0
                    continue
            except (KubeError, OwnedElsewhere) as exc:
                self.log.warning("reconcile failed, retrying", error=str(exc))
            except Exception:
                self.log.exception("reconcile failed unexpectedly, retrying")
            finally:
                self.services.metrics.record_reconcile(time.monotonic() - started,
                                                       self.namespace, self.name)
            failures += 1
            delay = RETRY_BACKOFF.delay(failures)

    def _turns(self) -> asyncio.Semaphore | None:
        """The turns to wait for: a reconcile that may create the primary waits for one
        among those that do (``Services.initializations``); every other one goes ahead
        (None), and so does every one after a turn that ended well: waiting again at the
        back of the line because the watch had not yet brought the primary just created
        held a Canary for as long as a thousand others took to create theirs."""
        turns = self.services.initializations
        return turns if turns is not None and not self._had_turn and \
            self._creates_primary() else None

    def _creates_primary(self) -> bool:
        """Whether the Canary's target is cached and its primary is not: the reconcile
        would create the primary (and its configs' copies)."""
        obj = self._current()
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return False
        target = ((obj.get("spec") or {}).get("targetRef") or {}).get("name")
        deployments = self.services.caches.deployments
        return isinstance(target, str) and \
            deployments.get(self.namespace, target) is not None and \
            deployments.get(self.namespace, primary_name(target)) is None

    def _remember(self, written: JSON, superseded: set[str]) -> None:
        self._superseded |= superseded
        self._fresh = written

    def _current(self) -> JSON | None:
        cached = self.services.caches.canaries.get(self.namespace, self.name)
        if cached is None:
            return None
        if self._fresh is not None:
            if cached["metadata"].get("resourceVersion") in self._superseded:
                return self._fresh  # the watch has not delivered our write yet
            self._fresh, self._superseded = None, set()
        return cached

    async def _reread(self) -> None:
        cached = self.services.caches.canaries.get(self.namespace, self.name)
        # A list narrowed to one name reads as freshly as a GET and needs no permission
        # beyond the list the watch already has.
        listing = await self.services.client.list(
            r.CANARIES, self.namespace, field_selector=f"metadata.name={self.name}")
        if not listing["items"]:
            raise NotFound(404, "NotFound", f"Canary {self.namespace}/{self.name} is gone")
        fresh = listing["items"][0]
        stale = {str(obj["metadata"].get("resourceVersion"))
                 for obj in (cached, self._fresh) if obj is not None}
        stale.discard(str(fresh["metadata"].get("resourceVersion")))
        self._remember(fresh, stale)

    async def reconcile(self) -> float | None:
        obj = self._current()
        if obj is None:
            return None
        if obj["metadata"].get("deletionTimestamp"):
            return await self.services.finalizer.finalize(obj, self.log)
        try:
            canary = Canary.model_validate(obj)
        except ValidationError as exc:
            self.log.error("the Canary does not match its schema", error=str(exc))
            await self._invalid(obj, exc)
            return None
        if canary.spec.revert_on_deletion and self._provider_problem(canary) is None:
            updated = await self.services.finalizer.ensure(obj)
            if updated is not obj:
                self._remember(updated, {str(obj["metadata"]["resourceVersion"])})
                obj = updated
        observation = await self._observe(canary, obj)
        grace = self._grace_left(canary, observation)
        if grace is not None:
            self.log.info("the spec names objects not found; deciding if they are still "
                          f"missing in {grace:.1f}s", missing=observation.missing_references,
                          target_found=observation.target.exists)
            return grace
        decision = await self._decide(canary, observation)
        old_status = obj.get("status") or {}
        new_status = decision.status.to_api()
        if new_status != old_status:
            obj = await self._write_status(obj, merge_patch(old_status, new_status))
        # Hooks and actions see the Canary as just decided (its new phase, for instance).
        previous = canary.status
        canary = canary.model_copy(update={"status": decision.status})
        self._measure(canary, previous)
        # Events first: they report the decision just recorded, even if an action fails.
        for event in decision.events:
            report = self.log.warning if event.type == "Warning" else self.log.info
            report(event.message, reason=event.reason, type=event.type,
                   phase=str(decision.status.phase))
            await self.services.events.record(obj, event.type, event.reason, event.message)
            self.services.webhooks.send_event(canary, event.type, event.message)
            alert = alert_for_event(
                canary, event.reason, event.message,
                previous_phase=str(previous.phase) if previous.phase else None,
                previous_weight=previous.canary_weight, dashboard=self._dashboard())
            if alert is not None:
                own = canary.spec.analysis.alerts  # [] opts out of the default
                self.services.notifier.notify(
                    alert, self.services.default_alerts if own is None else own)
        established = previous.phase not in (None, Phase.INITIALIZING) and not self._creating
        try:
            repairs = await self.services.executor.execute(obj, canary, decision.actions,
                                                           established)
        except Exception:
            self._creating = not established
            raise
        self._creating = False
        for repair in repairs:
            self.log.warning(repair, reason="Restored")
            await self.services.events.record(obj, "Warning", "Restored", repair)
        return decision.wake_after

    async def _invalid(self, obj: JSON, exc: ValidationError) -> None:
        """Say on the Canary why it cannot be delivered: ``Ready=False`` and (for kstatus:
        no wait fixes it) ``Stalled=True``, reason ``InvalidSpec``, on the generation
        read, and a Warning event, once per distinct problem."""
        message = f"the Canary cannot be read: {describe(exc)}"
        generation = obj["metadata"].get("generation")
        old_status = obj.get("status") or {}
        conditions = [c for c in old_status.get("conditions") or [] if isinstance(c, dict)]
        old = {c.get("type"): c for c in conditions}
        ready = old.get("Ready")
        if ready is not None and (ready.get("status"), ready.get("reason"),
                                  ready.get("message")) == ("False", "InvalidSpec", message):
            return  # already said
        said: tuple[tuple[str, built.Status], ...] = (("Ready", "False"), ("Stalled", "True"))
        made = [built.condition(type_, value, "InvalidSpec", message,
                                previous=_as_condition(old.get(type_)),
                                generation=generation, now=datetime.now(UTC)).to_api()
                for type_, value in said]
        conditions = sorted([c for c in conditions if c.get("type") not in
                             ("Ready", "Stalled", "Reconciling")] + made,
                            key=lambda c: str(c.get("type")))
        obj = await self._write_status(obj, {"conditions": conditions,
                                             "observedGeneration": generation})
        await self.services.events.record(obj, "Warning", "InvalidSpec", message)

    def _measure(self, canary: Canary, previous: CanaryStatus) -> None:
        metrics = self.services.metrics
        metrics.observe(canary)
        now = datetime.now(UTC)
        metrics.record_transition(self.namespace, self.name, previous.phase,
                                  canary.status.phase, rollout_seconds(canary.status, now))

    def _dashboard(self) -> str | None:
        base = self.services.settings.alerts.dashboard_url
        return dashboard_url(base, self.namespace, self.name) if base else None

    def _grace_left(self, canary: Canary, observation: Observation) -> float | None:
        """Seconds left of :data:`REFERENCE_GRACE` while a spec canary has not acted on
        (a new Canary, or a generation its status has not observed) names a target or
        other objects the caches do not hold; None to decide now. A Canary already
        acting on its spec is never held: a target deleted in the middle of a rollout
        sends the traffic back to the primary at once."""
        status = canary.status
        unacted = status.phase in (None, Phase.INITIALIZING) or \
            (status.observed_generation or 0) < observation.generation
        if not unacted or (observation.target.exists and not observation.missing_references):
            self._absent_since = None
            return None
        now = self.clock()
        if self._absent_since is None or self._absent_since[0] != observation.generation:
            self._absent_since = (observation.generation, now)
        left = REFERENCE_GRACE - (now - self._absent_since[1])
        return left if left > 0 else None

    async def _decide(self, canary: Canary, observation: Observation) -> Decision:
        decision = self._decide_now(canary, observation)
        # Each pass may ask for more evidence (metrics, webhook answers); a decision
        # never needs more than one pass per kind.
        for _ in range(4):
            if not (decision.needs_metrics or decision.needs_hooks or decision.needs_judge):
                return decision
            metrics, judge = observation.metrics, observation.judge
            if decision.needs_metrics:
                metrics = await self.services.analyst.measure(canary)
            hooks = dict(observation.hooks or {})
            for type_ in decision.needs_hooks:
                hooks[type_] = await self.services.webhooks.call_type(canary, type_)
            # The judge's counters are read last, after the hooks, and again in every
            # pass: the pass that decides uses counters read just before it, so the
            # weight it sets follows them without the hooks' latency in between.
            if decision.needs_metrics or decision.needs_judge or judge is not None:
                judge = await self.services.analyst.read_counters(canary)
            observation = replace(observation, metrics=metrics, judge=judge, hooks=hooks,
                                  now=datetime.now(UTC))
            decision = self._decide_now(canary, observation)
        raise RuntimeError(f"the decision kept asking for evidence: {decision}")

    def _decide_now(self, canary: Canary, observation: Observation) -> Decision:
        """Decide with the rollout queue as it stands at this moment, and count the
        rollout this decision starts (or ends) at once: with no await in between, no
        other worker can take the same slot."""
        rollouts = self.services.rollouts
        observation = replace(observation, rollout_slot=rollouts.slot(
            canary, observation.target.revision, observation.now))
        decision = decide(canary, observation, self.services.decision_settings)
        rollouts.decided(self.namespace, self.name, decision.status)
        return decision

    async def _observe(self, canary: Canary, obj: JSON) -> Observation:
        """What the decision sees: the Canary's workloads (with their pods' reasons while
        not ready), requests, references and routing, from the caches."""
        caches = self.services.caches
        target_name = canary.spec.target_ref.name
        target = await caches.whole_deployment(self.namespace, target_name)
        primary = claims.own(await caches.whole_deployment(
            self.namespace, primary_name(target_name)), obj)
        primary_revision = ((primary or {}).get("metadata", {}).get("annotations") or {}).get(
            REVISION_ANNOTATION)
        problem = claims.managed_target(target)
        if target is not None and problem is None:
            try:
                selector_label(target, self.services.settings.workloads.selector_labels)
            except UnsupportedTarget as exc:
                problem = str(exc)
        analysis = canary.spec.analysis
        template = ((target or {}).get("spec") or {}).get("template") or {}
        lookup = await caches.config_contents(self.namespace, template)
        annotations = obj["metadata"].get("annotations") or {}
        requests = ManualRequests(
            approve_revision=annotations.get(APPROVE_ANNOTATION),
            promote_revision=annotations.get(PROMOTE_ANNOTATION),
            abort_revision=annotations.get(ABORT_ANNOTATION),
            paused=annotations.get(PAUSED_ANNOTATION) == "true")
        return Observation(
            now=datetime.now(UTC), requests=requests,
            target=await self._pods.explain(target, rollout_state(target, revision_of(
                target, lookup) if target else None,
                analysis.canary_ready_threshold or 100)),
            primary=await self._pods.explain(primary, rollout_state(
                primary, primary_revision, analysis.primary_ready_threshold or 100)),
            generation=int(obj["metadata"].get("generation") or 0), target_problem=problem,
            provider_problem=self._provider_problem(canary),
            route_pending=self._route_pending(canary),
            # A managed target already says what is wrong (and claims another's objects).
            conflict=None if problem is not None else claims.conflict(
                obj, caches.canaries.items(self.namespace),
                caches.generated_lookup(self.namespace), self.services.settings.mesh_provider),
            missing_references=self._missing_references(canary, target),
            invalid_references=references.invalid_variables(canary, caches.metric_templates.get),
            stale=caches.stale(),
            replicas_owner=replicas_owner(target, self.services.settings.kube.field_manager))

    def _provider_problem(self, canary: Canary) -> str | None:
        """Why this controller cannot route the Canary's traffic (its provider)."""
        return problem(canary, self.services.settings.mesh_provider)

    def _route_pending(self, canary: Canary) -> RouteHold | None:
        """Why the data plane does not follow the Canary's routing as cached yet."""
        if self._provider_problem(canary) is not None:
            return None
        router = router_for(provider_of(canary, self.services.settings.mesh_provider))
        return router.pending(canary, self.services.caches.generated_lookup(self.namespace))

    def _missing_references(self, canary: Canary, target: JSON | None) -> tuple[str, ...]:
        caches = self.services.caches
        route = users_route(canary, self.services.settings.mesh_provider)
        return references.missing(canary, caches.metric_templates.get, caches.autoscalers.get,
                                  caches.metric_templates.covers) + references.missing_route(
            canary, route, caches.generated_lookup(self.namespace)) + \
            references.missing_configs(target, caches.config_lookup(self.namespace),
                                       caches.configmaps.covers)

    async def _write_status(self, obj: JSON, patch: dict[str, Any]) -> JSON:
        """Merge-patch the status, guarded by the resourceVersion it was decided on."""
        rv = str(obj["metadata"]["resourceVersion"])
        try:
            written = await self.services.client.merge_patch(
                r.CANARIES, self.name, {"metadata": {"resourceVersion": rv}, "status": patch},
                self.namespace, subresource="status")
        except NotFound:
            return obj
        cached = self.services.caches.canaries.get(self.namespace, self.name)
        superseded = {rv}
        if cached is not None:
            superseded.add(str(cached["metadata"].get("resourceVersion")))
        self._remember(written, superseded)
        return written
