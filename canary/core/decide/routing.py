"""Whether the data plane follows the routing canary wrote: the ``RouteAccepted``
condition, and holding the weights while it does not.

A Gateway API route is in force only once its Gateways accepted it; until then moving
the weights, judging the canary on them or promoting it would act on traffic that does
not flow as written. A Gateway that has not reported on a route yet is a normal wait
(reason ``RoutePending``, no event); one that refused it is a Warning. Routers that
report no acceptance (Istio) never set the condition.
"""

from __future__ import annotations

from canary.core.decide.draft import Draft
from canary.core.decide.rollback import wait_or_roll_back
from canary.core.timefmt import parse_time

ROUTE_ACCEPTED = "RouteAccepted"
NOT_ACCEPTED = "RouteNotAccepted"
PENDING = "RoutePending"


def route_in_force(draft: Draft) -> bool:
    """Whether the weights may move: the route is in force. While it is not, say so in
    ``RouteAccepted`` (a Warning event when a refusal starts) and wait, until the
    progress deadline (counted from when it stopped being in force), then roll back."""
    hold = draft.obs.route_pending
    if hold is None:
        note_route_accepted(draft)
        return True
    reason = NOT_ACCEPTED if hold.refused else PENDING
    if draft.condition(ROUTE_ACCEPTED, "False", reason, hold.message) and hold.refused:
        draft.event("Warning", NOT_ACCEPTED, hold.message)
    since = draft.current_condition(ROUTE_ACCEPTED)
    assert since is not None
    elapsed = (draft.now - parse_time(since.last_transition_time)).total_seconds()
    wait_or_roll_back(draft, elapsed, f"the route of {draft.target_name} not in force for "
                      f"{draft.deadline():.0f}s: {hold.message}")
    return False


def note_route_accepted(draft: Draft) -> None:
    """A route that was not in force and now is: ``RouteAccepted`` True; after a
    refusal, said once in an event."""
    held = draft.current_condition(ROUTE_ACCEPTED)
    if draft.obs.route_pending is None and held is not None and held.status == "False":
        draft.condition(ROUTE_ACCEPTED, "True", "Accepted", "the data plane follows the route")
        if held.reason == NOT_ACCEPTED:
            draft.event("Normal", "RouteAccepted", f"the route of {draft.target_name} is "
                        "in force again")
