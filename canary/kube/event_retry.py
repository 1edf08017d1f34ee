"""Events the API server could not take yet, kept to be sent again.

Under API Priority and Fairness a burst of decisions can meet a 429 more times than the
client resends one request, and a partition or a restarting API server refuses every
write for a while. An event saying a revision was promoted is what an SRE reads first,
so one refused for such a reason is kept and sent again with backoff (as client-go's
broadcaster does) instead of being dropped. A refusal that will not change (403, 422)
gives it up at once. Memory stays bounded: at most ``capacity`` events wait, each for at
most ``give_up_after`` seconds; whatever is dropped is counted.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canary.backoff import Backoff, Uniform
from canary.kube.errors import ServerError, TooManyRequests, TransportError
from canary.kube.event_series import EventKey, Occurrence

JSON = dict[str, Any]

#: Refusals that pass: throttling, an unreachable or failing API server.
RETRYABLE: tuple[type[Exception], ...] = (TransportError, TooManyRequests, ServerError)


@dataclass(frozen=True)
class EventRetry:
    """How refused events are sent again: waits in seconds, and the bounds on memory."""

    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, cap=30.0,
                                                             jitter=0.2))
    #: Seconds after its first attempt that an event is given up.
    give_up_after: float = 600.0
    #: Events kept at most; the oldest is dropped beyond it.
    capacity: int = 1000


@dataclass
class EventStats:
    """What became of the events this process recorded."""

    #: Written, at the first attempt or a later one.
    written: int = 0
    #: Written only after being kept and sent again.
    resent: int = 0
    #: Refused for good (403, 404, 422: a namespace being deleted, RBAC, validation).
    refused: int = 0
    #: Refused for now, and given up: kept too long, or pushed out by newer ones.
    dropped: int = 0


@dataclass
class PendingEvent:
    """One event on its way to the API server."""

    key: EventKey
    regarding: JSON
    action: str
    occurrence: Occurrence
    #: Whether its Event object exists, so that a repeat is a patch of its count.
    exists: bool
    #: When it was first attempted (monotonic seconds).
    since: float
    attempts: int = 0
    due: float = 0.0


@dataclass
class PendingEvents:
    """The events waiting to be sent again, by key: a repeat of one that waits changes
    what will be sent (its count), not how many requests."""

    retry: EventRetry = field(default_factory=EventRetry)
    clock: Callable[[], float] = time.monotonic
    uniform: Uniform = random.uniform
    _waiting: OrderedDict[EventKey, PendingEvent] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self._waiting)

    def carry(self, key: EventKey, occurrence: Occurrence) -> bool:
        """Let the waiting event of ``key``, if any, carry ``occurrence``; whether one
        did (and so nothing need be sent now)."""
        waiting = self._waiting.get(key)
        if waiting is None:
            return False
        waiting.occurrence = occurrence
        return True

    def keep(self, event: PendingEvent) -> list[PendingEvent]:
        """Keep ``event`` to be sent again after its backoff, unless it has waited too
        long; the events given up (it, or the oldest when full)."""
        now = self.clock()
        if now - event.since >= self.retry.give_up_after:
            return [event]
        event.due = now + self.retry.backoff.delay(event.attempts, self.uniform)
        self._waiting[event.key] = event
        dropped: list[PendingEvent] = []
        while len(self._waiting) > self.retry.capacity:
            dropped.append(self._waiting.popitem(last=False)[1])
        return dropped

    def take_due(self) -> list[PendingEvent]:
        """The events whose wait is over, removed from those waiting."""
        now = self.clock()
        due = [event for event in self._waiting.values() if event.due <= now]
        for event in due:
            del self._waiting[event.key]
        return due

    def take_all(self) -> list[PendingEvent]:
        """Every waiting event, due or not (a last try before the process exits)."""
        events = list(self._waiting.values())
        self._waiting.clear()
        return events

    def seconds_to_next(self) -> float | None:
        """How long until the next event falls due; None when none waits."""
        if not self._waiting:
            return None
        return max(0.0, min(event.due for event in self._waiting.values()) - self.clock())
