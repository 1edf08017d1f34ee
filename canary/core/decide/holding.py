"""A rollout held for want of evidence (no request to the canary, no answer from the
metrics server): how long the hold has lasted against the progress deadline, and where
the rollout stands meanwhile, as both holds word it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from canary.core.decide.draft import Draft
from canary.core.timefmt import format_time, parse_time


@dataclass(frozen=True)
class Hold:
    #: Seconds since the hold began.
    elapsed: float
    #: When the hold reaches the progress deadline (RFC 3339).
    deadline: str
    #: Whether it has reached it: the rollout is then rolled back.
    expired: bool
    #: Where the rollout holds: ``weight 20%`` or ``iteration 3``.
    where: str


def held(draft: Draft, since: str) -> Hold:
    """The hold that began at ``since`` (RFC 3339), as of this decision."""
    start = parse_time(since)
    elapsed = (draft.now - start).total_seconds()
    where = (f"iteration {(draft.status.iterations or 0) + 1}" if draft.strategy.iterative
             else f"weight {draft.status.canary_weight or 0}%")
    return Hold(elapsed, format_time(start + timedelta(seconds=draft.deadline())),
                elapsed >= draft.deadline(), where)
