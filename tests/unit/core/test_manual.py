"""A person's promote, abort, pause and resume, as the decision applies them."""

from __future__ import annotations

import pytest

from canary.core.actions import ForgetRequest
from canary.core.observation import ManualRequests
from canary.manual import refused
from canary.models.canary import Phase
from tests.unit.core.scenario import World, make_canary


def progressing(**analysis: object) -> World:
    world = World(make_canary(**analysis))
    world.run_until_quiet()
    world.target_revision = "rev-2"
    world.step()
    world.step()
    assert world.canary.status.phase == Phase.PROGRESSING and world.weight == 10
    world.decisions.clear()
    return world


def held() -> World:
    """Revision rev-2 held by a closed confirm-rollout gate."""
    webhooks = [{"name": "gate", "type": "confirm-rollout", "url": "http://gate/"}]
    world = World(make_canary(webhooks=webhooks))
    world.hooks = {"confirm-rollout": False}
    world.run_until_quiet()  # initialization needs no approval
    world.target_revision = "rev-2"
    world.step()
    assert world.canary.status.phase == Phase.WAITING
    return world


def test_promote_skips_the_remaining_steps() -> None:
    world = progressing()
    world.requests = ManualRequests(promote_revision="rev-2")
    world.run_until_quiet()
    assert world.canary.status.phase == Phase.SUCCEEDED
    assert world.primary_revision == "rev-2"
    assert "WeightIncreased" not in world.reasons()


def test_a_promote_request_for_another_revision_is_ignored() -> None:
    world = progressing()
    world.requests = ManualRequests(promote_revision="rev-1")
    world.step()
    assert world.canary.status.phase == Phase.PROGRESSING


def test_abort_rolls_back_now() -> None:
    world = progressing()
    world.requests = ManualRequests(abort_revision="rev-2")
    world.step()
    assert world.canary.status.phase == Phase.FAILED and world.weight == 0
    assert world.reasons() == ["RolledBack"]


def test_pause_freezes_and_resume_continues() -> None:
    world = progressing()
    world.requests = ManualRequests(paused=True)
    for _ in range(3):
        decision = world.step()
        world.advance(60)
        assert decision.actions == () and world.weight == 10
    paused = next(c for c in world.canary.status.conditions or [] if c.type == "Paused")
    assert paused.status == "True"
    world.requests = ManualRequests()
    world.run_until_quiet()
    assert world.canary.status.phase == Phase.SUCCEEDED
    assert world.reasons().count("Paused") == 1 and world.reasons().count("Resumed") == 1


def test_a_served_abort_leaves_the_canary_and_never_refuses_the_template_again() -> None:
    world = progressing()
    world.requests = ManualRequests(abort_revision="rev-2")
    decision = world.step()
    assert ForgetRequest("abort", "rev-2") in decision.actions
    assert world.requests.abort_revision is None
    world.target_revision = "rev-1"  # reverted in Git
    world.run_until_quiet()
    world.target_revision = "rev-2"  # and, fixed elsewhere, applied again
    world.run_until_quiet()
    assert world.canary.status.phase == Phase.SUCCEEDED and world.primary_revision == "rev-2"


def test_a_served_promote_leaves_the_canary_and_the_template_is_analysed_next_time() -> None:
    world = progressing()
    world.requests = ManualRequests(promote_revision="rev-2")
    world.run_until_quiet()
    assert world.requests.promote_revision is None
    world.target_revision = "rev-3"
    world.run_until_quiet()
    world.target_revision = "rev-2"
    world.decisions.clear()
    world.run_until_quiet()
    assert world.canary.status.phase == Phase.SUCCEEDED
    assert "WeightIncreased" in world.reasons()  # analysed step by step this time


def test_approving_a_held_rollout_lets_its_analysis_run() -> None:
    world = held()
    world.requests = ManualRequests(approve_revision="rev-2")
    decision = world.step()
    assert ForgetRequest("approve", "rev-2") in decision.actions
    world.decisions.clear()
    world.run_until_quiet()
    assert world.canary.status.phase == Phase.SUCCEEDED and world.primary_revision == "rev-2"
    assert world.reasons().count("WeightIncreased") >= 2


def test_a_lost_removal_is_asked_for_again_and_an_approval_never_skips_the_analysis(
        ) -> None:
    world = held()
    requests = world.requests = ManualRequests(approve_revision="rev-2")
    world.step()
    world.requests = requests  # the removal was lost (a crash after the status write)
    decision = world.step()
    assert world.canary.status.phase == Phase.PROGRESSING
    assert ForgetRequest("approve", "rev-2") in decision.actions
    world.run_until_quiet()
    assert "WeightIncreased" in world.reasons()


