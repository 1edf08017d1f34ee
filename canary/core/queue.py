"""The rollout queue: which new revisions may start now under a limit on concurrent
rollouts (``--max-concurrent-rollouts``).

A change shared by many targets (a ConfigMap they all mount) gives each a new revision
at once; starting them all at once would double the pods of every one and shift the
traffic of every one together. Under a limit, the rollouts beyond it wait (phase
Queued) and start first come, first served: in the order they joined the queue, ties
broken by namespace and name. Everything here is computed from what each Canary's
status records (its phase, ``status.queuedAt``), so a restarted controller, listing
the same Canaries, finds the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from canary.models.canary import Phase

#: The phases of a rollout under way, each holding one slot: the canary is scaled up and
#: takes traffic, or the primary is rolling out the new revision.
ROLLING = frozenset({Phase.PROGRESSING, Phase.PROMOTING, Phase.FINALISING})


@dataclass(frozen=True, order=True)
class Entry:
    """A Canary whose new revision waits for a rollout slot. The field order is the
    queue's order."""

    #: When it joined the queue.
    since: datetime
    namespace: str
    name: str


def ordered(entries: Iterable[Entry]) -> list[Entry]:
    """The queue, first to start first: by when each joined, then namespace and name, so
    that equal times (or a restart) give the same order."""
    return sorted(set(entries))


def admitted(entries: Iterable[Entry], running: int, limit: int) -> list[Entry]:
    """Those that may start now: the first ``limit - running`` of the queue (none when
    the running rollouts fill the limit)."""
    return ordered(entries)[:max(0, limit - running)]


@dataclass(frozen=True)
class Place:
    """Where one Canary stands in the queue."""

    #: 1 for the first to start.
    position: int
    #: How many wait, this one included.
    length: int
    #: Rollouts under way.
    running: int
    limit: int

    @property
    def may_start(self) -> bool:
        return self.position <= self.limit - self.running

    def __str__(self) -> str:
        return (f"{ordinal(self.position)} in the queue of {self.length}; {self.running} of "
                f"{self.limit} rollout{'s' if self.limit != 1 else ''} running "
                f"(--max-concurrent-rollouts {self.limit})")


def place(candidate: Entry, others: Iterable[Entry], running: int, limit: int) -> Place:
    """Where ``candidate`` stands among ``others`` (the rest of the queue; the candidate
    among them counts once)."""
    queue = ordered([*others, candidate])
    return Place(queue.index(candidate) + 1, len(queue), running, limit)


def must_wait(candidate: Entry, others: Iterable[Entry], running: int, limit: int
              ) -> str | None:
    """Why ``candidate`` must wait, naming its place; None when it may start now."""
    where = place(candidate, others, running, limit)
    return None if where.may_start else str(where)


def ordinal(number: int) -> str:
    """1 -> 1st, 2 -> 2nd, 11 -> 11th, 23 -> 23rd."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{_SUFFIXES.get(number % 10, 'th')}"


_SUFFIXES = {1: "st", 2: "nd", 3: "rd"}
