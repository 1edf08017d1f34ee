"""Rolling back: all traffic to the primary, the canary scaled to zero."""

from __future__ import annotations

from canary.core.actions import CallHooks, EnsurePrimary, Route, ScaleCanary
from canary.core.decide.draft import PROMOTED, Draft
from canary.models.canary import Phase

#: Seconds between looks at caches that are catching up, while a deadline waits on them.
STALE_RECHECK_SECONDS = 1.0


def rollback(draft: Draft, reason: str, message: str) -> None:
    draft.phase(Phase.FAILED)
    draft.status.canary_unready_since = None
    draft.status.no_requests_since = None
    draft.status.no_evidence_since = None
    draft.status.metrics_unavailable_since = None
    unavailable = draft.primary_unavailable()
    if unavailable is not None and (draft.status.canary_weight or 0) > 0:
        # Rolling back onto a primary with no pod would fail every request: the canary
        # keeps its share until the primary is restored (see settle_traffic).
        draft.actions = [EnsurePrimary(str(draft.status.last_promoted_spec))]
        message += (f"; traffic stays {draft.status.canary_weight}% on {draft.target_name} "
                    f"until the primary can serve: {unavailable}")
    else:
        draft.status.canary_weight = 0
        draft.actions = [Route(0), ScaleCanary(0)]
    draft.condition(PROMOTED, "False", reason, message)
    draft.event("Warning", "RolledBack", message)
    draft.actions.append(CallHooks("post-rollout"))
    draft.wake_after = None


def wait_or_roll_back(draft: Draft, elapsed: float, message: str) -> None:
    """Past the progress deadline: roll back with ``message``; before it: wake at it.
    While the caches may be out of date the deadline waits for them to catch up: the
    change waited for may have happened while the controller could not see it."""
    if elapsed >= draft.deadline() and draft.obs.stale is not None:
        draft.wake_in(STALE_RECHECK_SECONDS)
    elif elapsed >= draft.deadline():
        rollback(draft, "ProgressDeadlineExceeded", message)
    else:
        draft.wake_in(draft.deadline() - elapsed)
