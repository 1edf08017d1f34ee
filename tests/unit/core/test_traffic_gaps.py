"""Steps in which the canary served no request: no evidence, so the rollout holds.

Whatever the strategy and whether the analysis has threshold metrics, a judge or both, a
step without requests to the canary never moves the weight up, never counts an
iteration and never promotes; when the requests return, the analysis moves on, and when
they do not return within the progress deadline, the rollout is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.models.canary import Phase
from tests.unit.core.holds import AB_MATCH, ITERATIVE, Setup, run_steps
from tests.unit.core.scenario import Service, World, initialized, judged


def thresholds(**analysis: Any) -> Setup:
    """Threshold metrics only: without requests their query has no values."""
    world = initialized(**analysis)

    def gap(on: bool) -> None:
        world.success_rate = None if on else 100.0

    return Setup(world, gap)


def with_judge(*, thresholds_too: bool = False, seed: int = 0, **analysis: Any) -> Setup:
    """A judged analysis whose service stops serving during a gap; with
    ``thresholds_too``, a threshold metric that keeps returning a value as well (a metric
    that does not depend on the canary's requests)."""
    service = Service(rps=100.0, error_rate=0.01, seed=seed)
    world = judged(service, promoteEarly=True)
    world.canary.spec.analysis = world.canary.spec.analysis.model_copy(update=analysis)
    if thresholds_too:
        world.canary.spec.analysis.metrics = initialized().canary.spec.analysis.metrics

    def gap(on: bool) -> None:
        service.rps = 0.0 if on else 100.0

    return Setup(world, gap)


SETUPS: dict[str, Callable[[], Setup]] = {
    "canary, thresholds": lambda: thresholds(),
    "canary, judge": lambda: with_judge(),
    "canary, judge and thresholds": lambda: with_judge(thresholds_too=True),
    "canary, mirrored first step, judge": lambda: with_judge(mirror=True),
    "a/b testing, thresholds": lambda: thresholds(**ITERATIVE, match=AB_MATCH),
    "blue/green, thresholds": lambda: thresholds(**ITERATIVE),
    "blue/green mirroring, thresholds": lambda: thresholds(**ITERATIVE, mirror=True),
    "blue/green mirroring, judge": lambda: with_judge(stepWeight=None, maxWeight=None,
                                                      iterations=4, mirror=True),
}


def progress_of(world: World) -> tuple[int, int]:
    status = world.canary.status
    return world.weight, status.iterations or 0


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(SETUPS)), st.lists(st.booleans(), min_size=4, max_size=16))
def test_a_step_without_canary_requests_never_moves_the_rollout_on(
        name: str, gaps: list[bool]) -> None:
    """Each decision sees the traffic of the time since the last one; while the canary
    has none, the weight and the iterations do not grow and nothing is promoted."""
    setup = SETUPS[name]()
    world = setup.world
    world.target_revision = "rev-2"
    decision = world.step()
    for gap in gaps:
        if decision.wake_after is None:
            break
        setup.gap(gap)
        started = world.canary.status.analysis_started_at is not None
        before, phase = progress_of(world), world.phase()
        world.advance(decision.wake_after)
        decision = world.step()
        if gap and started and phase == Phase.PROGRESSING:
            weight, iterations = progress_of(world)
            assert weight <= before[0] and iterations <= before[1], name
            assert world.phase() in (Phase.PROGRESSING, Phase.FAILED), name


class TestHeldSteps:
    run = staticmethod(run_steps)

    def test_the_weight_holds_and_the_status_says_why(self) -> None:
        world = self.run(with_judge(), [False, True, True])
        status = world.canary.status
        assert world.weight == 10 and status.no_requests_since is not None
        promoted = next(c for c in status.conditions or [] if c.type == "Promoted")
        assert promoted.reason == "WaitingForRequests"
        assert "holds at weight 10%: no request reached the canary" in promoted.message
        assert "rolled back if none have by" in promoted.message
        assert world.reasons().count("WeightHeld") == 1

    def test_the_analysis_moves_on_when_requests_return(self) -> None:
        world = self.run(with_judge(), [False, True, True, False, False])
        status = world.canary.status
        assert world.weight == 20 and status.no_requests_since is None
        promoted = next(c for c in status.conditions or [] if c.type == "Promoted")
        assert promoted.reason == "Progressing"
        assert "RequestsReturned" in world.reasons()

    def test_a_gap_as_long_as_the_progress_deadline_rolls_back(self) -> None:
        world = self.run(with_judge(), [False] + [True] * 6)
        assert world.phase() == Phase.FAILED and world.weight == 0
        promoted = next(c for c in world.canary.status.conditions or []
                        if c.type == "Promoted")
        assert promoted.reason == "ProgressDeadlineExceeded"
        assert "no request reached the canary for 60s" in promoted.message

    def test_a_blue_green_iteration_without_requests_is_not_counted(self) -> None:
        world = self.run(with_judge(stepWeight=None, maxWeight=None, iterations=4,
                                    mirror=True, seed=1), [False, True, True])
        assert world.canary.status.iterations == 1
