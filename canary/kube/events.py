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

import asyncio
import contextlib
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from canary.kube.client import JSON, KubeClient
from canary.kube.errors import Conflict, KubeError, NotFound
from canary.kube.event_retry import RETRYABLE, EventStats, PendingEvent, PendingEvents
from canary.kube.event_series import (
    EventKey,
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
    report about the work, not part of it. One the API server refused for now is kept
    and sent again by :meth:`resend` (see :mod:`canary.kube.event_retry`)."""

    def __init__(self, client: KubeClient, instance: str | None = None, *,
                 recent: RecentEvents | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 pending: PendingEvents | None = None) -> None:
        self.client = client
        self.instance = instance or socket.gethostname()
        self.recent = RecentEvents() if recent is None else recent
        self.clock = clock
        self.pending = PendingEvents() if pending is None else pending
        self.stats = EventStats()
        self._last_name_ns = 0
        self._kept = asyncio.Event()

    async def record(self, regarding: JSON, type_: str, reason: str, note: str,
                     action: str | None = None) -> None:
        key = EventKey.of(regarding, type_, reason, note)
        now = self.clock()
        occurrence = self.recent.observe(key, now, self._new_name(key, now))
        if self.pending.carry(key, occurrence):
            return
        await self._send(PendingEvent(key, regarding, action or reason, occurrence,
                                      exists=occurrence.repeated,
                                      since=self.pending.clock()))

    async def resend(self) -> None:
        """Send kept events again as their waits end; runs for the process's life."""
        while True:
            wait = self.pending.seconds_to_next()
            self._kept.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kept.wait(), timeout=wait)
            for event in self.pending.take_due():
                await self._send(event)

    async def flush(self) -> None:
        """Try every kept event once more, due or not: the process is about to exit."""
        for event in self.pending.take_all():
            event.since = float("-inf")  # not kept again
            await self._send(event)

    async def _send(self, event: PendingEvent) -> None:
        event.attempts += 1
        try:
            await self._write(event)
        except RETRYABLE as exc:
            self._give_up(self.pending.keep(event), exc, refused=False)
            self._kept.set()
        except KubeError as exc:
            self._give_up([event], exc, refused=True)
        else:
            self.stats.written += 1
            self.stats.resent += event.attempts > 1

    async def _write(self, event: PendingEvent) -> None:
        """Create the event's Event, or count a repeat on the one that exists."""
        key = event.key
        if event.exists:
            try:
                await self.client.merge_patch(CORE_EVENTS, event.occurrence.name,
                                              repeat_patch(event.occurrence), key.namespace)
                return
            except NotFound:  # expired (the API server keeps events an hour)
                now = self.clock()
                event.occurrence = self.recent.restart(key, now, self._new_name(key, now))
                event.exists = False
        try:
            await self.client.create(CORE_EVENTS, core_event(
                key, event.regarding, event.occurrence, action=event.action,
                controller=REPORTING_CONTROLLER, instance=self.instance))
        except Conflict:  # an earlier attempt was written though its answer was lost
            await self.client.merge_patch(CORE_EVENTS, event.occurrence.name,
                                          repeat_patch(event.occurrence), key.namespace)
        event.exists = True

    def _give_up(self, events: list[PendingEvent], error: Exception, *, refused: bool) -> None:
        for event in events:
            if refused:
                self.stats.refused += 1
            else:
                self.stats.dropped += 1
            log.warning("could not record event", reason=event.key.reason,
                        regarding=f"{event.key.namespace}/{event.key.name}",
                        attempts=event.attempts, error=str(error))

    def _new_name(self, key: EventKey, now: datetime) -> str:
        """A name in time order, never the same twice even within a microsecond."""
        nanoseconds = max(int(now.timestamp() * 1_000_000) * 1000, self._last_name_ns + 1)
        self._last_name_ns = nanoseconds
        return event_name(key.name, nanoseconds)
