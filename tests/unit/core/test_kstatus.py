"""The Canary's status as kstatus (Flux's ``wait`` and ``healthChecks``) and ``kubectl
wait --for=condition=Ready`` read it: in progress during a rollout, failed after a
rollback, current once the primary serves the released revision."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core import decide
from canary.models.canary import Condition, Phase
from tests.unit.core import lifecycle
from tests.unit.core.kstatus_model import compute
from tests.unit.core.scenario import SETTINGS, World, initialized, make_canary

UNDER_WAY = {Phase.INITIALIZING, Phase.WAITING, Phase.QUEUED, Phase.PROGRESSING,
             Phase.PROMOTING, Phase.FINALISING}


def find(world: World, type_: str) -> Condition | None:
    return next((c for c in world.canary.status.conditions or [] if c.type == type_), None)


def said(world: World, type_: str) -> tuple[str, str] | None:
    """A condition's status and reason, None when absent."""
    condition = find(world, type_)
    return None if condition is None else (condition.status, condition.reason)


def kstatus(world: World) -> str:
    return compute(lifecycle.as_stored(world))[0]


class TestPhases:
    def test_every_phase_of_a_promotion_is_in_progress_until_it_succeeds(self) -> None:
        """Created, Initializing, Progressing, Promoting, Finalising: InProgress with
        Reconciling=True naming the phase, Ready=False; Initialized and Succeeded:
        Current, with neither Reconciling nor Stalled."""
        seen = set()
        for name, obj in lifecycle.promotion():
            conditions = {c["type"]: c for c in obj["status"].get("conditions", [])}
            phase = obj["status"].get("phase")
            seen.add(phase)
            if phase in UNDER_WAY:
                assert compute(obj)[0] == "InProgress", name
                assert conditions["Reconciling"]["reason"] == phase
                assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == \
                    ("False", phase)
            else:
                assert compute(obj) == ("Current", "Resource is Ready"), name
                assert conditions["Ready"]["reason"] == "TargetFound"
                assert "Reconciling" not in conditions
            assert "Stalled" not in conditions
        assert seen >= {"Initializing", "Initialized", "Progressing", "Promoting",
                        "Finalising", "Succeeded"}

    def test_a_rollback_stalls_naming_the_failed_check(self) -> None:
        world = lifecycle.rollback()
        stalled = find(world, "Stalled")
        assert stalled is not None and stalled.status == "True"
        assert stalled.reason == "AnalysisFailed"
        assert "request-success-rate" in stalled.message
        assert said(world, "Ready") == ("False", "RolledBack")
        assert find(world, "Reconciling") is None
        assert compute(lifecycle.as_stored(world)) == ("Failed", stalled.message)

    def test_a_new_revision_after_a_rollback_clears_stalled(self) -> None:
        world = lifecycle.rollback()
        world.success_rate = 100.0
        world.target_revision = "rev-3"
        world.step()
        assert find(world, "Stalled") is None
        assert said(world, "Reconciling") == ("True", "Progressing")
        world.run_until_quiet()
        assert world.phase() == Phase.SUCCEEDED and kstatus(world) == "Current"

    def test_a_gate_holding_a_revision_is_in_progress(self) -> None:
        world = lifecycle.waiting()
        assert said(world, "Reconciling") == ("True", "Waiting")
        assert said(world, "Ready") == ("False", "Waiting")
        assert kstatus(world) == "InProgress"

    def test_an_initialization_past_its_deadline_stalls(self) -> None:
        world = World(make_canary(), primary_rolls_out=False)
        for _ in range(5):
            world.step()
            world.advance(30)
        assert world.phase() == Phase.INITIALIZING
        assert said(world, "Stalled") == ("True", "ProgressDeadlineExceeded")
        assert find(world, "Reconciling") is None and kstatus(world) == "Failed"