def test_a_promote_overtaken_by_an_abort_of_the_same_revision_is_removed_too() -> None:
    world = progressing()
    world.requests = ManualRequests(promote_revision="rev-2", abort_revision="rev-2")
    decision = world.step()
    assert world.canary.status.phase == Phase.FAILED
    assert {ForgetRequest("promote", "rev-2"), ForgetRequest("abort", "rev-2")} <= set(
        decision.actions)
    assert world.requests == ManualRequests()


def test_requests_for_a_template_the_target_no_longer_has_are_removed() -> None:
    world = progressing()
    world.requests = ManualRequests(promote_revision="rev-1", abort_revision="rev-0")
    decision = world.step()
    assert world.canary.status.phase == Phase.PROGRESSING  # neither applies to rev-2
    assert {ForgetRequest("promote", "rev-1"), ForgetRequest("abort", "rev-0")} <= set(
        decision.actions)


def test_abort_refuses_a_held_rollout_and_a_newer_revision_still_starts() -> None:
    world = held()
    world.requests = ManualRequests(abort_revision="rev-2")
    world.hooks = {"confirm-rollout": True}  # even once the gate opens
    world.run_until_quiet()
    status = world.canary.status
    assert status.phase == Phase.FAILED and world.weight == 0
    assert status.last_applied_spec == "rev-2" and world.primary_revision == "rev-1"
    promoted = next(c for c in status.conditions or [] if c.type == "Promoted")
    assert promoted.reason == "AbortRequested" and "before its rollout started" in \
        promoted.message
    assert "NewRevision" not in world.reasons()
    world.target_revision = "rev-3"
    world.run_until_quiet()
    assert world.canary.status.phase == Phase.SUCCEEDED and world.primary_revision == "rev-3"


def test_an_abort_for_another_revision_does_not_refuse_the_held_one() -> None:
    world = held()
    world.requests = ManualRequests(abort_revision="rev-1")
    world.step()
    assert world.canary.status.phase == Phase.WAITING


@pytest.mark.parametrize(("action", "phase", "allowed"), [
    ("promote", "Waiting", True), ("promote", "Progressing", True),
    ("abort", "Waiting", True), ("abort", "Progressing", True),
    ("promote", "Promoting", False), ("promote", "Finalising", False),
    ("abort", "Promoting", False), ("abort", "Finalising", False),
    ("promote", "Succeeded", False), ("abort", "Failed", False),
    ("abort", "Initialized", False), ("promote", None, False),
    ("abort", "Queued", True), ("promote", "Queued", False)])
def test_promote_and_abort_are_taken_only_while_a_rollout_is_held_or_analysed(
        action: str, phase: str | None, allowed: bool) -> None:
    """A queued revision can be refused; promoting it would skip the limit on concurrent
    rollouts, which is the controller's to set."""
    refusal = refused(action, phase)
    assert (refusal is None) == allowed
    if phase in ("Promoting", "Finalising"):
        assert refusal is not None and "already under way" in refusal
    if phase == "Queued" and refusal is not None:
        assert "--max-concurrent-rollouts" in refusal


def test_the_primary_autoscaler_is_kept_in_step_once_the_primary_exists() -> None:
    from canary.core import decide
    from canary.core.actions import EnsureAutoscaler
    from canary.models.canary import AutoscalerRef
    from tests.unit.core.scenario import SETTINGS

    canary = make_canary()
    canary.spec.autoscaler_ref = AutoscalerRef(kind="HorizontalPodAutoscaler", name="web")
    world = World(canary)
    first = decide(world.canary, world.observe(), SETTINGS)
    assert EnsureAutoscaler() not in first.actions  # no primary yet
    world.run_until_quiet()
    world.target_revision = "rev-2"
    assert EnsureAutoscaler() in world.step().actions
    world.canary.spec.suspend = True
    frozen = decide(world.canary, world.observe(), SETTINGS)
    # Frozen where it was; only Reconciling says why it does not move on.
    kept = [c for c in frozen.status.conditions or [] if c.type != "Reconciling"]
    before = [c for c in world.canary.status.conditions or [] if c.type != "Reconciling"]
    assert frozen.actions == () and kept == before
    assert frozen.status.model_copy(update={"conditions": None}) == \
        world.canary.status.model_copy(update={"observed_generation": 1, "conditions": None})
    reconciling = next(c for c in frozen.status.conditions or [] if c.type == "Reconciling")
    assert (reconciling.status, reconciling.reason) == ("True", "Suspended")
