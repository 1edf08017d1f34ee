"""What a worker works with, built once by the controller and shared by every worker.

The services that reach out of the process (the API, Prometheus, webhooks, events, the
executor) are typed by what a worker calls on them, so the controller passes the real
ones and a test passes fakes that the type checker holds to the same calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from canary.controller.caches import Caches
from canary.controller.finalizer import EventSink, Finalizer
from canary.controller.rollout_queue import RolloutQueue
from canary.core import DecisionSettings
from canary.core.actions import Action
from canary.core.observation import HookResult, JudgeReading, MetricValue
from canary.kube import JSON
from canary.kube.resources import Resource
from canary.models.canary import Canary, CanaryAlert
from canary.notify import Notifier
from canary.observability import ControllerMetrics
from canary.settings import Settings


class CanaryApi(Protocol):
    """The API calls a worker makes itself: re-read its Canary, write its status."""

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None,
                   field_selector: str | None = None) -> JSON: ...

    async def merge_patch(self, resource: Resource, name: str, patch: JSON,
                          namespace: str | None = None,
                          subresource: str | None = None) -> JSON: ...


class Evidence(Protocol):
    """The analysis' metric values and the judge's counters (Prometheus)."""

    async def measure(self, canary: Canary) -> tuple[MetricValue, ...]: ...

    async def read_counters(self, canary: Canary) -> tuple[JudgeReading, ...] | None: ...


class Gates(Protocol):
    """The Canary's webhooks: gates that answer, and event hooks that are told."""

    async def call_type(self, canary: Canary, type_: str) -> tuple[HookResult, ...]: ...

    def send_event(self, canary: Canary, event_type: str, message: str) -> None: ...


class ActionRunner(Protocol):
    """Carries out a decision's actions; says what it put back after someone else."""

    async def execute(self, owner: JSON, canary: Canary, actions: tuple[Action, ...],
                      established: bool = False) -> list[str]: ...


@dataclass(frozen=True)
class Services:
    client: CanaryApi
    settings: Settings
    decision_settings: DecisionSettings
    caches: Caches
    #: Reads the analysis' metrics and the judge's counters.
    analyst: Evidence
    webhooks: Gates
    #: Carries out a decision's actions.
    executor: ActionRunner
    #: Holds the deletion of a Canary with ``revertOnDeletion`` until traffic is back.
    finalizer: Finalizer
    events: EventSink
    notifier: Notifier
    #: Who hears the alerts of a Canary that lists no ``analysis.alerts`` of its own.
    default_alerts: Sequence[CanaryAlert]
    metrics: ControllerMetrics
    #: The limit on concurrent rollouts, and the queue of those waiting for a slot.
    rollouts: RolloutQueue
    #: Turns for creating a primary (``RolloutSettings.max_concurrent_initializations``);
    #: None: no limit.
    initializations: asyncio.Semaphore | None = None
