"""What a worker works with, built once by the controller and shared by every worker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from canary.controller.analysis import Analyst
from canary.controller.caches import Caches
from canary.controller.executor import Executor
from canary.controller.finalizer import Finalizer
from canary.core import DecisionSettings
from canary.kube import KubeClient
from canary.kube.events import EventRecorder
from canary.models.canary import CanaryAlert
from canary.notify import Notifier
from canary.observability import ControllerMetrics
from canary.settings import Settings
from canary.webhooks import WebhookCaller


@dataclass(frozen=True)
class Services:
    client: KubeClient
    settings: Settings
    decision_settings: DecisionSettings
    caches: Caches
    #: Reads the analysis' metrics and the judge's counters.
    analyst: Analyst
    webhooks: WebhookCaller
    #: Carries out a decision's actions.
    executor: Executor
    #: Holds the deletion of a Canary with ``revertOnDeletion`` until traffic is back.
    finalizer: Finalizer
    events: EventRecorder
    notifier: Notifier
    #: Who hears the alerts of a Canary that lists no ``analysis.alerts`` of its own.
    default_alerts: Sequence[CanaryAlert]
    metrics: ControllerMetrics
