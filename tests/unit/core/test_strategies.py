"""A/B testing, blue/green, mirroring and gradual promotion, decided without I/O."""

from __future__ import annotations

import pytest

from canary.core import Route
from canary.core.strategy import Strategy, infer
from canary.models.canary import CanaryAnalysis, Phase
from tests.unit.core.scenario import World, initialized

AB_MATCH = [{"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}]
ITERATIVE = {"stepWeight": None, "maxWeight": None, "iterations": 3}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"stepWeight": 10}, Strategy.CANARY),
    ({"stepWeights": [5, 50]}, Strategy.CANARY),
    ({"iterations": 5, "match": AB_MATCH}, Strategy.AB_TESTING),
    ({"iterations": 5}, Strategy.BLUE_GREEN),
    ({"iterations": 5, "mirror": True}, Strategy.BLUE_GREEN_MIRRORING),
])
def test_the_strategy_is_inferred_from_the_analysis(fields: dict[str, object],
                                                    expected: Strategy) -> None:
    analysis = CanaryAnalysis.model_validate({"interval": "1m", "threshold": 1, **fields})
    assert infer(analysis) is expected


def run_revision(world: World) -> list[Route | None]:
    """Start revision 2 and step until quiet; return every route the world was given."""
    world.target_revision = "rev-2"
    routes = []
    for _ in range(100):
        decision = world.step()
        routes.append(world.route)
        if decision.wake_after is None:
            return routes
        world.advance(decision.wake_after)
    raise AssertionError("never settled")



class TestAbTesting:
    def test_matched_users_reach_the_canary_then_everyone_after_promotion(self) -> None:
        world = initialized(**ITERATIVE, match=AB_MATCH)
        routes = run_revision(world)
        assert world.canary.status.strategy == "ABTesting"
        assert world.canary.status.phase == Phase.SUCCEEDED
        assert world.canary.status.iterations == 3
        during = [r for r in routes if r is not None and r.match_to_canary]
        assert during and all(r.canary_weight == 0 for r in during)
        assert Route(100) in routes  # the switch while the primary takes the template
        assert routes[-1] == Route(0)
        assert world.reasons()[:2] == ["NewRevision", "AnalysisStarted"]
        assert world.reasons().count("IterationPassed") == 2

    def test_a_failing_ab_test_rolls_back_to_plain_primary_routing(self) -> None:
        world = initialized(**ITERATIVE, match=AB_MATCH)
        world.success_rate = 50.0
        run_revision(world)
        assert world.canary.status.phase == Phase.FAILED
        assert world.route == Route(0)


class TestBlueGreen:
    def test_the_primary_keeps_all_traffic_until_traffic_switches_at_once(self) -> None:
        world = initialized(**ITERATIVE)
        routes = run_revision(world)
        assert world.canary.status.strategy == "BlueGreen"
        weights = [r.canary_weight for r in routes if r is not None]
        assert set(weights) == {0, 100}
        first_switch = weights.index(100)
        assert all(w == 0 for w in weights[:first_switch])
        assert world.canary.status.phase == Phase.SUCCEEDED

    def test_mirroring_copies_the_configured_share_during_analysis(self) -> None:
        world = initialized(**ITERATIVE, mirror=True, mirrorWeight=30)
        routes = run_revision(world)
        assert world.canary.status.strategy == "BlueGreenMirroring"
        assert Route(0, mirror_percent=30.0) in routes
        assert world.canary.status.phase == Phase.SUCCEEDED
        assert routes[-1] == Route(0)


class TestWeightedCanaryWithMirroring:
    def test_the_first_step_mirrors_then_weights_move_without_a_mirror(self) -> None:
        world = initialized(mirror=True, mirrorWeight=50)
        routes = run_revision(world)
        assert world.canary.status.strategy == "Canary"
        shown = [r for r in routes if r is not None]
        collapsed = [r for i, r in enumerate(shown) if i == 0 or r != shown[i - 1]]
        assert collapsed == [Route(0), Route(0, mirror_percent=50.0), Route(10), Route(20),
                             Route(30), Route(0)]
        assert world.canary.status.phase == Phase.SUCCEEDED

    def test_a_canary_failing_under_mirrored_traffic_never_gets_live_traffic(self) -> None:
        world = initialized(mirror=True)
        world.success_rate = 50.0
        routes = run_revision(world)
        assert world.canary.status.phase == Phase.FAILED
        assert all(r is None or r.canary_weight == 0 for r in routes)


def test_gradual_promotion_returns_traffic_to_the_primary_step_by_step() -> None:
    world = initialized(stepWeightPromotion=10)
    routes = run_revision(world)
    weights = [r.canary_weight for r in routes if r is not None]
    collapsed = [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]]
    assert collapsed == [0, 10, 20, 30, 20, 10, 0]
    assert world.canary.status.phase == Phase.SUCCEEDED
    assert "WeightDecreased" in world.reasons()


@pytest.mark.parametrize("fields", [
    {"stepWeight": 10}, {"stepWeights": [5, 50]}, {"stepWeightPromotion": 10},
    {**ITERATIVE, "match": AB_MATCH}, ITERATIVE, {**ITERATIVE, "mirror": True},
    {"skipAnalysis": True},
], ids=["weighted", "step-weights", "gradual", "ab", "blue-green", "mirroring", "skip"])
def test_succeeded_is_said_only_once_all_traffic_is_back_on_the_primary(
        fields: dict[str, object]) -> None:
    """The worker writes a decision's status before carrying out its actions, so the
    routing back to the primary is a decision of its own (Finalising), before the one
    that says Succeeded: whoever sees Succeeded sees the canary out of the route."""
    world = initialized(**{k: v for k, v in fields.items() if k != "skipAnalysis"})
    if fields.get("skipAnalysis"):
        world.canary = world.canary.model_copy(update={"spec": world.canary.spec.model_copy(
            update={"skip_analysis": True})})
    world.target_revision = "rev-2"
    for _ in range(100):
        routed_before = world.route
        decision = world.step()
        if decision.status.phase == Phase.SUCCEEDED:
            assert routed_before == Route(0)
            assert world.decisions[-2].status.phase == Phase.FINALISING
            return
        world.advance(decision.wake_after or 1)
    raise AssertionError("never succeeded")
