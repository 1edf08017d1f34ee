"""The Ready condition, and the new revisions it holds back."""

from __future__ import annotations

from canary.core import guards
from canary.core.decide.draft import READY, Draft


def set_readiness(draft: Draft) -> None:
    """The Ready condition: False while a reference is missing or the primary cannot
    serve (a Warning event when that starts, a Normal one when it ends)."""
    problem = guards.readiness_problem(draft.obs, draft.status.phase, draft.primary_name)
    if problem is not None:
        if draft.condition(READY, "False", problem.reason, problem.message):
            draft.event("Warning", problem.reason, problem.message)
        return
    before = draft.current_condition(READY)
    draft.condition(READY, "True", "TargetFound",
                   f"Deployment {draft.canary.namespace}/{draft.target_name} found")
    if before is not None and before.reason in ("PrimaryUnavailable", "PrimaryNotReady"):
        draft.event("Normal", "PrimaryReady", f"{draft.primary_name} is ready again")


def revision_held(draft: Draft, revision: str) -> bool:
    """A new revision waits while the Canary is not Ready (a missing reference, a primary
    that cannot take the traffic back); said once per revision, in Ready and an event.
    ``skipAnalysis`` promotes it anyway: the way out when the primary cannot recover on
    its own template."""
    ready = draft.current_condition(READY)
    if ready is None or ready.status == "True" or draft.canary.spec.skip_analysis:
        return False
    message = f"{ready.message}; new revision {revision} of {draft.target_name} waits"
    if ready.reason not in ("MissingReference", "InvalidVariable"):
        message += " (spec.skipAnalysis: true promotes it without analysis)"
    said = next((c for c in draft.canary.status.conditions or [] if c.type == READY), None)
    draft.condition(READY, "False", ready.reason, message)
    if said is None or said.message != message:
        draft.event("Warning", "RevisionHeld", message)
    return True
