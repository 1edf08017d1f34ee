"""Steps whose end finds the metrics server unreachable: no evidence, so the rollout holds.

Whatever the strategy and whether the analysis has threshold metrics, a judge or both, a
step the metrics server could not answer never moves the weight up, never counts an
iteration, never counts as a failed check and never promotes; when the server answers
again the analysis moves on, and when it does not within the progress deadline, the
rollout is rolled back. A query the server answers with no values, or refuses as bad,
stays a failed check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core import MetricValue
from canary.core.thresholds import check_threshold, failures
from canary.models.canary import CanaryMetric, Condition, Phase
from tests.unit.core.holds import AB_MATCH, ITERATIVE, Setup, run_steps
from tests.unit.core.scenario import Service, World, initialized, judged

DOWN = "Prometheus at prometheus:9090: connection refused"


def thresholds(**analysis: Any) -> Setup:
    world = initialized(**analysis)

    def outage(on: bool) -> None:
        world.metrics_outage = DOWN if on else None

    return Setup(world, outage)


def with_judge(*, thresholds_too: bool = False, **analysis: Any) -> Setup:
    """A judged analysis (with a threshold metric too when ``thresholds_too``): the judge's
    readings and the threshold queries go to the same server."""
    service = Service(rps=100.0, error_rate=0.01)
    world = judged(service, promoteEarly=True)
    world.canary.spec.analysis = world.canary.spec.analysis.model_copy(update=analysis)
    if thresholds_too:
        world.canary.spec.analysis.metrics = initialized().canary.spec.analysis.metrics

    def outage(on: bool) -> None:
        service.outage = DOWN if on else None
        world.metrics_outage = DOWN if on else None

    return Setup(world, outage)


SETUPS: dict[str, Callable[[], Setup]] = {
    "canary, thresholds": lambda: thresholds(),
    "canary, mirrored first step, thresholds": lambda: thresholds(mirror=True),
    "canary, judge": lambda: with_judge(),
    "canary, judge and thresholds": lambda: with_judge(thresholds_too=True),
    "a/b testing, thresholds": lambda: thresholds(**ITERATIVE, match=AB_MATCH),
    "blue/green, thresholds": lambda: thresholds(**ITERATIVE),
    "blue/green mirroring, thresholds": lambda: thresholds(**ITERATIVE, mirror=True),
    "blue/green mirroring, judge": lambda: with_judge(stepWeight=None, maxWeight=None,
                                                      iterations=4, mirror=True),
}


def promoted(world: World) -> Condition:
    return next(c for c in world.canary.status.conditions or [] if c.type == "Promoted")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(SETUPS)), st.lists(st.booleans(), min_size=4, max_size=16))
def test_a_step_the_metrics_server_missed_neither_moves_nor_fails_the_rollout(
        name: str, outages: list[bool]) -> None:
    """Each decision ends a step with the server up or down; while it is down, the weight
    and the iterations do not grow, no check fails and nothing is promoted; a rollback
    comes only from the progress deadline, naming the outage."""
    setup = SETUPS[name]()
    world = setup.world
    world.target_revision = "rev-2"
    decision = world.step()
    for down in outages:
        if decision.wake_after is None:
            break
        setup.gap(down)
        status = world.canary.status
        started = status.analysis_started_at is not None
        before = (world.weight, status.iterations or 0, status.failed_checks or 0)
        phase = world.phase()
        world.advance(decision.wake_after)
        decision = world.step()
        if down and started and phase == Phase.PROGRESSING:
            after = world.canary.status
            assert world.weight <= before[0], name
            assert (after.iterations or 0) <= before[1], name
            assert (after.failed_checks or 0) == before[2], name
            assert world.phase() in (Phase.PROGRESSING, Phase.FAILED), name
            if world.phase() == Phase.FAILED:
                assert promoted(world).reason == "ProgressDeadlineExceeded", name
                assert "metrics server has not answered" in promoted(world).message, name


class TestHeldSteps:
    run = staticmethod(run_steps)

    def test_the_weight_holds_and_the_status_says_why_once(self) -> None:
        world = self.run(thresholds(), [False, True, True, True])
        status = world.canary.status
        assert world.weight == 20 and status.failed_checks == 0
        assert status.metrics_unavailable_since is not None
        assert promoted(world).reason == "MetricsUnavailable"
        assert "holds at weight 20%: the metrics server could not answer" in \
            promoted(world).message
        assert DOWN in promoted(world).message
        assert world.reasons().count("MetricsUnavailable") == 1
        assert "AnalysisFailed" not in world.reasons()
        assert status.last_analysis is not None
        assert status.last_analysis.results[0].verdict == "Unavailable"

    def test_the_analysis_moves_on_when_the_server_answers_again(self) -> None:
        world = self.run(thresholds(), [False, True, True, False])
        status = world.canary.status
        assert world.weight == 30 and status.metrics_unavailable_since is None
        assert promoted(world).reason == "Progressing"
        assert "MetricsAvailable" in world.reasons()
        world.run_until_quiet()
        assert world.phase() == Phase.SUCCEEDED

    def test_an_outage_as_long_as_the_progress_deadline_rolls_back(self) -> None:
        world = self.run(thresholds(), [False] + [True] * 7)
        assert world.phase() == Phase.FAILED and world.weight == 0
        assert promoted(world).reason == "ProgressDeadlineExceeded"
        assert "the metrics server has not answered for 60s" in promoted(world).message
        assert world.canary.status.metrics_unavailable_since is None

    def test_the_deadline_counts_from_the_outage_not_from_the_rollout(self) -> None:
        """Answered steps between outages start the clock again."""
        world = self.run(thresholds(maxWeight=90), [True] * 5 + [False] + [True] * 5)
        assert world.phase() == Phase.PROGRESSING

    def test_a_judged_step_without_the_server_holds(self) -> None:
        world = self.run(with_judge(), [False, True, True])
        assert world.weight == 10 and world.canary.status.failed_checks == 0
        assert promoted(world).reason == "MetricsUnavailable"


class TestValuesMissingJustAfterTheOutage:
    """The server answers again but has scraped nothing since its outage: its rate
    windows are empty for a while. That gap is part of the outage, not a failed check."""

    def after_outage(self, empty_steps: int) -> World:
        world = run_steps(thresholds(), [False, True, True])
        world.metrics_outage, world.success_rate = None, None
        for _ in range(empty_steps):
            world.advance(world.decisions[-1].wake_after or 10)
            world.step()
        return world

    def test_the_hold_lasts_until_values_return(self) -> None:
        world = self.after_outage(2)
        status = world.canary.status
        assert world.weight == 20 and status.failed_checks == 0
        assert promoted(world).reason == "MetricsUnavailable"
        assert "no values yet since the metrics server's outage" in promoted(world).message
        assert world.reasons().count("MetricsUnavailable") == 1
        world.success_rate = 100.0
        world.advance(world.decisions[-1].wake_after or 10)
        world.step()
        assert world.weight == 30 and world.canary.status.failed_checks == 0
        assert "MetricsAvailable" in world.reasons()

    def test_values_that_never_return_roll_back_at_the_deadline(self) -> None:
        world = self.after_outage(6)
        assert world.phase() == Phase.FAILED
        assert promoted(world).reason == "ProgressDeadlineExceeded"
        assert world.canary.status.failed_checks == 0


class TestStillFailedChecks:
    def run(self, world: World, measured: Callable[[World], None]) -> World:
        world.target_revision = "rev-2"
        decision = world.step()
        while world.canary.status.analysis_started_at is None:
            world.advance(decision.wake_after or 1)
            decision = world.step()
        measured(world)
        world.advance(decision.wake_after or 10)
        world.step()
        return world

    def test_a_query_answered_without_values_is_a_failed_check(self) -> None:
        world = self.run(initialized(), lambda w: setattr(w, "success_rate", None))
        assert world.canary.status.failed_checks == 1
        assert world.canary.status.metrics_unavailable_since is None

    def test_a_query_refused_as_bad_is_a_failed_check_naming_the_metric(self) -> None:
        def bad_query(world: World) -> None:
            world._measured = lambda: MetricValue(  # type: ignore[method-assign]
                "request-success-rate", error="Prometheus at p:9090: HTTP 400, bad query")

        world = self.run(initialized(), bad_query)
        assert world.canary.status.failed_checks == 1
        assert "request-success-rate: Prometheus at p:9090: HTTP 400" in \
            world.decisions[-1].events[-1].message


class TestThresholdVerdict:
    METRIC = CanaryMetric.model_validate({"name": "request-success-rate",
                                          "thresholdRange": {"min": 99}})

    def test_an_unavailable_measurement_is_no_failure(self) -> None:
        result = check_threshold(self.METRIC, MetricValue(
            "request-success-rate", error=DOWN, unavailable=True), "web")
        assert result.verdict == "Unavailable" and result.message == DOWN
        assert failures([result]) == []

    def test_a_failed_query_is_still_an_error(self) -> None:
        result = check_threshold(self.METRIC, MetricValue(
            "request-success-rate", error="HTTP 400"), "web")
        assert result.verdict == "Error" and failures([result]) == [result]
