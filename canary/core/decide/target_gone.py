"""A target deleted while its canary takes traffic."""

from __future__ import annotations

from canary.core.actions import Route, ScaleCanary
from canary.core.decide.draft import Draft
from canary.core.decide.rollback import rollback
from canary.models.canary import Phase


def traffic_back_to_primary(draft: Draft, message: str) -> None:
    """The canary's pods go with its Deployment, so every request goes back to the
    primary now, not at a deadline. An analysis fails, having nothing left to analyse
    (a rollback: post-rollout hooks, the event); a promotion keeps its primary serving
    and goes on once the target is back. At rest, the route already sends nothing to
    the canary."""
    phase = draft.status.phase
    if phase == Phase.PROGRESSING:
        # From weight 0 the rollback routes all traffic to the primary, whatever state
        # the primary is in: the canary has no pods to keep any of it.
        draft.status.canary_weight = 0
        rollback(draft, "TargetNotFound", f"{message}: deleted during the analysis of "
                 f"revision {draft.status.last_applied_spec}; all traffic is back on "
                 f"{draft.target_name}-primary")
        draft.actions = [a for a in draft.actions if not isinstance(a, ScaleCanary)]
    elif phase in (Phase.PROMOTING, Phase.FINALISING):
        draft.status.canary_weight = 0
        draft.actions.append(Route(0))
