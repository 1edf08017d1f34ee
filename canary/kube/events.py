"""Kubernetes Events about the objects canary manages.

They are written through the core/v1 API: events.k8s.io/v1 refuses its ``deprecated*``
fields on create and update, and those fields (core/v1's firstTimestamp, lastTimestamp,
count and source) are what ``kubectl get events --sort-by=.lastTimestamp`` and
``kubectl describe`` sort and count by. Read through events.k8s.io/v1, the same objects
show them as deprecatedFirstTimestamp, deprecatedLastTimestamp and so on. A repeat of a
recent event raises the count of its Event instead of adding one (see
:mod:`canary.kube.event_series`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from canary.kube.client import JSON, KubeClient
from canary.kube.errors import KubeError, NotFound
from canary.kube.event_series import (
    EventKey,
    Occurrence,
    RecentEvents,
    core_event,
    event_name,
    repeat_patch,
)
from canary.kube.resources import CORE_EVENTS

log = structlog.get_logger("canary.kube.events")

#: The reportingController of every event canary writes.
REPORTING_CONTROLLER = "canary.dev/controller"


class EventRecorder:
    """Writes events; a failure to write one is logged, never raised: an event is a
    report about the work, not part of it."""

    def __init__(self, client: KubeClient, instance: str | None = None, *,
                 recent: RecentEvents | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.instance = instance or socket.gethostname()
        self.recent = recent or RecentEvents()
        self.clock = clock
        self._last_name_ns = 0

    async def record(self, regarding: JSON, type_: str, reason: str, note: str,
                     action: str | None = None) -> None:
        key = EventKey.of(regarding, type_, reason, note)
        now = self.clock()
        occurrence = self.recent.observe(key, now, self._new_name(key, now))
        try:
            if occurrence.repeated:
                try:
                    await self.client.merge_patch(CORE_EVENTS, occurrence.name,
                                                  repeat_patch(occurrence), key.namespace)
                    return
                except NotFound:  # expired (the API server keeps events an hour)
                    occurrence = self.recent.restart(key, now, self._new_name(key, now))
            await self._create(key, regarding, occurrence, action or reason)
        except KubeError as exc:
            log.warning("could not record event", reason=reason, error=str(exc))

    async def _create(self, key: EventKey, regarding: JSON, occurrence: Occurrence,
                      action: str) -> None:
        await self.client.create(CORE_EVENTS, core_event(
            key, regarding, occurrence, action=action, controller=REPORTING_CONTROLLER,
            instance=self.instance))

    def _new_name(self, key: EventKey, now: datetime) -> str:
        """A name in time order, never the same twice even within a microsecond."""
        nanoseconds = max(int(now.timestamp() * 1_000_000) * 1000, self._last_name_ns + 1)
        self._last_name_ns = nanoseconds
        return event_name(key.name, nanoseconds)
