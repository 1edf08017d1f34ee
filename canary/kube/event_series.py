"""Which events repeat one recorded a moment ago, and the core/v1 Event for each.

As client-go's EventRecorder does, an event identical to a recent one (the same object,
type, reason and note) is not a new object: the earlier Event's count goes up and its
last timestamp moves on, so a gate that says "waiting for approval" every interval makes
one line "(x12 over 11m)", not twelve. Pure: the recorder in :mod:`canary.kube.events`
does the writing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

JSON = dict[str, Any]

#: How many distinct recent events are remembered (client-go's LRU holds as many).
RECENT_EVENTS = 4096
#: How long after its last occurrence an event still counts as repeated.
REPEAT_WINDOW = timedelta(minutes=10)
#: The API server's limit on an event's note (message), in bytes of UTF-8.
NOTE_LIMIT = 1024
#: Room for the name of the object the event is about: the Event's name adds "." and
#: sixteen hex digits of nanoseconds to it, and names stop at 253 characters.
NAME_LIMIT = 253 - 17


@dataclass(frozen=True)
class EventKey:
    """What makes two events the same event."""

    namespace: str
    kind: str
    name: str
    uid: str
    type: str
    reason: str
    note: str

    @classmethod
    def of(cls, regarding: JSON, type_: str, reason: str, note: str) -> EventKey:
        meta = regarding.get("metadata") or {}
        return cls(str(meta.get("namespace") or ""), str(regarding.get("kind") or ""),
                   str(meta.get("name") or ""), str(meta.get("uid") or ""), type_, reason,
                   clipped(note))


def clipped(note: str) -> str:
    """``note`` cut to NOTE_LIMIT bytes of UTF-8, never inside a character: the API server
    counts bytes, not characters, and refuses an event whose note is longer."""
    return note.encode("utf-8", "surrogatepass")[:NOTE_LIMIT].decode("utf-8", "ignore")


@dataclass(frozen=True)
class Occurrence:
    """An event as recorded so far: the Event object that holds it and its series."""

    name: str
    first: datetime
    last: datetime
    count: int = 1

    @property
    def repeated(self) -> bool:
        return self.count > 1


class RecentEvents:
    """The last ``size`` distinct events, least recently seen dropped first: memory stays
    bounded however many objects and messages there are."""

    def __init__(self, size: int = RECENT_EVENTS, window: timedelta = REPEAT_WINDOW) -> None:
        if size < 1:
            raise ValueError("remember at least one event")
        self.size, self.window = size, window
        self._seen: OrderedDict[EventKey, Occurrence] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, key: EventKey, now: datetime, new_name: str) -> Occurrence:
        """The occurrence ``key`` makes at ``now``: the next of a recent series, else the
        first of a new one, to be created as ``new_name``."""
        earlier = self._seen.get(key)
        if earlier is not None and timedelta(0) <= now - earlier.last <= self.window:
            return self._keep(key, replace(earlier, last=now, count=earlier.count + 1))
        return self.restart(key, now, new_name)

    def restart(self, key: EventKey, now: datetime, new_name: str) -> Occurrence:
        """Start a new series for ``key`` (as when its Event expired)."""
        return self._keep(key, Occurrence(new_name, now, now))

    def _keep(self, key: EventKey, occurrence: Occurrence) -> Occurrence:
        self._seen[key] = occurrence
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return occurrence


def event_name(regarding_name: str, nanoseconds: int) -> str:
    """Names sort as the events were created (as client-go names them), so a list in
    name order, which is how the API server lists, is already in time order."""
    return f"{regarding_name[:NAME_LIMIT]}.{nanoseconds:016x}"


def seconds(moment: datetime) -> str:
    """A metav1.Time: what firstTimestamp and lastTimestamp hold."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(moment: datetime) -> str:
    """A metav1.MicroTime: what eventTime and series.lastObservedTime hold."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def core_event(key: EventKey, regarding: JSON, occurrence: Occurrence, *, action: str,
               controller: str, instance: str) -> JSON:
    """The core/v1 Event of a first occurrence: both the fields kubectl sorts and counts
    by (firstTimestamp, lastTimestamp, count, source) and the events.k8s.io/v1 ones
    (eventTime, action, reportingComponent and reportingInstance)."""
    meta = regarding.get("metadata") or {}
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": occurrence.name, "namespace": key.namespace},
        "involvedObject": {"apiVersion": regarding.get("apiVersion"), "kind": key.kind,
                           "name": key.name, "namespace": key.namespace,
                           "uid": meta.get("uid"),
                           "resourceVersion": meta.get("resourceVersion")},
        "type": key.type, "reason": key.reason, "message": key.note,
        "firstTimestamp": seconds(occurrence.first),
        "lastTimestamp": seconds(occurrence.last), "count": occurrence.count,
        "source": {"component": controller},
        "eventTime": micro(occurrence.first), "action": action[:128],
        "reportingComponent": controller, "reportingInstance": instance[:128],
    }


def repeat_patch(occurrence: Occurrence) -> JSON:
    """The merge patch that records a repeat on the series' Event."""
    return {"count": occurrence.count, "lastTimestamp": seconds(occurrence.last),
            "series": {"count": occurrence.count,
                       "lastObservedTime": micro(occurrence.last)}}