class TestStops:
    def test_a_pause_keeps_ready_and_says_why_in_reconciling(self) -> None:
        world = lifecycle.paused()
        assert said(world, "Reconciling") == ("True", "PausedByUser")
        assert said(world, "Ready") == ("False", "Progressing")
        world.requests = replace(world.requests, paused=False)
        world.step()
        assert said(world, "Reconciling") == ("True", "Progressing")

    def test_a_suspension_keeps_ready_and_says_why_in_reconciling(self) -> None:
        world = lifecycle.suspended()
        assert said(world, "Reconciling") == ("True", "Suspended")
        assert said(world, "Ready") == ("False", "Progressing")

    def test_a_suspended_canary_at_rest_stays_current(self) -> None:
        world = initialized()
        world.canary.spec.suspend = True
        world.step()
        assert find(world, "Reconciling") is None and kstatus(world) == "Current"

    def test_problems_keep_their_ready_reason(self) -> None:
        """A conflict no wait resolves stalls; a missing reference holds a revision,
        which is in progress until the reference exists."""
        conflict = lifecycle.conflicting()
        assert said(conflict, "Ready") == ("False", "Conflict")
        assert said(conflict, "Stalled") == ("True", "Conflict")
        assert kstatus(conflict) == "Failed"
        missing = lifecycle.missing_reference()
        assert said(missing, "Ready") == ("False", "MissingReference")
        assert said(missing, "Reconciling") == ("True", "RevisionHeld")
        assert find(missing, "Stalled") is None and kstatus(missing) == "InProgress"


class TestGeneration:
    def test_observed_generation_follows_the_generation_decided_on(self) -> None:
        """A status written from an older generation reads as InProgress, whatever its
        conditions say; once decided on the new one, as its conditions say."""
        world = initialized()
        stale: dict[str, Any] = lifecycle.as_stored(world)
        stale["metadata"]["generation"] = 2
        assert compute(stale)[0] == "InProgress"
        decision = decide(world.canary, replace(world.observe(), generation=2), SETTINGS)
        assert decision.status.observed_generation == 2
        stale["status"] = decision.status.to_api()
        assert compute(stale)[0] == "Current"


class TestTransitions:
    def test_conditions_keep_their_transition_time_while_their_status_stays(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.step()
        first = find(world, "Ready"), find(world, "Reconciling")
        world.advance(10)
        world.step()
        assert (find(world, "Ready"), find(world, "Reconciling")) != (None, None)
        for before, after in zip(first, (find(world, "Ready"), find(world, "Reconciling")),
                                 strict=True):
            assert before is not None and after is not None
            assert before.last_transition_time == after.last_transition_time


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(lifecycle.HAPPENINGS),
                          st.floats(min_value=0, max_value=30)), max_size=30))
def test_kstatus_rules_hold_whatever_happens(events: list[tuple[str, float]]) -> None:
    """After every decision: Reconciling and Stalled are present only while True and
    never together; a rollout under way is InProgress, never Current; Ready is True only
    at rest on a promoted revision; a rollback of the current revision is Failed."""
    world = initialized()
    revisions = iter(f"rev-{n}" for n in range(2, 100))
    for kind, seconds in events:
        lifecycle.happen(world, kind, revisions)
        world.advance(seconds)
        world.step()
        _assert_kstatus_rules(world)


def _assert_kstatus_rules(world: World) -> None:
    status = world.canary.status
    reconciling, stalled = find(world, "Reconciling"), find(world, "Stalled")
    assert reconciling is None or reconciling.status == "True"
    assert stalled is None or stalled.status == "True"
    assert reconciling is None or stalled is None
    assert status.observed_generation == world.observe().generation
    computed = kstatus(world)
    if status.phase in UNDER_WAY:
        assert computed == "InProgress"
        assert said(world, "Ready") != ("True", "TargetFound")
    if said(world, "Ready") == ("True", "TargetFound"):
        assert status.phase in (Phase.INITIALIZED, Phase.SUCCEEDED)
    if status.phase == Phase.FAILED and world.target_revision == status.last_applied_spec:
        assert computed == "Failed"
    if computed == "Current":
        assert status.phase in (Phase.INITIALIZED, Phase.SUCCEEDED)
