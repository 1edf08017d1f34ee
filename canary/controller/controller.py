"""The controller: watch caches feeding one worker per Canary.

Canaries, Deployments, HorizontalPodAutoscalers, ConfigMaps, Secrets and the routing
objects canary generates (labelled ``app.kubernetes.io/managed-by: canary``) are watched.
An event wakes the worker of the Canary it concerns: a change to a target Deployment's
template or to a config it refers to is seen within the watch's latency, not at the next
analysis interval. Workers read only from the caches, so an idle
Canary costs no API requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from canary.controller.analysis import Analyst
from canary.controller.executor import Executor
from canary.controller.finalizer import Finalizer
from canary.controller.worker import Worker
from canary.core import DecisionSettings
from canary.kube import JSON, KubeClient, Reflector
from canary.kube import resources as r
from canary.kube.events import EventRecorder
from canary.settings import Settings
from canary.targets import configs
from canary.targets.deployment import MANAGED_BY
from canary.webhooks import WebhookCaller

log = structlog.get_logger("canary.controller")
MANAGED_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


class Controller:
    def __init__(self, client: KubeClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        namespace = settings.kube.namespaces
        self.canaries = Reflector(client, r.CANARIES, namespace,
                                  label_selector=settings.kube.canary_selector,
                                  on_event=self._canary_event)
        self.caches: dict[str, Reflector] = {
            "deployments": Reflector(client, r.DEPLOYMENTS, namespace,
                                     on_event=self._deployment_event),
            "services": Reflector(client, r.SERVICES, namespace, label_selector=MANAGED_SELECTOR,
                                  on_event=self._owned_event),
            "virtual_services": Reflector(client, r.VIRTUAL_SERVICES, namespace,
                                          label_selector=MANAGED_SELECTOR,
                                          on_event=self._owned_event),
            "destination_rules": Reflector(client, r.DESTINATION_RULES, namespace,
                                           label_selector=MANAGED_SELECTOR,
                                           on_event=self._owned_event),
            "autoscalers": Reflector(client, r.HORIZONTAL_POD_AUTOSCALERS, namespace,
                                     on_event=self._autoscaler_event),
            "configmaps": Reflector(client, r.CONFIG_MAPS, namespace,
                                    on_event=self._config_event),
            "secrets": Reflector(client, r.SECRETS, namespace, on_event=self._config_event),
            "metric_templates": Reflector(client, r.METRIC_TEMPLATES, namespace),
        }
        self.decision_settings = DecisionSettings(
            default_progress_deadline=settings.analysis.default_progress_deadline_seconds,
            min_interval=settings.analysis.min_interval_seconds)
        self.executor = Executor(client, settings, self.caches,
                                 lambda canary, type_: self.webhooks.call_type(canary, type_),
                                 self.config_lookup)
        self.analyst = Analyst(client, settings.analysis, cached=self.cached)
        self.webhooks = WebhookCaller(client, cached=self.cached)
        self.events = EventRecorder(client)
        self.finalizer = Finalizer(self)
        self.workers: dict[tuple[str, str], Worker] = {}
        self._started = False
        #: Called with (namespace, name) whenever a worker is woken; for instrumentation.
        self.on_wake: Callable[[str, str], None] | None = None

    @property
    def reflectors(self) -> list[Reflector]:
        return [self.canaries, *self.caches.values()]

    def synced(self) -> bool:
        return all(reflector.synced.is_set() for reflector in self.reflectors)

    async def run(self) -> None:
        """Watch and reconcile until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            for reflector in self.reflectors:
                tasks.create_task(reflector.run(), name=f"watch {reflector.resource.plural}")
            await asyncio.gather(*(reflector.synced.wait() for reflector in self.reflectors))
            log.info("caches synced; starting workers", canaries=len(self.canaries))
            self._started = True
            for obj in self.canaries.items():
                self._wake(obj["metadata"]["namespace"], obj["metadata"]["name"])

    async def stop(self, grace: float = 0.0) -> None:
        """Stop every worker: each finishes the reconcile it is in (status write, actions)
        for up to ``grace`` seconds, then is cancelled."""
        self._started = False  # no new workers
        await asyncio.gather(*(worker.stop(grace) for worker in self.workers.values()))
        await self.webhooks.close()

    def _wake(self, namespace: str, name: str) -> None:
        if not self._started:
            return
        key = (namespace, name)
        worker = self.workers.get(key)
        if worker is None or not worker.alive:
            worker = self.workers[key] = Worker(self, namespace, name)
            worker.start()
        else:
            worker.wake.set()
        if self.on_wake is not None:
            self.on_wake(namespace, name)

    def _canary_event(self, kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            worker = self.workers.pop(key, None)
            if worker is not None:
                asyncio.get_running_loop().create_task(worker.stop())
            return
        self._wake(*key)

    def _deployment_event(self, _kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        for canary in self.canaries.items(namespace):
            target = ((canary.get("spec") or {}).get("targetRef") or {}).get("name")
            if target is not None and name in (target, f"{target}-primary"):
                self._wake(namespace, canary["metadata"]["name"])

    def cached(self, resource: r.Resource, namespace: str, name: str) -> JSON | None:
        """An object from the watch caches, for the kinds canary reads while analysing."""
        cache = {r.SECRETS: "secrets", r.METRIC_TEMPLATES: "metric_templates",
                 r.CONFIG_MAPS: "configmaps"}.get(resource)
        return self.caches[cache].get(namespace, name) if cache else None

    def config_lookup(self, namespace: str) -> configs.Lookup:
        """Find a namespace's ConfigMaps and Secrets in the caches."""
        def lookup(kind: str, name: str) -> JSON | None:
            cache = self.caches["configmaps" if kind == configs.CONFIG_MAP else "secrets"]
            return cache.get(namespace, name)
        return lookup

    def _config_event(self, kind: str, obj: JSON) -> None:
        """A config changed: wake the Canaries whose target refers to it."""
        meta = obj["metadata"]
        namespace, key = meta["namespace"], (obj.get("kind", ""), meta["name"])
        for canary in self.canaries.items(namespace):
            target_name = ((canary.get("spec") or {}).get("targetRef") or {}).get("name")
            target = self.caches["deployments"].get(namespace, str(target_name))
            template = ((target or {}).get("spec") or {}).get("template") or {}
            if key in configs.referenced(template):
                self._wake(namespace, canary["metadata"]["name"])
        self._owned_event(kind, obj)

    def _autoscaler_event(self, _kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        for canary in self.canaries.items(meta["namespace"]):
            ref = (canary.get("spec") or {}).get("autoscalerRef") or {}
            if ref.get("name") == meta["name"]:
                self._wake(meta["namespace"], canary["metadata"]["name"])
        self._owned_event(_kind, obj)

    def _owned_event(self, _kind: str, obj: JSON) -> None:
        meta = obj["metadata"]
        for owner in meta.get("ownerReferences") or []:
            if owner.get("kind") == "Canary":
                self._wake(meta["namespace"], owner["name"])
