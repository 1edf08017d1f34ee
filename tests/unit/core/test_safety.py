"""Misconfigurations and broken primaries never turn into outages: the decision holds the
change and says why."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core import EnsurePrimary, Route, ScaleCanary, decide
from canary.core.actions import EnsureAutoscaler
from canary.core.observation import ManualRequests
from canary.models.canary import Canary, Phase
from tests.unit.core.scenario import SETTINGS, World, initialized, make_canary

CONFLICT = "Canary older-web already claims Deployment web (it is older): ..."
UNSUPPORTED = ("spec.provider gatewayapi:v1 is not supported by this controller, which "
               "routes with istio, kubernetes: ...")
MISSING = "spec.analysis.metrics[0].templateRef: MetricTemplate shop/errors not found"
HOSTILE = ("spec.analysis.metrics[0].templateVariables.code: '1 or up' is in a number "
           "(in the query of MetricTemplate shop/errors)")


def ready(world: World) -> tuple[str, str, str]:
    condition = next(c for c in world.canary.status.conditions or [] if c.type == "Ready")
    return condition.status, condition.reason, condition.message


def with_autoscaler(canary: Canary) -> Canary:
    api = canary.to_api()
    api["spec"]["autoscalerRef"] = {"kind": "HorizontalPodAutoscaler", "name": "web"}
    return Canary.model_validate(api)


def release_while_held(world: World) -> None:
    """Release rev-2 and let 30 s pass: the Canary must stay where it was."""
    world.target_revision = "rev-2"
    for _ in range(3):
        world.step()
        world.advance(10)
    assert world.canary.status.phase == Phase.INITIALIZED
    assert world.weight == 0 and world.target_replicas == 0


class TestConflicts:
    def test_a_canary_kept_from_its_objects_says_so_once_and_acts_on_nothing(self) -> None:
        world = World(make_canary(), conflict=CONFLICT)
        first = world.step()
        assert first.actions == ()
        assert [(e.type, e.reason) for e in first.events] == [("Warning", "Conflict")]
        assert ready(world) == ("False", "Conflict", CONFLICT)
        assert world.canary.status.phase is None  # nothing was initialized
        second = world.step()
        assert second.actions == () and second.events == ()
        assert second.status == first.status  # nothing to write either

    def test_an_established_canary_in_conflict_stops_writing_even_its_autoscaler(self) -> None:
        world = initialized()
        world.canary = with_autoscaler(world.canary)
        world.conflict = CONFLICT
        decision = decide(world.canary, world.observe(), SETTINGS)
        assert not any(isinstance(a, EnsureAutoscaler) for a in decision.actions)
        assert decision.actions == ()

    def test_a_target_problem_writes_nothing_either(self) -> None:
        world = initialized()
        world.canary = with_autoscaler(world.canary)
        observation = replace(world.observe(), target_problem="Deployment web-primary is "
                              "managed by Canary web")
        decision = decide(world.canary, observation, SETTINGS)
        assert decision.actions == ()

    def test_when_the_conflict_ends_the_canary_initializes(self) -> None:
        world = World(make_canary(), conflict=CONFLICT)
        world.step()
        world.conflict = None
        world.run_until_quiet()
        assert world.canary.status.phase == Phase.INITIALIZED
        assert ready(world)[:2] == ("True", "TargetFound")


class TestUnsupportedProviders:
    """A Canary whose spec.provider this controller cannot route with is not routed
    some other way: it says so and writes nothing."""

    def test_a_new_canary_says_so_once_and_creates_nothing(self) -> None:
        world = World(make_canary(), provider_problem=UNSUPPORTED)
        first = world.step()
        assert first.actions == ()
        assert [(e.type, e.reason, e.message) for e in first.events] == [
            ("Warning", "UnsupportedProvider", UNSUPPORTED)]
        assert ready(world) == ("False", "UnsupportedProvider", UNSUPPORTED)
        assert world.canary.status.phase is None  # nothing was initialized
        second = world.step()
        assert second.actions == () and second.events == ()
        assert second.status == first.status

    @settings(max_examples=30, deadline=None)
    @given(steps=st.integers(0, 12))
    def test_wherever_a_rollout_is_nothing_more_is_written(self, steps: int) -> None:
        """Even the primary's autoscaler copy and requests to forget are left alone."""
        world = initialized()
        world.canary = with_autoscaler(world.canary)
        world.target_revision = "rev-2"
        for _ in range(steps):
            world.step()
            world.advance(10)
        world.requests = ManualRequests(abort_revision="rev-1")
        world.provider_problem = UNSUPPORTED
        decision = decide(world.canary, world.observe(), SETTINGS)
        assert decision.actions == ()
        assert not (decision.needs_metrics or decision.needs_hooks or decision.needs_judge)
        reasons = {c.reason for c in decision.status.conditions or [] if c.type == "Ready"}
        assert reasons == {"UnsupportedProvider"}

    def test_it_is_said_before_a_conflict(self) -> None:
        """Fixing the provider is needed whatever else holds the Canary."""
        world = World(make_canary(), provider_problem=UNSUPPORTED, conflict=CONFLICT)
        world.step()
        assert ready(world)[1] == "UnsupportedProvider"

    def test_once_the_provider_is_supported_the_canary_initializes(self) -> None:
        world = World(make_canary(), provider_problem=UNSUPPORTED)
        world.step()
        world.provider_problem = None
        world.run_until_quiet()
        assert world.canary.status.phase == Phase.INITIALIZED
        assert ready(world)[:2] == ("True", "TargetFound")


