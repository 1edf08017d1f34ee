"""A target deleted while its canary takes traffic: the canary's pods go with it, so
every request goes back to the primary at once, and the status says why."""

from __future__ import annotations

from canary.core import Route, ScaleCanary
from canary.models.canary import Phase
from tests.unit.core.scenario import World, initialized, promoting_on_an_unready_primary


def analysing() -> World:
    """A new revision at its first weighted step."""
    world = initialized()
    world.target_revision = "rev-2"
    while (world.weight or 0) == 0:
        world.advance(world.step().wake_after or 1)
    assert world.phase() == Phase.PROGRESSING
    return world


def deleted(world: World) -> None:
    world.target_exists = False


def test_an_analysis_whose_target_is_deleted_sends_all_traffic_to_the_primary() -> None:
    world = analysing()
    deleted(world)
    decision = world.step()
    assert world.weight == 0
    assert world.phase() == Phase.FAILED
    assert not any(isinstance(a, ScaleCanary) for a in decision.actions)  # nothing to scale
    promoted = next(c for c in world.canary.status.conditions or [] if c.type == "Promoted")
    assert promoted.reason == "TargetNotFound" and "rev-2" in promoted.message
    assert {"TargetNotFound", "RolledBack"} <= set(world.reasons())
    assert world.primary_revision == "rev-1"


def test_the_deleted_target_is_said_once() -> None:
    world = analysing()
    deleted(world)
    world.step()
    world.advance(10)
    later = world.step()
    assert not later.events
    assert world.reasons().count("RolledBack") == 1
    assert all(not isinstance(a, ScaleCanary) for a in later.actions)


def test_a_canary_at_rest_whose_target_is_deleted_changes_no_route() -> None:
    world = initialized()
    deleted(world)
    decision = world.step()
    assert world.phase() == Phase.INITIALIZED
    assert not any(isinstance(a, Route) for a in decision.actions)


def test_a_promotion_whose_target_is_deleted_keeps_its_primary_serving() -> None:
    world = promoting_on_an_unready_primary()
    assert (world.weight or 0) > 0
    deleted(world)
    world.step()
    assert world.weight == 0 and world.canary.status.canary_weight == 0
    assert world.phase() == Phase.PROMOTING
    assert world.primary_revision == "rev-2"
