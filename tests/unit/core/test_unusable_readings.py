"""Steps whose end gave the judge no usable reading: no evidence, so the rollout holds.

A failed query or counters that cannot be differenced (a reset) judge no step, nor does
the reading after one, which only starts the counts again. Such a step never moves the
weight up, never counts an iteration and never promotes; the analysis moves on at the
first judged step, and a rollout whose judge has no usable reading for the progress
deadline is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.models.canary import Phase
from tests.unit.core.holds import Setup, run_steps
from tests.unit.core.scenario import Service, World, judged

METRIC = "error-rate"


def judged_world(**analysis: object) -> tuple[World, Service]:
    """A judged analysis with promoteEarly, and the service it reads."""
    service = Service(rps=100.0, error_rate=0.01)
    world = judged(service, promoteEarly=True)
    world.canary.spec.analysis = world.canary.spec.analysis.model_copy(update=analysis)
    return world, service


def failing_reads(**analysis: object) -> Setup:
    """The judge's reading fails while the gap is on."""
    world, service = judged_world(**analysis)

    def gap(on: bool) -> None:
        if on:
            service.failing.add(METRIC)
        else:
            service.failing.discard(METRIC)

    return Setup(world, gap)


def resets(**analysis: object) -> Setup:
    """The canary's counters start again from zero in each gap."""
    world, service = judged_world(**analysis)

    def gap(on: bool) -> None:
        if on:
            service.reset_canary()

    return Setup(world, gap)


SETUPS: dict[str, Callable[[], Setup]] = {
    "canary, failed reads": failing_reads,
    "canary, counter resets": resets,
    "blue/green mirroring, failed reads": lambda: failing_reads(
        stepWeight=None, maxWeight=None, iterations=4, mirror=True),
}


def promoted(world: World) -> tuple[str, str]:
    condition = next(c for c in world.canary.status.conditions or [] if c.type == "Promoted")
    return condition.reason, condition.message


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(SETUPS)), st.lists(st.booleans(), min_size=4, max_size=16))
def test_a_step_without_a_usable_reading_never_moves_the_rollout_on(
        name: str, gaps: list[bool]) -> None:
    """Neither the step whose reading is unusable nor the next (which only starts the
    counts again) raises the weight, counts an iteration or promotes."""
    setup = SETUPS[name]()
    world = setup.world
    world.target_revision = "rev-2"
    decision = world.step()
    previous_gap = False
    for gap in gaps:
        if decision.wake_after is None:
            break
        setup.gap(gap)
        started = world.canary.status.analysis_started_at is not None
        before, phase = (world.weight, world.canary.status.iterations or 0), world.phase()
        world.advance(decision.wake_after)
        decision = world.step()
        if (gap or previous_gap) and started and phase == Phase.PROGRESSING:
            assert world.weight <= before[0], name
            assert (world.canary.status.iterations or 0) <= before[1], name
            assert world.phase() in (Phase.PROGRESSING, Phase.FAILED), name
        previous_gap = gap and "resets" not in name


class TestHeldSteps:
    def test_the_weight_holds_and_the_status_says_why(self) -> None:
        world = run_steps(failing_reads(), [False, True])
        status = world.canary.status
        assert world.weight == 10 and status.no_evidence_since is not None
        reason, message = promoted(world)
        assert reason == "WaitingForEvidence"
        assert "holds at weight 10%: the judge had no usable reading of the last step" in \
            message
        assert "error-rate: no data: query failed: timed out" in message
        assert world.reasons().count("WeightHeld") == 1

    def test_the_reading_after_a_failed_one_only_starts_the_counts_again(self) -> None:
        world = run_steps(failing_reads(), [False, True, False])
        assert world.weight == 10 and world.canary.status.no_evidence_since is not None
        assert "error-rate: its counts start from this reading" in promoted(world)[1]

    def test_the_analysis_moves_on_at_the_first_judged_step(self) -> None:
        world = run_steps(failing_reads(), [False, True, False, False])
        status = world.canary.status
        assert world.weight == 15 and status.no_evidence_since is None
        assert promoted(world)[0] == "Progressing"
        assert "EvidenceReturned" in world.reasons()

    def test_a_counter_reset_holds_one_step(self) -> None:
        world = run_steps(resets(), [False, True, False])
        assert world.weight == 15 and world.canary.status.no_evidence_since is None

    def test_unusable_readings_as_long_as_the_progress_deadline_roll_back(self) -> None:
        world = run_steps(failing_reads(), [False] + [True] * 7)
        assert world.phase() == Phase.FAILED and world.weight == 0
        reason, message = promoted(world)
        assert reason == "ProgressDeadlineExceeded"
        assert "the judge has had no usable reading for 60s" in message
