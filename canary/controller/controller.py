"""The controller: watch caches feeding one worker per Canary.

Canaries, Deployments, HorizontalPodAutoscalers, ConfigMaps, Secrets, the routing
objects canary generates (labelled ``app.kubernetes.io/managed-by: canary``) and the
Gateway API routes (the users' own too, for ``spec.service.routeRef``) are watched.
An event wakes the worker of the Canary it concerns: a change to a target Deployment's
template or to a config it refers to is seen within the watch's latency, not at the next
analysis interval. The caches of configs keep the content of only those canary reads
(kept.py) and are listed after the objects that say which those are. Under
``--max-concurrent-rollouts``, a Canary leaving a rollout (or
the queue) wakes the queued Canaries that may start now (rollout_queue.py). Workers read
only from the caches, so an idle Canary costs no API requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import structlog
from pydantic import ValidationError

from canary.controller.alert_failures import AlertFailures
from canary.controller.analysis import Analyst
from canary.controller.caches import Caches
from canary.controller.executor import Executor
from canary.controller.finalizer import Finalizer
from canary.controller.kept import ContentReaders, DeploymentReaders
from canary.controller.rollout_queue import RolloutQueue
from canary.controller.services import Services
from canary.controller.wakeups import ConfigReferences
from canary.controller.worker import Worker
from canary.core import DecisionSettings
from canary.core.queue import ROLLING
from canary.kube import JSON, KubeClient, Reflector
from canary.kube.events import EventRecorder
from canary.models.canary import Canary
from canary.notify import Notifier, default_subscriptions
from canary.observability import ControllerMetrics, Health
from canary.observability.metrics import EVENT_OUTCOMES
from canary.router import routed_kinds
from canary.settings import Settings
from canary.webhooks import WebhookCaller

log = structlog.get_logger("canary.controller")


#: Seconds between updates of the counters read from the watches and the notifier.
BOOKKEEPING_SECONDS = 5.0
#: Workers started per turn of the event loop once the caches have synced.
WORKERS_PER_TURN = 20


class Controller:
    """The composition root: builds the caches and the services every worker shares,
    and starts, wakes and retires the workers."""

    def __init__(self, client: KubeClient, settings: Settings, *,
                 metrics: ControllerMetrics | None = None, health: Health | None = None,
                 on_listed: Callable[[], None] | None = None,
                 on_synced: Callable[[], None] | None = None) -> None:
        self.settings = settings
        #: Called once every cache has listed, before the workers start.
        self.on_synced = on_synced
        self.metrics = metrics or ControllerMetrics(mesh_provider=settings.mesh_provider)
        self.health = health
        self.caches = Caches.watching(client, settings.kube,
                                      keep_content=self._content_read,
                                      keep_deployment=self._deployment_read,
                                      on_listed=on_listed)
        self.config_references = ConfigReferences(self.caches.canaries,
                                                  self.caches.deployments)
        self.content_readers = ContentReaders(
            self.config_references, self.caches.canaries, self.caches.metric_templates,
            self.caches.alert_providers)
        self.deployment_readers = DeploymentReaders(self.caches.canaries)
        self._follow(self.caches)
        self.webhooks = WebhookCaller(client, cached=self.caches.cached)
        self.events = EventRecorder(client)
        self.notifier = Notifier(
            secrets=self.caches.whole_secret, providers=self.caches.alert_providers.get,
            on_failure=AlertFailures(self.caches.canaries, self.events))
        self.rollouts = RolloutQueue(self.caches.canaries, settings.rollouts.max_concurrent)
        self.services = self._services(client)
        self.workers: dict[tuple[str, str], Worker] = {}
        self._started = False
        self._stopping = False
        self._retiring: set[asyncio.Task[None]] = set()
        #: Whether a look at the rollout queue is scheduled (see _wake_queued).
        self._queue_look_due = False
        #: Called with (namespace, name) whenever a worker is woken; for instrumentation.
        self.on_wake: Callable[[str, str], None] | None = None

    def _follow(self, caches: Caches) -> None:
        """Wake the workers of the Canaries each watch event concerns."""
        caches.canaries.add_handler(self._canary_event)
        caches.deployments.add_handler(self._deployment_event)
        for kind in routed_kinds():
            caches.generated(kind).add_handler(self._owned_event)
            caches.generated(kind).add_handler(self._route_event)
        caches.autoscalers.add_handler(self._autoscaler_event)
        caches.configmaps.add_handler(self._config_event)
        caches.secrets.add_handler(self._config_event)
        caches.metric_templates.add_handler(self._template_event)
        caches.alert_providers.add_handler(self._secret_reader_event)

    def _content_read(self, obj: JSON) -> bool:
        """Whether the caches keep config ``obj`` whole (see kept.py)."""
        return self.content_readers.reads(obj)

    def _deployment_read(self, obj: JSON) -> bool:
        """Whether the caches keep Deployment ``obj`` whole (see kept.py)."""
        return self.deployment_readers.reads(obj)

    def _secret_reader_event(self, _kind: str, obj: JSON) -> None:
        """An object naming Secrets changed: which of them canary reads may have too."""
        self.content_readers.forget(obj["metadata"]["namespace"])

    def _services(self, client: KubeClient) -> Services:
        """What every worker uses, built once."""
        settings, caches = self.settings, self.caches
        executor = Executor(client, settings, caches, self.webhooks.call_type)
        return Services(
            client=client, settings=settings, caches=caches,
            decision_settings=DecisionSettings(
                default_progress_deadline=settings.analysis.default_progress_deadline_seconds,
                min_interval=settings.analysis.min_interval_seconds),
            analyst=Analyst(client, settings.analysis, cached=caches.cached,
                            mesh_provider=settings.mesh_provider),
            webhooks=self.webhooks, executor=executor,
            finalizer=Finalizer(client, executor, self.events, generated=caches.generated,
                                selector_labels=settings.workloads.selector_labels,
                                mesh_provider=settings.mesh_provider),
            events=self.events, notifier=self.notifier,
            default_alerts=default_subscriptions(settings.alerts.default_provider,
                                                 settings.alerts.default_severity),
            metrics=self.metrics, rollouts=self.rollouts,
            initializations=asyncio.Semaphore(limit) if (
                limit := settings.rollouts.max_concurrent_initializations) else None)

    @property
    def canaries(self) -> Reflector:
        return self.caches.canaries

    @property
    def reflectors(self) -> Sequence[Reflector]:
        return self.caches.all()

    def synced(self) -> bool:
        return all(reflector.synced.is_set() for reflector in self.reflectors)

    async def run(self) -> None:
        """Watch and reconcile until cancelled."""
        if self.health is not None:
            self.health.declare(reflector.resource.plural for reflector in self.reflectors)
            for reflector in self.reflectors:
                self.health.follow(reflector.resource.plural, _activity_of(reflector))
        await self.notifier.start()
        async with asyncio.TaskGroup() as tasks:
            for reflector in self.reflectors:
                tasks.create_task(self._watch(reflector),
                                  name=f"watch {reflector.resource.plural}")
                tasks.create_task(self._listed(reflector))
            tasks.create_task(self._bookkeeping(), name="bookkeeping")
            tasks.create_task(self.events.resend(), name="events")
            await asyncio.gather(*(reflector.synced.wait() for reflector in self.reflectors))
            if self.on_synced is not None:
                self.on_synced()
            if self._stopping:
                return
            log.info("caches synced; starting workers", canaries=len(self.canaries))
            self._started = True
            await self._start_workers()

    async def _start_workers(self) -> None:
        """A worker for every cached Canary, :data:`WORKERS_PER_TURN` per turn of the
        event loop: a first reconcile computes for a millisecond or so before its first
        request, and a thousand started in one turn held the loop for a second."""
        for started, obj in enumerate(self.canaries.items(), start=1):
            self._wake(obj["metadata"]["namespace"], obj["metadata"]["name"])
            if started % WORKERS_PER_TURN == 0:
                await asyncio.sleep(0)

    async def stop(self, grace: float = 0.0) -> None:
        """Stop every worker: each finishes the reconcile it is in (status write, actions)
        for up to ``grace`` seconds, then is cancelled. Queued alerts get what is left."""
        self._stopping = True  # no new workers, from now or from a later first sync
        self._started = False
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(worker.stop(grace) for worker in self.workers.values()))
        left = max(0.0, grace - (asyncio.get_running_loop().time() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.events.flush(), timeout=left / 2)
        left = max(0.0, grace - (asyncio.get_running_loop().time() - started))
        await self.notifier.aclose(timeout=left)
        await self.webhooks.close()

    async def _watch(self, reflector: Reflector) -> None:
        """Run one cache once those it depends on have listed (``Caches.listed_after``),
        so that its first list knows what canary reads and stores the rest trimmed."""
        await asyncio.gather(*(r.synced.wait() for r in self.caches.listed_after(reflector)))
        await reflector.run()

    async def _listed(self, reflector: Reflector) -> None:
        await reflector.synced.wait()
        if self.health is not None:
            self.health.mark_listed(reflector.resource.plural)

    async def _bookkeeping(self) -> None:
        """Feed the metrics with what the watches and the notifier count themselves."""
        restarts = CountMirror(self.metrics.record_watch_restart)
        relists = CountMirror(self.metrics.record_watch_relist)
        events = CountMirror(self.metrics.record_events)
        alerts: dict[tuple[str, str], int] = {}
        while True:
            await asyncio.sleep(BOOKKEEPING_SECONDS)
            for reflector in self.reflectors:
                restarts.update(reflector.resource.plural, reflector.restarts)
                relists.update(reflector.resource.plural, reflector.relists)
            for outcome in EVENT_OUTCOMES:
                events.update(outcome, getattr(self.events.stats, outcome))
            for provider, stats in self.notifier.stats.items():
                for outcome in ("delivered", "failed", "dropped"):
                    count = getattr(stats, outcome)
                    if count > alerts.get((provider, outcome), 0):
                        self.metrics.record_alert(provider, outcome,
                                                  count - alerts.get((provider, outcome), 0))
                        alerts[(provider, outcome)] = count
            self.metrics.set_queue_depth(self.queue_depth())

    async def _retire(self, key: tuple[str, str], worker: Worker | None) -> None:
        """A deleted Canary: its worker stops first, so nothing it still records brings
        back the series that are then forgotten."""
        if worker is not None:
            await worker.stop()
        self.metrics.forget(*key)

    def queue_depth(self) -> int:
        """Canaries whose worker has been woken and not yet reconciled."""
        return sum(1 for worker in self.workers.values() if worker.wake.is_set())

    def _wake(self, namespace: str, name: str) -> None:
        if not self._started or self._stopping:
            return
        key = (namespace, name)
        worker = self.workers.get(key)
        if worker is None or not worker.alive:
            worker = self.workers[key] = Worker(self.services, namespace, name)
            worker.start()
        else:
            worker.wake.set()
        if self.on_wake is not None:
            self.on_wake(namespace, name)

    def _canary_event(self, kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        self.config_references.forget(meta["namespace"])
        self.content_readers.forget(meta["namespace"])
        self.deployment_readers.forget(meta["namespace"])
        self._wake_conflicting(meta["namespace"], meta["name"])
        if kind == "DELETED":
            self.rollouts.forget(*key)
            self._wake_queued(kind, obj)
            worker = self.workers.pop(key, None)
            task = asyncio.get_running_loop().create_task(self._retire(key, worker))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            return
        with contextlib.suppress(ValidationError):
            # After a restart the gauges come back from the statuses as they are listed.
            self.metrics.observe(Canary.model_validate(obj))
        self._wake(*key)
        self._wake_queued(kind, obj)

    def _wake_queued(self, kind: str, obj: JSON) -> None:
        """Under a limit on concurrent rollouts, a Canary that is not (or no longer)
        rolling out may have freed a slot, or a place at the head of the queue: the
        queued Canaries that may now start are woken, and only those. Looking at the
        queue reads every Canary, so the events of one pass of the event loop (a
        re-list's thousands) share one look."""
        if not self.rollouts.limited or not self._started or self._queue_look_due:
            return
        if kind != "DELETED" and (obj.get("status") or {}).get("phase") in ROLLING:
            return
        self._queue_look_due = True
        asyncio.get_running_loop().call_soon(self._wake_due)

    def _wake_due(self) -> None:
        self._queue_look_due = False
        for namespace, name in self.rollouts.due(datetime.now(UTC)):
            self._wake(namespace, name)

    def _wake_conflicting(self, namespace: str, changed: str) -> None:
        """A Canary changed or went away: those it kept from their objects look again."""
        for canary in self.canaries.items(namespace):
            name = canary["metadata"]["name"]
            conditions = (canary.get("status") or {}).get("conditions") or []
            if name != changed and any(c.get("type") == "Ready" and c.get("reason") == "Conflict"
                                       for c in conditions if isinstance(c, dict)):
                self._wake(namespace, name)

    def _template_event(self, _kind: str, obj: JSON) -> None:
        """A MetricTemplate appeared, changed or went away: wake the Canaries naming it."""
        meta = obj["metadata"]
        self.content_readers.forget(meta["namespace"])
        for canary in self.canaries.items():
            for metric in ((canary.get("spec") or {}).get("analysis") or {}).get("metrics") or []:
                ref = metric.get("templateRef") if isinstance(metric, dict) else None
                if isinstance(ref, dict) and ref.get("name") == meta["name"] and \
                        (ref.get("namespace") or canary["metadata"]["namespace"]) == \
                        meta["namespace"]:
                    self._wake(canary["metadata"]["namespace"], canary["metadata"]["name"])
                    break

    def _deployment_event(self, _kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        for canary in self.canaries.items(namespace):
            target = ((canary.get("spec") or {}).get("targetRef") or {}).get("name")
            if name == target:
                # The index reads targets' templates; a primary's status changes often.
                self.config_references.forget(namespace)
            if target is not None and name in (target, f"{target}-primary"):
                self._wake(namespace, canary["metadata"]["name"])

    def _config_event(self, kind: str, obj: JSON) -> None:
        """A config changed: wake the Canaries whose target refers to it."""
        meta = obj["metadata"]
        namespace = meta["namespace"]
        for name in self.config_references.referring(namespace, obj.get("kind", ""),
                                                     meta["name"]):
            self._wake(namespace, name)
        self._owned_event(kind, obj)

    def _autoscaler_event(self, _kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        for canary in self.canaries.items(meta["namespace"]):
            ref = (canary.get("spec") or {}).get("autoscalerRef") or {}
            if ref.get("name") == meta["name"]:
                self._wake(meta["namespace"], canary["metadata"]["name"])
        self._owned_event(_kind, obj)

    def _route_event(self, _kind: str, obj: JSON) -> None:
        """A user's route changed (its rules, or a Gateway's verdict on it): wake the
        Canaries routing through it (``spec.service.routeRef``)."""
        meta = obj["metadata"]
        for canary in self.canaries.items(meta["namespace"]):
            ref = ((canary.get("spec") or {}).get("service") or {}).get("routeRef") or {}
            if ref.get("name") == meta["name"] and \
                    ref.get("kind", "HTTPRoute") == obj.get("kind"):
                self._wake(meta["namespace"], canary["metadata"]["name"])

    def _owned_event(self, _kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        for owner in meta.get("ownerReferences") or []:
            if owner.get("kind") == "Canary":
                self._wake(meta["namespace"], owner["name"])


class CountMirror:
    """Feeds a Prometheus counter from a count kept elsewhere, by what it grew since."""

    def __init__(self, record: Callable[[str, int], None]) -> None:
        self.record = record
        self.seen: dict[str, int] = {}

    def update(self, label: str, count: int) -> None:
        grown = count - self.seen.get(label, 0)
        if grown > 0:
            self.record(label, grown)
            self.seen[label] = count


def _activity_of(reflector: Reflector) -> Callable[[], float]:
    return lambda: reflector.last_activity
