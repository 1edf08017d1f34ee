"""The limit on concurrent rollouts (``--max-concurrent-rollouts``), applied to the
Canaries this controller handles.

Whether a new revision may start now is answered from the Canaries' statuses: the
rollouts under way (``canary.core.queue.ROLLING``) and the revisions waiting (phase
Queued, in the order of ``status.queuedAt``). Only this controller writes them, so
nothing else needs keeping: a restarted controller lists the same statuses and finds
the same queue.

The watch cache shows this controller's own writes only after the watch's latency, and
a ConfigMap shared by a hundred targets wakes their hundred workers together: each
would see the others' new rollouts still at rest and start too. So each Canary's status
is taken from its worker's last decision, and from the cache only until its worker has
decided (after a restart). Deciding and counting happen with no await in between, so no
two workers can take the last slot.

A queued Canary that cannot start now (suspended, paused, being deleted, or not Ready for
a problem such as a missing reference) keeps its place but does not hold up those
behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from canary.core import queue
from canary.core.conditions import ROLLOUT_REASONS
from canary.core.queue import ROLLING, Entry
from canary.core.timefmt import parse_time
from canary.kube import JSON, Reflector
from canary.models.annotations import PAUSED_ANNOTATION
from canary.models.canary import Canary, CanaryStatus, Phase

Key = tuple[str, str]


@dataclass(frozen=True)
class Standing:
    """What the queue needs of a Canary's status."""

    phase: str | None
    #: ``status.queuedAt``.
    queued_at: str | None
    #: Ready is False for a problem (not for where the rollout stands): a queued
    #: revision is held until it is solved.
    held: bool

    @classmethod
    def of(cls, status: CanaryStatus) -> Standing:
        held = any(c.type == "Ready" and c.status == "False" and
                   c.reason not in ROLLOUT_REASONS for c in status.conditions or [])
        return cls(status.phase, status.queued_at, held)

    @classmethod
    def cached(cls, obj: JSON) -> Standing:
        status = obj.get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        held = any(c.get("type") == "Ready" and c.get("status") == "False" and
                   c.get("reason") not in ROLLOUT_REASONS for c in conditions)
        queued_at = status.get("queuedAt")
        return cls(status.get("phase"), queued_at if isinstance(queued_at, str) else None,
                   held)


class RolloutQueue:
    """Answers whether a Canary's new revision may start, and which queued Canaries may
    start now (to wake them when a slot frees). ``limit`` 0: no limit, no queue."""

    def __init__(self, canaries: Reflector, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"the limit on concurrent rollouts must be 0 (none) or more, "
                             f"not {limit}")
        self.canaries = canaries
        self.limit = limit
        #: Each Canary's status as its worker last decided it (the cache may lag).
        self._decided: dict[Key, Standing] = {}

    @property
    def limited(self) -> bool:
        return self.limit > 0

    def slot(self, canary: Canary, revision: str | None, now: datetime) -> str | None:
        """Why ``canary``'s new revision (the target's ``revision``) may not start now,
        naming its place in the queue; None when it may, or when it has none to start
        (the answer then goes unread: only a new revision at rest asks)."""
        status = canary.status
        if not self.limited or status.phase in (*ROLLING, None, Phase.INITIALIZING) or \
                revision == status.last_applied_spec:
            return None
        running, waiting = self._census(now, leaving_out=(canary.namespace, canary.name))
        candidate = Entry(_joined(status.queued_at, now), canary.namespace, canary.name)
        return queue.must_wait(candidate, waiting, running, self.limit)

    def decided(self, namespace: str, name: str, status: CanaryStatus) -> None:
        """The Canary's worker decided ``status``: it counts from now on, before the
        cache shows it (a rollout phase takes a slot, any other gives it back)."""
        if self.limited:
            self._decided[(namespace, name)] = Standing.of(status)

    def forget(self, namespace: str, name: str) -> None:
        """The Canary is gone: its rollout no longer counts, even if one of the same
        name is created before the next look at the queue."""
        self._decided.pop((namespace, name), None)

    def due(self, now: datetime) -> list[Key]:
        """The queued Canaries that may start now, first in the queue first."""
        if not self.limited:
            return []
        running, waiting = self._census(now)
        return [(e.namespace, e.name) for e in queue.admitted(waiting, running, self.limit)]

    def _census(self, now: datetime, leaving_out: Key | None = None
                ) -> tuple[int, list[Entry]]:
        """How many rollouts are under way, and the queued Canaries that may start,
        leaving out the one asking."""
        running, waiting = 0, []
        for obj in self.canaries.items():
            key = (str(obj["metadata"]["namespace"]), str(obj["metadata"]["name"]))
            if key == leaving_out:
                continue
            standing = self._decided.get(key) or Standing.cached(obj)
            if standing.phase in ROLLING:
                running += 1
            elif standing.phase == Phase.QUEUED and not standing.held and _may_start(obj):
                waiting.append(Entry(_joined(standing.queued_at, now), *key))
        return running, waiting


def _may_start(obj: JSON) -> bool:
    """Whether a queued Canary would start if its turn came, as far as its spec and
    metadata say: not suspended, not paused, not being deleted."""
    annotations = obj["metadata"].get("annotations") or {}
    return not ((obj.get("spec") or {}).get("suspend") or
                obj["metadata"].get("deletionTimestamp") or
                annotations.get(PAUSED_ANNOTATION) == "true")


def _joined(queued_at: str | None, now: datetime) -> datetime:
    """When a Canary joined the queue: its ``status.queuedAt``, or now when it has none
    (it joins with this decision) or one that is not a time."""
    if queued_at is not None:
        try:
            return parse_time(queued_at)
        except ValueError:
            pass
    return now
