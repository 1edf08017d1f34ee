"""A rollout held for want of evidence (no request to the canary, no answer from the
metrics server, no usable reading for the judge): how long the hold has lasted against
the progress deadline, where the rollout stands meanwhile, and its end, as every hold
words them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from canary.core.decide.draft import PROMOTED, Draft
from canary.core.decide.rollback import rollback
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


@dataclass(frozen=True)
class Lack:
    """What the held steps lack, in the words of the condition, its event and the
    rollback at the deadline."""

    #: The Promoted condition's reason while the rollout holds.
    reason: str
    #: The Warning event's reason, said once when the hold begins.
    event: str
    #: Ends "... for 600s": how long it has lasted, for the rollback.
    lasting: str
    #: What the step that ends now lacked.
    now: str
    #: What ends the hold, and the deadline's words: "... if none have by <time>".
    until: str


def hold_or_roll_back(draft: Draft, since: str, lack: Lack, why: str) -> bool:
    """Keep the weight (or the iteration count) of a hold that began at ``since``, say
    so once; or, once it has lasted the progress deadline, roll back. True when it rolled
    back: the caller then forgets ``since``."""
    hold = held(draft, since)
    if hold.expired:
        rollback(draft, "ProgressDeadlineExceeded", f"Rolling back {draft.target_name}: "
                 f"{lack.lasting} for {hold.elapsed:.0f}s, the progress deadline "
                 f"({draft.deadline():.0f}s): {why}")
        return True
    message = (f"{draft.target_name} holds at {hold.where}: {lack.now}, so the step is no "
               f"evidence ({why}); the analysis continues {lack.until} {hold.deadline}")
    if draft.condition(PROMOTED, "Unknown", lack.reason, message):
        draft.event("Warning", lack.event, message)
    return False


def continue_hold(draft: Draft, since: str | None, began: str | None, lack: Lack,
                  why: str) -> str | None:
    """Hold (or roll back) for another step that lacked what ``lack`` says: the hold
    began at ``since``, else at ``began`` (the step's start), else now. Returns when the
    hold began, to keep in the status; None once it rolled back."""
    since = since or began or format_time(draft.now, precise=True)
    return None if hold_or_roll_back(draft, since, lack, why) else since


def end_hold(draft: Draft, reason: str, message: str) -> None:
    """A step after held ones had what they lacked: the analysis moves on again."""
    draft.condition(PROMOTED, "Unknown", "Progressing",
                    f"analysing revision {draft.status.last_applied_spec}")
    draft.event("Normal", reason, message)