class TestMissingReferences:
    def test_nothing_is_initialized_while_a_reference_is_missing(self) -> None:
        world = World(make_canary(), missing_references=(MISSING,))
        first = world.step()
        assert world.canary.status.phase is None
        assert not any(isinstance(a, EnsurePrimary | Route) for a in first.actions)
        assert ready(world) == ("False", "MissingReference", MISSING)
        assert [e.reason for e in first.events] == ["MissingReference"]
        assert world.step().events == ()
        world.missing_references = ()
        world.run_until_quiet()
        assert world.canary.status.phase == Phase.INITIALIZED

    def test_a_new_revision_waits_until_the_reference_exists(self) -> None:
        world = initialized()
        world.missing_references = (MISSING,)
        release_while_held(world)
        assert world.reasons() == ["MissingReference", "RevisionHeld"]
        status, reason, message = ready(world)
        assert (status, reason) == ("False", "MissingReference")
        assert MISSING in message and "new revision rev-2 of web waits" in message
        world.missing_references = ()
        world.step()
        assert world.canary.status.phase == Phase.PROGRESSING
        # No longer held: Ready now waits for the rollout, not for the reference.
        assert ready(world)[:2] == ("False", "Progressing")


class TestInvalidVariables:
    def test_a_variable_that_would_change_its_query_holds_the_release_before_traffic(
            self) -> None:
        world = initialized()
        world.invalid_references = (HOSTILE,)
        release_while_held(world)
        assert world.reasons() == ["InvalidVariable", "RevisionHeld"]
        status, reason, message = ready(world)
        assert (status, reason) == ("False", "InvalidVariable")
        assert HOSTILE in message and "skipAnalysis" not in message
        assert world.canary.status.canary_weight in (None, 0)
        world.invalid_references = ()
        world.step()
        assert world.canary.status.phase == Phase.PROGRESSING

    def test_nothing_is_initialized_on_a_variable_that_would_change_its_query(self) -> None:
        world = World(make_canary(), invalid_references=(HOSTILE,))
        first = world.step()
        assert world.canary.status.phase is None
        assert not any(isinstance(a, EnsurePrimary | Route) for a in first.actions)
        assert ready(world) == ("False", "InvalidVariable", HOSTILE)


