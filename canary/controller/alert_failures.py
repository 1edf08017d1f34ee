"""Alerts the notifier could not deliver become Warning events on their Canary."""

from __future__ import annotations

from canary.kube import Reflector
from canary.kube.events import EventRecorder
from canary.notify import DeliveryFailure, TemplateProblem


class AlertFailures:
    """Told by the notifier about each alert not delivered, or sent with a template
    naming unknown variables: a Warning event on the Canary (the rollout goes on)."""

    def __init__(self, canaries: Reflector, events: EventRecorder) -> None:
        self.canaries = canaries
        self.events = events

    async def __call__(self, failure: DeliveryFailure | TemplateProblem) -> None:
        obj = self.canaries.get(failure.alert.namespace, failure.alert.canary)
        if obj is not None:
            await self.events.record(obj, "Warning", failure.reason, failure.event_message())
