"""A new revision that finds no rollout slot (the controller's limit on concurrent
rollouts) waits in phase Queued, said once, keeps its place in the queue while it waits,
and starts on the newest revision when its turn comes."""

from __future__ import annotations

from canary.core.actions import ScaleCanary
from canary.core.timefmt import parse_time
from canary.models.canary import Condition, Phase
from tests.unit.core import lifecycle
from tests.unit.core.kstatus_model import compute
from tests.unit.core.scenario import World, initialized, make_canary, present, with_request

SLOT = "2nd in the queue of 3; 1 of 1 rollout running (--max-concurrent-rollouts 1)"


def promoted(world: World) -> Condition:
    return next(c for c in world.canary.status.conditions or [] if c.type == "Promoted")


def said(world: World, type_: str) -> tuple[str, str] | None:
    found = next((c for c in world.canary.status.conditions or [] if c.type == type_), None)
    return None if found is None else (found.status, found.reason)


def queued(world: World | None = None, revision: str = "rev-2") -> World:
    """An Initialized world whose new revision found no slot."""
    world = world or initialized()
    world.rollout_slot = SLOT
    world.target_revision = revision
    world.step()
    assert world.phase() == Phase.QUEUED
    return world


class TestWaiting:
    def test_a_revision_without_a_slot_waits_with_the_canary_scaled_down(self) -> None:
        world = queued()
        status = world.canary.status
        assert status.last_applied_spec == "rev-1" and world.weight == 0
        assert world.target_replicas == 0
        assert ScaleCanary(None) not in world.decisions[-1].actions
        assert (promoted(world).status, promoted(world).reason) == ("Unknown", "Queued")
        assert promoted(world).message == f"New revision rev-2 of web waits for a rollout " \
            f"slot: {SLOT}"
        assert parse_time(present(status.queued_at)) == world.now
        assert world.decisions[-1].wake_after == 10  # the analysis interval

    def test_it_is_said_once_and_its_place_kept_up_to_date(self) -> None:
        world = queued()
        joined = world.canary.status.queued_at
        world.rollout_slot = SLOT.replace("2nd", "1st")
        for _ in range(3):
            world.advance(10)
            world.step()
        assert world.reasons() == ["Queued"]
        assert world.decisions[0].events[0].message == promoted(world).message.replace(
            "1st", "2nd")
        assert "1st in the queue of 3" in promoted(world).message
        assert world.canary.status.queued_at == joined

    def test_it_starts_when_a_slot_is_free_and_leaves_the_queue(self) -> None:
        world = queued()
        world.advance(30)
        world.rollout_slot = None
        world.step()
        assert world.phase() == Phase.PROGRESSING
        assert world.canary.status.queued_at is None
        assert world.reasons() == ["Queued", "NewRevision"]
        world.run_until_quiet()
        assert world.phase() == Phase.SUCCEEDED and world.primary_revision == "rev-2"

    def test_a_newer_revision_keeps_the_place_and_is_the_one_started(self) -> None:
        world = queued()
        joined = world.canary.status.queued_at
        world.advance(10)
        world.target_revision = "rev-3"
        world.step()
        assert world.canary.status.queued_at == joined
        assert "rev-3" in promoted(world).message and world.reasons() == ["Queued"]
        world.rollout_slot = None
        world.run_until_quiet()
        assert world.primary_revision == "rev-3"
        assert world.canary.status.last_promoted_spec == "rev-3"

    def test_a_withdrawn_change_leaves_the_queue(self) -> None:
        world = queued()
        world.target_revision = "rev-1"
        world.step()
        assert world.phase() == Phase.SUCCEEDED
        assert world.canary.status.queued_at is None

    def test_skip_analysis_waits_for_a_slot_too(self) -> None:
        """A promotion without analysis rolls the primary out all the same."""
        world = initialized()
        world.canary.spec.skip_analysis = True
        queued(world)
        assert world.primary_revision == "rev-1"
        world.rollout_slot = None
        world.step()
        assert world.phase() == Phase.PROMOTING

    def test_a_rollout_under_way_restarts_on_a_newer_revision_in_its_own_slot(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.step()
        world.rollout_slot = SLOT  # the controller never asks this of a rolling Canary
        world.target_revision = "rev-3"
        world.step()
        assert world.phase() == Phase.PROGRESSING
        assert world.canary.status.last_applied_spec == "rev-3"


class TestRequests:
    def test_an_abort_refuses_the_queued_revision(self) -> None:
        world = queued()
        world.requests = with_request(world.requests, "abort", "rev-2")
        world.step()
        assert world.phase() == Phase.FAILED and promoted(world).reason == "AbortRequested"
        assert world.canary.status.queued_at is None
        assert world.requests.abort_revision is None  # served, then forgotten

    def test_an_approval_lives_while_the_approved_revision_waits_for_a_slot(self) -> None:
        """Forgotten in the queue, it would leave the closed gate to hold the revision
        again (Waiting) once its turn came."""
        webhooks = [{"name": "gate", "type": "confirm-rollout", "url": "http://gate/"}]
        world = World(make_canary(webhooks=webhooks), hooks={"confirm-rollout": False})
        world.run_until_quiet()
        world.target_revision = "rev-2"
        world.step()
        assert world.phase() == Phase.WAITING
        world.requests = with_request(world.requests, "approve", "rev-2")
        world.rollout_slot = SLOT
        world.step()
        assert world.phase() == Phase.QUEUED
        assert world.requests.approve_revision == "rev-2"
        world.rollout_slot = None
        world.step()
        assert world.phase() == Phase.PROGRESSING


class TestStatus:
    def test_queued_is_a_rollout_in_progress_for_kstatus(self) -> None:
        world = queued()
        assert said(world, "Reconciling") == ("True", "Queued")
        assert said(world, "Ready") == ("False", "Queued")
        assert compute(lifecycle.as_stored(world))[0] == "InProgress"

    def test_without_a_limit_nothing_is_queued_or_recorded(self) -> None:
        """The default: the statuses of a whole promotion are as before the queue."""
        for _, obj in lifecycle.promotion():
            assert obj["status"].get("phase") != "Queued"
            assert "queuedAt" not in obj["status"]