class TestPrimaryWithoutPods:
    def test_an_initialized_canary_is_not_ready_and_restores_its_primary(self) -> None:
        world = initialized()
        world.primary_available, world.primary_ready = 0, False
        decision = world.step()
        assert ready(world)[:2] == ("False", "PrimaryUnavailable")
        assert "web-primary has no available pods" in ready(world)[2]
        assert EnsurePrimary("rev-1") in decision.actions
        assert [e.reason for e in decision.events] == ["PrimaryUnavailable"]
        world.primary_available, world.primary_ready = 2, True
        assert [e.reason for e in world.step().events] == ["PrimaryReady"]
        assert ready(world)[:2] == ("True", "TargetFound")

    def test_a_release_waits_for_the_primary(self) -> None:
        world = initialized()
        world.primary_available, world.primary_ready = 0, False
        release_while_held(world)
        assert world.reasons() == ["PrimaryUnavailable", "RevisionHeld"]
        world.primary_available, world.primary_ready = 2, True
        world.step()
        assert world.canary.status.phase == Phase.PROGRESSING

    def test_skip_analysis_is_the_way_out_for_a_primary_that_cannot_recover(self) -> None:
        """A primary broken by its own template is never repaired by canary: the fix must
        be promotable, and the held message says how."""
        world = initialized()
        world.primary_available, world.primary_ready = 0, False
        world.target_revision = "rev-2"
        world.step()
        assert "spec.skipAnalysis: true promotes it" in ready(world)[2]
        api = world.canary.to_api()
        api["spec"]["skipAnalysis"] = True
        world.canary = Canary.model_validate(api)
        decision = world.step()
        assert world.canary.status.phase == Phase.PROMOTING
        assert EnsurePrimary("rev-2") in decision.actions

    def test_a_partly_ready_primary_also_holds_a_release(self) -> None:
        world = initialized()
        world.primary_available, world.primary_ready = 1, False
        world.target_revision = "rev-2"
        world.step()
        assert world.canary.status.phase == Phase.INITIALIZED
        assert ready(world)[1] == "PrimaryNotReady"

    def test_the_weights_hold_while_the_primary_has_no_pods_even_past_the_deadline(
            self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        while world.weight < 20:
            world.advance(world.step().wake_after or 0)
        world.primary_available, world.primary_ready = 0, False
        for _ in range(20):  # 200 s, past the 60 s progress deadline
            decision = world.step()
            assert not any(isinstance(a, ScaleCanary) and a.replicas == 0
                           for a in decision.actions)
            world.advance(10)
        assert world.canary.status.phase == Phase.PROGRESSING
        assert world.weight == 20
        assert ready(world)[1] == "PrimaryUnavailable"
        world.primary_available, world.primary_ready = 2, True
        world.run_until_quiet()
        assert world.phase() == Phase.SUCCEEDED

    def test_a_rollback_onto_a_primary_without_pods_waits_for_it(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        while world.weight < 20:
            world.advance(world.step().wake_after or 0)
        world.primary_available, world.primary_ready = 0, False
        world.requests = ManualRequests(abort_revision="rev-2")
        decision = world.step()
        assert world.canary.status.phase == Phase.FAILED
        assert not any(isinstance(a, Route | ScaleCanary) for a in decision.actions)
        assert world.weight == 20 and world.canary.status.canary_weight == 20
        promoted = next(c for c in world.canary.status.conditions or []
                        if c.type == "Promoted")
        assert "traffic stays 20% on web until the primary can serve" in promoted.message
        world.step()
        assert world.weight == 20
        world.primary_available, world.primary_ready = 2, True
        decision = world.step()
        assert Route(0) in decision.actions and ScaleCanary(0) in decision.actions
        assert world.weight == 0 and world.canary.status.canary_weight == 0


@settings(max_examples=150)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from([100.0, 50.0]),
                          st.sampled_from([0.0, 5.0, 10.0, 30.0])), min_size=5, max_size=60))
def test_traffic_never_moves_onto_a_primary_without_pods(
        timeline: list[tuple[bool, float, float]]) -> None:
    """Whatever the primary's availability, the canary's health and the timing, no
    decision made while the primary has no pod takes traffic from the canary or scales it
    down while it has traffic."""
    world = initialized()
    world.target_revision = "rev-2"
    for available, success_rate, seconds in timeline:
        world.primary_available, world.primary_ready = (2, True) if available else (0, False)
        world.success_rate = success_rate
        before = world.weight
        decision = world.step()
        if not available:
            routes = [a for a in decision.actions if isinstance(a, Route)]
            assert all(r.canary_weight >= before for r in routes), (before, routes)
            if before > 0:
                assert ScaleCanary(0) not in decision.actions
        world.advance(seconds)
