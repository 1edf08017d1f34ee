"""One worker per Canary: woken by watch events and by its own timer."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from canary.core import Decision, Observation, decide
from canary.kube import JSON, Conflict, KubeError, NotFound
from canary.kube import resources as r
from canary.models.canary import Canary
from canary.targets.deployment import (
    REVISION_ANNOTATION,
    UnsupportedTarget,
    primary_name,
    revision_of,
    rollout_state,
    selector_label,
)

if TYPE_CHECKING:
    from canary.controller.controller import Controller

log = structlog.get_logger("canary.controller")

#: Seconds to wait before retrying after an API failure (doubled per failure, capped).
RETRY_INITIAL, RETRY_MAX = 0.5, 30.0


class Worker:
    def __init__(self, controller: Controller, namespace: str, name: str) -> None:
        self.controller = controller
        self.namespace, self.name = namespace, name
        self.wake = asyncio.Event()
        self.log = log.bind(canary=f"{namespace}/{name}")
        #: The object as our last write returned it, until the cache catches up.
        self._written: JSON | None = None
        self._rv_before_write: str | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"canary {self.namespace}/{self.name}")
        self.wake.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def run(self) -> None:
        delay: float | None = None
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=delay)
            self.wake.clear()
            try:
                delay = await self.reconcile()
                failures = 0
            except Conflict:
                self.log.info("status changed underneath; deciding again")
                self._written = None
                delay = 0
            except KubeError as exc:
                failures += 1
                delay = min(RETRY_INITIAL * 2 ** (failures - 1), RETRY_MAX)
                delay *= random.uniform(0.8, 1.2)
                self.log.warning("reconcile failed, retrying", error=str(exc),
                                 retry_in=round(delay, 2))

    def _current(self) -> JSON | None:
        cached = self.controller.canaries.get(self.namespace, self.name)
        if self._written is not None and cached is not None:
            # The cache lags behind our own write until the watch delivers it.
            if cached["metadata"].get("resourceVersion") == self._rv_before_write:
                return self._written
            self._written = None
        return cached

    async def reconcile(self) -> float | None:
        obj = self._current()
        if obj is None:
            return None
        if obj["metadata"].get("deletionTimestamp"):
            return await self.controller.finalizer.finalize(self, obj)
        try:
            canary = Canary.model_validate(obj)
        except ValidationError as exc:
            self.log.error("invalid Canary", error=str(exc))
            return None
        if canary.spec.revert_on_deletion:
            obj = await self.controller.finalizer.ensure(obj)
        decision = await self._decide(canary, obj)
        new_status = decision.status.to_api()
        if new_status != (obj.get("status") or {}):
            await self._write_status(obj, new_status)
        executor = self.controller.executor
        await executor.execute(self._current() or obj, canary, decision.actions)
        for event in decision.events:
            self.log.info(event.message, reason=event.reason, type=event.type,
                          phase=str(decision.status.phase))
            await self.controller.events.record(obj, event.type, event.reason, event.message)
        return decision.wake_after

    async def _decide(self, canary: Canary, obj: JSON) -> Decision:
        caches = self.controller.caches
        target_name = canary.spec.target_ref.name
        target = caches["deployments"].get(self.namespace, target_name)
        primary = caches["deployments"].get(self.namespace, primary_name(target_name))
        primary_revision = ((primary or {}).get("metadata", {}).get("annotations") or {}).get(
            REVISION_ANNOTATION)
        problem = None
        if target is not None:
            try:
                selector_label(target, self.controller.settings.workloads.selector_labels)
            except UnsupportedTarget as exc:
                problem = str(exc)
        observation = Observation(
            now=datetime.now(UTC),
            target=rollout_state(target, revision_of(target) if target else None),
            primary=rollout_state(primary, primary_revision),
            generation=int(obj["metadata"].get("generation") or 0), target_problem=problem)
        settings = self.controller.decision_settings
        decision = decide(canary, observation, settings)
        if decision.needs_metrics:
            metrics = await self.controller.analyst.measure(canary)
            observation = replace(observation, metrics=metrics, now=datetime.now(UTC))
            decision = decide(canary, observation, settings)
        return decision

    async def _write_status(self, obj: JSON, status: dict[str, Any]) -> None:
        """A merge patch of the whole status, guarded by the resourceVersion we decided on."""
        rv = obj["metadata"]["resourceVersion"]
        try:
            written = await self.controller.client.merge_patch(
                r.CANARIES, self.name, {"metadata": {"resourceVersion": rv}, "status": status},
                self.namespace, subresource="status")
        except NotFound:
            return
        cached = self.controller.canaries.get(self.namespace, self.name)
        self._rv_before_write = cached["metadata"].get("resourceVersion") if cached else None
        self._written = written
