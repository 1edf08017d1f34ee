"""What the decision tells operators in events and conditions: evidence for each step,
what a query with no values selected and why that usually happens, a promotion waiting
on its primary, and a promotion's recovered failed checks."""

from __future__ import annotations

from dataclasses import replace

from canary.core import Decision, MetricValue, decide
from canary.models.canary import Phase
from tests.unit.core.scenario import (
    SETTINGS,
    World,
    initialized,
    judged,
    make_canary,
    promoting_on_an_unready_primary,
)

TWO_METRICS = [{"name": "request-success-rate", "thresholdRange": {"min": 99}},
               {"name": "request-duration", "thresholdRange": {"max": 500}}]


def messages(world: World, reason: str) -> list[str]:
    return [e.message for d in world.decisions for e in d.events if e.reason == reason]


def at_the_first_check(world: World) -> World:
    """``world`` with a new revision at its first weight, at the end of that step."""
    world.target_revision = "rev-2"
    world.step()
    world.step()
    assert world.weight == 10
    world.advance(10)
    return world


def measured(world: World, *values: MetricValue) -> Decision:
    return decide(world.canary, replace(world.observe(), metrics=values), SETTINGS)


class TestNoValues:
    def test_the_event_says_what_was_queried_and_the_usual_causes(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.success_rate = None
        world.run_until_quiet()
        [halted] = messages(world, "AnalysisFailed")
        assert "request-success-rate: no values for workload web in namespace shop over " \
            "10s" in halted
        assert "no traffic to the canary" in halted and "`mesh` gateway" in halted
        assert "namespace/target labels" in halted
        assert len(halted) < 300 and "\n" not in halted
        result = world.canary.status.last_analysis.results[0]  # type: ignore[union-attr]
        assert result.message == "no values for workload web in namespace shop over 10s"

    def test_metrics_without_values_are_named_together_with_the_causes_once(self) -> None:
        world = at_the_first_check(initialized(metrics=TWO_METRICS))
        decision = measured(world, MetricValue("request-success-rate"),
                            MetricValue("request-duration"))
        [halted] = [e.message for e in decision.events if e.reason == "AnalysisFailed"]
        assert "request-success-rate, request-duration: no values for workload web in " \
            "namespace shop over 10s (usual causes: " in halted
        assert halted.count("no values") == 1 and halted.count("`mesh` gateway") == 1
        assert len(halted) < 300

    def test_a_metric_interval_is_the_one_named(self) -> None:
        world = at_the_first_check(initialized(metrics=[
            {"name": "request-success-rate", "thresholdRange": {"min": 99},
             "interval": "2m"}]))
        decision = measured(world, MetricValue("request-success-rate"))
        assert "in namespace shop over 2m" in decision.events[0].message


class TestWeightIncreasedEvidence:
    def test_each_increase_carries_the_checks_that_allowed_it(self) -> None:
        world = World(make_canary(
            metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99,
                                                                         "max": 101}}],
            webhooks=[{"name": "load", "type": "rollout", "url": "http://load/"}]))
        world.hooks = {"rollout": True}
        world.run_until_quiet()
        world.decisions.clear()
        world.target_revision = "rev-2"
        world.run_until_quiet()
        increases = messages(world, "WeightIncreased")
        assert increases[0] == "Advance web canary weight to 10"  # nothing measured yet
        assert increases[1] == ("Advance web canary weight to 20: webhook/rollout passed; "
                                "request-success-rate 100 (>= 99, <= 101)")

    def test_the_judge_summary_is_appended_and_the_line_is_cut(self) -> None:
        world = judged(metrics=[{"name": "error-rate", "type": "errorRate"},
                                {"name": "latency", "type": "latency",
                                 "bound": 500}])
        world.target_revision = "rev-2"
        for _ in range(6):
            decision = world.step()
            world.advance(decision.wake_after or 1)
        increases = messages(world, "WeightIncreased")
        assert len(increases) >= 2, world.reasons()
        assert increases[1].startswith("Advance web canary weight to 10: error-rate (")
        assert "ratio" in increases[1] and "\n" not in increases[1]
        prefix = len("Advance web canary weight to 10: ")
        assert len(increases[1]) == prefix + 300 + len("...")  # two metrics' worth, cut


class TestPromotionWaitingForThePrimary:
    def promoting(self) -> World:
        world = promoting_on_an_unready_primary()
        world.decisions.clear()
        return world

    def test_says_why_once_after_an_interval(self) -> None:
        world = self.promoting()
        world.advance(5)
        early = world.step()
        assert early.wake_after is not None and early.wake_after <= 5
        assert messages(world, "PrimaryNotReady") == []
        world.advance(early.wake_after)
        for _ in range(4):
            world.step()
            world.advance(3)
        [said] = messages(world, "PrimaryNotReady")
        assert said.startswith("web-primary has not finished rolling out revision rev-2: "
                               "0 of 2 replicas available; the promotion is rolled back "
                               "if it has not by 20")
        promoted = next(c for c in world.canary.status.conditions or []
                        if c.type == "Promoted")
        assert (promoted.status, promoted.reason, promoted.message) == (
            "Unknown", "WaitingForPrimary", said)

    def test_the_condition_follows_the_primary_and_the_promotion_completes(self) -> None:
        world = self.promoting()
        world.advance(10)
        world.step()
        world.primary_detail = "1 of 2 replicas available"
        world.advance(1)
        world.step()
        promoted = next(c for c in world.canary.status.conditions or []
                        if c.type == "Promoted")
        assert "1 of 2 replicas available" in promoted.message
        assert len(messages(world, "PrimaryNotReady")) == 1
        world.primary_ready = True
        world.run_until_quiet()
        assert world.canary.status.phase == Phase.SUCCEEDED


class TestRecoveredChecks:
    def test_a_promotion_after_a_failed_check_reads_as_a_success(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.success_rate = 80.0
        while not messages(world, "AnalysisFailed"):
            decision = world.step()
            world.advance(decision.wake_after or 1)
        world.success_rate = 100.0
        world.run_until_quiet()
        status = world.canary.status
        assert status.phase == Phase.SUCCEEDED
        assert status.failed_checks == 0  # no failure count next to Succeeded
        [promoted] = messages(world, "Promoted")
        assert promoted == ("Promotion of web revision rev-2 completed (1 failed check in "
                            "the analysis, recovered)")
        condition = next(c for c in status.conditions or [] if c.type == "Promoted")
        assert condition.message == promoted

    def test_a_clean_promotion_says_nothing_of_checks(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.run_until_quiet()
        assert messages(world, "Promoted") == ["Promotion of web revision rev-2 completed"]
