"""Weights move only on a route the data plane follows: while a Gateway has not accepted
the route, the rollout holds (no weight increase, no promotion) and says why; a refusal in
a Warning event, a Gateway yet to report without one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core.observation import RouteHold
from canary.models.canary import Condition, Phase
from tests.unit.core.scenario import World, initialized

REFUSAL = ("HTTPRoute shop/web: Gateway shop/public refused the route: "
           "NoMatchingListenerHostname: no listener hostname matches")
REFUSED = RouteHold(REFUSAL, refused=True)
UNREPORTED = RouteHold("HTTPRoute shop/web: Gateway shop/public has not reported Accepted "
                       "for generation 2 yet", refused=False)


def route_accepted(world: World) -> Condition | None:
    return next((c for c in world.canary.status.conditions or []
                 if c.type == "RouteAccepted"), None)


def releasing(pending: RouteHold | None = REFUSED) -> World:
    """An Initialized Canary given rev-2 while its route is ``pending``."""
    world = initialized()
    world.route_pending = pending
    world.target_revision = "rev-2"
    return world


def step_for(world: World, seconds: float, every: float = 5) -> None:
    for _ in range(int(seconds / every)):
        world.step()
        world.advance(every)


class TestHeld:
    def test_no_traffic_moves_to_the_canary_while_the_route_is_refused(self) -> None:
        world = releasing()
        step_for(world, 50)
        assert world.phase() == Phase.PROGRESSING and world.weight == 0
        assert "WeightIncreased" not in world.reasons()
        condition = route_accepted(world)
        assert condition is not None
        assert (condition.status, condition.reason, condition.message) == (
            "False", "RouteNotAccepted", REFUSAL)

    def test_it_is_said_in_one_warning_event(self) -> None:
        world = releasing()
        step_for(world, 50)
        events = [e for d in world.decisions for e in d.events if e.reason == "RouteNotAccepted"]
        assert [(e.type, e.message) for e in events] == [("Warning", REFUSAL)]

    def test_a_gateway_yet_to_report_holds_the_weight_without_a_warning(self) -> None:
        world = releasing(UNREPORTED)
        step_for(world, 30)
        assert world.phase() == Phase.PROGRESSING and world.weight == 0
        condition = route_accepted(world)
        assert condition is not None
        assert (condition.status, condition.reason, condition.message) == (
            "False", "RoutePending", UNREPORTED.message)
        assert all(e.type == "Normal" for d in world.decisions for e in d.events)

    def test_a_refusal_after_the_wait_is_warned_once(self) -> None:
        world = releasing(UNREPORTED)
        step_for(world, 20)
        world.route_pending = REFUSED
        step_for(world, 20)
        warnings = [(e.reason, e.message) for d in world.decisions for e in d.events
                    if e.type == "Warning"]
        assert warnings == [("RouteNotAccepted", REFUSAL)]

    @settings(max_examples=25, deadline=None)
    @given(steps=st.integers(1, 8))
    def test_wherever_the_rollout_is_the_weight_never_rises_and_nothing_is_promoted(
            self, steps: int) -> None:
        world = releasing(None)
        for _ in range(steps):
            world.step()
            world.advance(10)
        if world.phase() != Phase.PROGRESSING:
            return  # promoted before the route was refused
        held = world.weight
        world.route_pending = REFUSED
        step_for(world, 55)
        assert world.weight <= held and world.phase() == Phase.PROGRESSING


class TestReleased:
    @pytest.mark.parametrize(("hold", "said"), [(REFUSED, 1), (UNREPORTED, 0)])
    def test_once_accepted_the_rollout_goes_on_saying_so_after_a_refusal(
            self, hold: RouteHold, said: int) -> None:
        world = releasing(hold)
        step_for(world, 30)
        world.route_pending = None
        world.run_until_quiet()
        assert world.phase() == Phase.SUCCEEDED
        condition = route_accepted(world)
        assert condition is not None and (condition.status, condition.reason) == (
            "True", "Accepted")
        assert world.reasons().count("RouteAccepted") == said

    def test_pending_between_steps_is_not_looked_at(self) -> None:
        """A route just rewritten is pending until its Gateway reports on it: between two
        step ends that is no reason to hold or to warn."""
        world = releasing(None)
        while world.weight == 0:
            world.step()
            world.advance(1)
        world.route_pending = REFUSED
        world.step()
        assert route_accepted(world) is None

    def test_a_router_that_reports_nothing_sets_no_condition(self) -> None:
        world = releasing(None)
        world.run_until_quiet()
        assert world.phase() == Phase.SUCCEEDED and route_accepted(world) is None


class TestDeadline:
    def test_past_the_progress_deadline_the_rollout_is_rolled_back_naming_the_gateway(
            self) -> None:
        world = releasing()
        step_for(world, 70)
        assert world.phase() == Phase.FAILED and world.weight == 0
        promoted = next(c for c in world.canary.status.conditions or []
                        if c.type == "Promoted")
        assert promoted.reason == "ProgressDeadlineExceeded"
        assert REFUSAL in promoted.message

    def test_the_deadline_counts_from_the_wait_not_from_the_refusal(self) -> None:
        world = releasing(UNREPORTED)
        step_for(world, 40)
        world.route_pending = REFUSED
        step_for(world, 30)
        assert world.phase() == Phase.FAILED and world.weight == 0
