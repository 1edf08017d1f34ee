"""Driving a rollout through steps that hold for want of evidence (no request to the
canary, no answer from the metrics server), under every strategy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.unit.core.scenario import World

AB_MATCH = [{"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}]
ITERATIVE = {"stepWeight": None, "maxWeight": None, "iterations": 4}


@dataclass
class Setup:
    """A world and how to take its evidence away for a step (True) or give it back."""

    world: World
    gap: Callable[[bool], None]


def run_steps(setup: Setup, gaps: list[bool]) -> World:
    """Start the next revision's analysis, then one decision per step with ``gaps``."""
    world = setup.world
    world.target_revision = "rev-2"
    decision = world.step()
    while world.canary.status.analysis_started_at is None:
        world.advance(decision.wake_after or 1)
        decision = world.step()
    for gap in gaps:
        setup.gap(gap)
        world.advance(decision.wake_after or 10)
        decision = world.step()
    return world
