"""A deadline never expires on caches that are catching up after a broken watch: the
change it waits for may have happened while the controller could not see it."""

from __future__ import annotations

from canary.core.decide.rollback import STALE_RECHECK_SECONDS
from canary.models.canary import Phase
from tests.unit.core.scenario import World, initialized, promoting_on_an_unready_primary

CATCHING_UP = "the deployments watch has been catching up for 61s"


def waiting_on_an_unready_canary() -> World:
    """A new revision whose canary is not ready, 61 s after the analysis began waiting
    for it (the deadline is 60 s), as seen through a watch that broke meanwhile."""
    world = initialized()
    world.target_revision = "rev-2"
    world.target_ready = False
    world.step()
    world.step()
    assert world.phase() == Phase.PROGRESSING
    world.advance(61)
    world.stale = CATCHING_UP
    return world


def test_an_unready_canary_past_its_deadline_waits_for_the_caches() -> None:
    world = waiting_on_an_unready_canary()
    decision = world.step()
    assert world.phase() == Phase.PROGRESSING
    assert "RolledBack" not in world.reasons()
    assert decision.wake_after == STALE_RECHECK_SECONDS


def test_the_change_the_caches_catch_up_with_lets_the_analysis_start() -> None:
    world = waiting_on_an_unready_canary()
    world.step()
    world.advance(STALE_RECHECK_SECONDS)
    world.stale = None
    world.target_ready = True  # what the cluster did while the watch was broken
    world.run_until_quiet()
    assert world.phase() == Phase.SUCCEEDED
    assert "RolledBack" not in world.reasons()


def test_the_deadline_applies_once_the_caches_confirm_the_canary_is_unready() -> None:
    world = waiting_on_an_unready_canary()
    world.step()
    world.advance(STALE_RECHECK_SECONDS)
    world.stale = None
    world.step()
    assert world.phase() == Phase.FAILED
    assert world.reasons()[-1] == "RolledBack"


def test_a_promotion_past_its_deadline_waits_for_the_caches() -> None:
    world = promoting_on_an_unready_primary()
    world.advance(61)
    world.stale = CATCHING_UP
    world.step()
    assert world.phase() == Phase.PROMOTING
    world.stale = None
    world.advance(STALE_RECHECK_SECONDS)
    world.step()
    assert world.phase() == Phase.FAILED
