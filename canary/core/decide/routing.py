"""Whether the data plane follows the routing canary wrote: the ``RouteAccepted``
condition, and holding the weights while it does not.

A Gateway API route is in force only once its Gateways accepted it; until then moving
the weights, judging the canary on them or promoting it would act on traffic that does
not flow as written. Routers that report no acceptance (Istio) never set the condition.
"""

from __future__ import annotations

from canary.core.decide.draft import Draft
from canary.core.decide.rollback import wait_or_roll_back
from canary.core.timefmt import parse_time

ROUTE_ACCEPTED = "RouteAccepted"
NOT_ACCEPTED = "RouteNotAccepted"


def route_in_force(draft: Draft) -> bool:
    """Whether the weights may move: the route is in force. While it is not, say so in
    ``RouteAccepted`` (a Warning event when that starts) and wait, until the progress
    deadline, then roll back."""
    pending = draft.obs.route_pending
    if pending is None:
        note_route_accepted(draft)
        return True
    if draft.condition(ROUTE_ACCEPTED, "False", NOT_ACCEPTED, pending):
        draft.event("Warning", NOT_ACCEPTED, pending)
    since = draft.current_condition(ROUTE_ACCEPTED)
    assert since is not None
    elapsed = (draft.now - parse_time(since.last_transition_time)).total_seconds()
    wait_or_roll_back(draft, elapsed, f"the route of {draft.target_name} not in force for "
                      f"{draft.deadline():.0f}s: {pending}")
    return False


def note_route_accepted(draft: Draft) -> None:
    """A route that was not in force and now is: ``RouteAccepted`` True, said once."""
    held = draft.current_condition(ROUTE_ACCEPTED)
    if draft.obs.route_pending is None and held is not None and held.status == "False":
        draft.condition(ROUTE_ACCEPTED, "True", "Accepted", "the data plane follows the route")
        draft.event("Normal", "RouteAccepted", f"the route of {draft.target_name} is in "
                    "force again")
