"""A step in which the canary served no request: no evidence, so the weight holds.

A step without requests to the canary says nothing about it. Moving the weight on such a
step would let a canary reach its final weight, or be promoted, on the strength of the
silence; instead the weight (or the iteration count) stays where it is and the Promoted
condition says why. The traffic may come back: the analysis then continues from where it
held. If it does not come back within the progress deadline, the rollout is rolled back.
"""

from __future__ import annotations

from canary.core import evidence
from canary.core.decide.draft import Draft
from canary.core.decide.holding import Lack, continue_hold, end_hold

#: The Promoted condition's reason while the weight holds for want of requests.
WAITING_FOR_REQUESTS = "WaitingForRequests"


def without_requests(verdict: evidence.Verdict | None) -> bool:
    """Whether the judge saw no request to the canary in the step that ends now."""
    return verdict is not None and bool(verdict.no_requests)


#: What a step without canary requests lacks.
NO_REQUESTS = Lack(
    reason=WAITING_FOR_REQUESTS, event="WeightHeld",
    lasting="no request reached the canary",
    now="no request reached the canary in the last step",
    until="when requests return, and is rolled back if none have by")


def hold_weight(draft: Draft, verdict: evidence.Verdict, step_began: str | None) -> None:
    """The step had no request to the canary: keep the weight (or the iteration count),
    say so, and roll back once no request has arrived for the progress deadline."""
    why = "; ".join(f"{n.metric}: {n.message}" for n in verdict.no_requests)
    draft.status.no_requests_since = continue_hold(draft, draft.status.no_requests_since,
                                                   step_began, NO_REQUESTS, why)


def requests_returned(draft: Draft) -> None:
    """A step with requests after held ones: the analysis moves on again."""
    if draft.status.no_requests_since is not None:
        draft.status.no_requests_since = None
        end_hold(draft, "RequestsReturned", f"Requests reach {draft.target_name} again: "
                 "the analysis moves on")
