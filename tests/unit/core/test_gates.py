"""Webhook gates hold, fail or abort a rollout as their answers say."""

from __future__ import annotations

from typing import Any

from canary.models.canary import Phase
from tests.unit.core.scenario import World, make_canary


def hooked(*types: str, **analysis: Any) -> World:
    webhooks = [{"name": t, "type": t, "url": f"http://gate/{t}"} for t in types]
    world = World(make_canary(webhooks=webhooks, **analysis))
    world.hooks = dict.fromkeys(types, True)
    world.run_until_quiet()
    assert world.canary.status.phase == Phase.INITIALIZED
    world.decisions.clear()
    world.hook_calls.clear()
    return world


def run(world: World, steps: int = 30) -> None:
    for _ in range(steps):
        decision = world.step()
        if decision.wake_after is None:
            return
        world.advance(decision.wake_after)


def test_a_closed_confirm_rollout_gate_holds_the_rollout_until_it_opens() -> None:
    world = hooked("confirm-rollout")
    world.hooks["confirm-rollout"] = False
    world.target_revision = "rev-2"
    run(world, steps=5)
    assert world.canary.status.phase == Phase.WAITING
    assert world.target_replicas == 0 and world.weight == 0
    assert world.canary.status.last_applied_spec == "rev-1"
    assert world.reasons() == ["WaitingForApproval"]
    world.hooks["confirm-rollout"] = True
    run(world)
    assert world.phase() == Phase.SUCCEEDED


def test_a_failing_pre_rollout_hook_counts_as_failed_checks() -> None:
    world = hooked("pre-rollout")
    world.hooks["pre-rollout"] = False
    world.target_revision = "rev-2"
    run(world)
    assert world.canary.status.phase == Phase.FAILED
    assert world.canary.status.failed_checks == 2
    assert world.hook_calls.count("pre-rollout") == 2
    assert max(d.status.canary_weight or 0 for d in world.decisions) == 0


def test_a_rollback_hook_that_answers_2xx_aborts_the_analysis() -> None:
    world = hooked("rollback")
    world.target_revision = "rev-2"
    run(world)
    assert world.canary.status.phase == Phase.FAILED
    promoted = next(c for c in world.canary.status.conditions or [] if c.type == "Promoted")
    assert promoted.reason == "RollbackRequested"


def test_rollout_hooks_are_checks_of_the_analysis() -> None:
    world = hooked("rollout")
    world.hooks["rollout"] = False
    world.target_revision = "rev-2"
    run(world)
    assert world.canary.status.phase == Phase.FAILED
    last = world.canary.status.last_analysis
    assert last is not None and {r.name: r.verdict for r in last.results}["webhook/rollout"] \
        == "Failed"


def test_closed_traffic_and_promotion_gates_hold_without_failing() -> None:
    world = hooked("confirm-traffic-increase", "confirm-promotion")
    world.hooks["confirm-promotion"] = False
    world.target_revision = "rev-2"
    run(world, steps=20)
    assert world.canary.status.phase == Phase.PROGRESSING
    assert world.weight == 30 and world.canary.status.failed_checks == 0
    world.hooks["confirm-promotion"] = True
    run(world)
    assert world.phase() == Phase.SUCCEEDED


def test_post_rollout_hooks_are_called_after_success_and_after_rollback() -> None:
    world = hooked("post-rollout")
    world.target_revision = "rev-2"
    run(world)
    assert world.hook_calls.count("called post-rollout") == 1
    world.success_rate = 10.0
    world.target_revision = "rev-3"
    run(world)
    assert world.canary.status.phase == Phase.FAILED
    assert world.hook_calls.count("called post-rollout") == 2


def test_mirrored_traffic_needs_no_traffic_approval_but_the_first_weight_does() -> None:
    world = hooked("confirm-traffic-increase", mirror=True)
    world.hooks["confirm-traffic-increase"] = False
    world.target_revision = "rev-2"
    run(world, steps=20)
    assert world.route is not None and world.route.mirror_percent == 100.0
    assert world.weight == 0 and world.canary.status.phase == Phase.PROGRESSING
    assert "WaitingForApproval" in world.reasons()
    world.hooks["confirm-traffic-increase"] = True
    run(world)
    assert world.phase() == Phase.SUCCEEDED
