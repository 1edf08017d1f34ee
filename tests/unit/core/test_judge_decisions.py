"""The statistical judge inside the decision: counters in, rollbacks, early promotions and
evidence in the status out."""

from __future__ import annotations

import json
import math
import statistics
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core import Route, ScaleCanary
from canary.core.evidence import PowerPlan, Verdict, advance, begin, quantile_bound
from canary.core.judge import Counts, JudgeState, ratio_for_absolute_effect, replay
from canary.core.observation import Counters, JudgeReading
from canary.core.timefmt import parse_time
from canary.models.canary import (
    Canary,
    CanaryJudge,
    JudgeStateRecord,
    JudgeStatus,
    Phase,
)
from tests.unit.core.scenario import (
    START,
    Service,
    World,
    first_metric,
    judge_of,
    judged,
    present,
)


def roll_out(world: World, limit: int = 60) -> World:
    """Deliver a new revision until nothing asks for a wake-up."""
    world.target_revision = "rev-2"
    world.run_until_quiet(limit)
    return world


def condition(world: World, type_: str) -> Any:
    return next((c for c in world.canary.status.conditions or [] if c.type == type_), None)


def events(world: World, reason: str) -> list[str]:
    return [e.message for d in world.decisions for e in d.events if e.reason == reason]


def weights(world: World) -> list[int]:
    seen: list[int] = []
    for d in world.decisions:
        for action in d.actions:
            if isinstance(action, Route) and (not seen or seen[-1] != action.canary_weight):
                seen.append(action.canary_weight)
    return seen


def under_way(service: Service) -> tuple[World, JudgeStateRecord]:
    """A judged rollout four decisions in, and its metric's evidence so far."""
    world = judged(service)
    world.target_revision = "rev-2"
    for _ in range(4):
        world.advance(world.step().wake_after or 10)
    return world, present(first_metric(world).state)


def go_json(value: Any) -> Any:
    """What the API server returns for what was written: Go writes integral floats as
    integers (20.0 -> 20)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: go_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [go_json(v) for v in value]
    return value


def restarted(canary: Canary) -> Canary:
    """The Canary as a new controller process reads it back from the API server."""
    return Canary.model_validate(json.loads(json.dumps(go_json(canary.to_api()))))


class TestRegression:
    def test_a_regression_is_rolled_back_at_once_naming_metric_estimate_and_sequence(
            self) -> None:
        world = roll_out(judged(Service(ratio=5.0)))
        status = world.canary.status
        assert status.phase == Phase.FAILED
        assert status.failed_checks == 0  # not a threshold failure: no checks were counted
        assert world.reasons() == ["NewRevision", "WeightIncreased", "RolledBack"]
        promoted = condition(world, "Promoted")
        assert (promoted.status, promoted.reason) == ("False", "RegressionDetected")
        for message in (promoted.message, events(world, "RolledBack")[0]):
            assert "the judge found a regression in error-rate" in message
            assert "ratio " in message and " in [" in message
            assert "regression evidence" in message
        assert world.weight == 0 and world.target_replicas == 0
        metric = first_metric(world)
        evidence = present(metric.evidence)
        assert judge_of(world).outcome == "regression" and evidence.outcome == "regression"
        assert evidence.log_regression >= evidence.log_regression_bound
        # The confidence sequence excludes "as good as the primary".
        assert evidence.ratio_lower > 1

    def test_the_rollback_comes_from_the_judge_while_thresholds_would_still_tolerate_it(
            self) -> None:
        world = judged(Service(ratio=5.0))
        world.canary.spec.analysis.metrics = None
        world.canary.spec.analysis.threshold = 5
        roll_out(world)
        assert world.canary.status.phase == Phase.FAILED
        assert condition(world, "Promoted").reason == "RegressionDetected"

    def test_a_latency_regression_is_found_from_the_histogram_at_the_bound(self) -> None:
        world = roll_out(judged(Service(ratio=5.0, error_rate=0.0), metrics=[
            {"name": "latency", "type": "latency", "bound": 500}]))
        assert world.canary.status.phase == Phase.FAILED
        assert "regression in latency" in condition(world, "Promoted").message
        assert first_metric(world).bound == 500

    def test_any_regressed_metric_rolls_back_and_alpha_is_split_between_metrics(self) -> None:
        world = roll_out(judged(Service(ratio=5.0, error_rate=0.0), alpha=0.1, metrics=[
            {"name": "error-rate", "type": "errorRate"},
            {"name": "latency", "type": "latency", "bound": 500}]))
        judge = judge_of(world)
        assert judge.alpha == pytest.approx(0.05)
        assert all(present(m.evidence).log_regression_bound == pytest.approx(math.log(20)) for m in
                   judge.metrics)
        assert "regression in latency" in condition(world, "Promoted").message


class TestNoRegression:
    def test_a_healthy_canary_without_promote_early_walks_the_whole_schedule(self) -> None:
        world = roll_out(judged(Service()))
        assert world.canary.status.phase == Phase.SUCCEEDED
        assert weights(world) == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0]
        judge = judge_of(world)
        assert judge.outcome == "no_regression_proven"
        assert judge.steps == 10
        # Heard once, when it was first proven.
        assert len(events(world, "NoRegressionProven")) == 1

    def test_promote_early_bakes_at_max_weight_then_skips_the_remaining_steps(self) -> None:
        world = roll_out(judged(Service(), promoteEarly=True))
        status = world.canary.status
        assert status.phase == Phase.SUCCEEDED and status.last_promoted_spec == "rev-2"
        seen = weights(world)
        # Straight from the weight of the proof to maxWeight, then back to the primary.
        assert seen[-2:] == [50, 0] and seen[-3] < 45
        assert len(events(world, "Baking")) == 1
        promoting = events(world, "Promoting")[0]
        assert "The judge proved no regression after a bake of" in promoting
        assert "no-regression evidence at maxWeight" in promoting
        bake = present(judge_of(world).bake)
        assert f"skipping the remaining {bake.steps_left - 1} steps" in promoting
        assert first_metric(world).proven_at_step is not None
        assert judge_of(world).steps < 10

    def test_a_proof_at_the_last_step_is_an_ordinary_promotion(self) -> None:
        world = judged(Service(rps=2000), promoteEarly=True)
        world.canary.spec.analysis.step_weight = 50
        roll_out(world)
        assert first_metric(world).proven_at_step == 1
        assert events(world, "Promoting") == [
            "Analysis passed at weight 50; copying web's template to web-primary"]

    def test_promote_early_waits_for_every_metric(self) -> None:
        # Latency events are rare: that metric takes much longer to prove.
        service = Service(slow_rate=0.002)
        world = roll_out(judged(service, promoteEarly=True, metrics=[
            {"name": "error-rate", "type": "errorRate"},
            {"name": "latency", "type": "latency", "bound": 500}]))
        judge = judge_of(world)
        by_name = {m.name: m for m in judge.metrics}
        # The error rate was proven early, the latency never: the whole schedule ran.
        assert by_name["error-rate"].proven_at_step is not None
        assert by_name["error-rate"].proven_at_step < 10
        assert by_name["latency"].proven_at_step is None
        assert judge.outcome == "continue" and judge.steps == 10
        assert weights(world)[-2] == 50
        assert not events(world, "NoRegressionProven")

    def test_promote_early_still_needs_the_threshold_metrics_to_pass(self) -> None:
        world = judged(Service(), promoteEarly=True)
        world.canary.spec.analysis.metrics = Canary.model_validate({
            "metadata": {}, "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                                     "service": {"port": 80}, "analysis": {
                "interval": "10s", "threshold": 2, "stepWeight": 5, "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 99}}]}}}
        ).spec.analysis.metrics
        world.success_rate = 90.0
        roll_out(world)
        assert world.canary.status.phase == Phase.FAILED
        assert condition(world, "Promoted").reason == "AnalysisFailed"
        assert not events(world, "Promoting")

    def test_promote_early_respects_a_closed_confirm_promotion_gate(self) -> None:
        world = judged(Service(), promoteEarly=True)
        world.canary.spec.analysis.webhooks = Canary.model_validate({
            "metadata": {}, "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                                     "service": {"port": 80}, "analysis": {
                "interval": "10s", "threshold": 2, "stepWeight": 5, "webhooks": [
                    {"name": "gate", "type": "confirm-promotion",
                     "url": "http://gate"}]}}}).spec.analysis.webhooks
        world.hooks = {"confirm-promotion": False}
        world.target_revision = "rev-2"
        for _ in range(30):
            world.advance(world.step().wake_after or 10)
        assert world.canary.status.phase == Phase.PROGRESSING
        assert judge_of(world).outcome == "no_regression_proven"
        # The schedule went on meanwhile; each decision reported the closed gate once.
        assert max(weights(world)) == 50
        for decision in world.decisions:
            assert [e.reason for e in decision.events].count("WaitingForApproval") <= 1
        world.hooks = {"confirm-promotion": True}
        world.run_until_quiet()
        assert world.phase() == Phase.SUCCEEDED

    def test_blue_green_mirroring_promotes_early_switching_all_traffic(self) -> None:
        world = judged(Service(), promoteEarly=True)
        analysis = world.canary.spec.analysis
        analysis.step_weight = analysis.max_weight = None
        analysis.iterations, analysis.mirror = 30, True
        roll_out(world)
        assert world.canary.status.phase == Phase.SUCCEEDED
        iterations = world.canary.status.iterations or 0
        assert iterations < 30
        assert any(isinstance(a, Route) and a.canary_weight == 100
                   for d in world.decisions for a in d.actions)
        assert f"skipping the remaining {30 - iterations} steps" in events(world, "Promoting")[0]


class TestEvidenceInStatus:
    def test_counts_start_from_the_readings_taken_before_traffic_moves(self) -> None:
        service = Service(history=600)
        world = judged(service)
        world.target_revision = "rev-2"
        world.step()  # NewRevision
        world.step()  # reads the counters, then the first weight
        judge = judge_of(world)
        metric = judge.metrics[0]
        assert world.weight == 5
        assert metric.reading is not None and metric.baseline == metric.reading
        assert metric.reading.primary_requests == 200 * 600
        assert metric.state is None and judge.steps == 0
        world.advance(10)
        world.step()
        metric = first_metric(world)
        # Only what happened in the step counts, not the primary's history.
        evidence = present(metric.evidence)
        assert evidence.primary_requests + evidence.canary_requests == 2000
        assert evidence.steps == 1

    def test_the_evidence_is_the_replay_of_the_step_counts(self) -> None:
        world = roll_out(judged(Service(seed=7)))
        readings = [d.status.judge.metrics[0].reading for d in world.decisions
                    if d.status.judge is not None and d.status.judge.metrics[0].reading]
        cumulative = [Counts(r.canary_requests, r.canary_events, r.primary_requests,
                             r.primary_events) for r in readings]
        distinct = [c for i, c in enumerate(cumulative) if i == 0 or c != cumulative[i - 1]]
        steps = [Counts.between(a, b) for a, b in pairwise(distinct)]
        metric = first_metric(world)
        state = JudgeState.from_dict(present(metric.state).to_api())
        assert state == replay(steps, state.design)

    def test_a_new_revision_resets_the_judge(self) -> None:
        world = judged(Service())
        world.target_revision = "rev-2"
        for _ in range(4):
            world.advance(world.step().wake_after or 10)
        assert judge_of(world).steps >= 1
        world.target_revision = "rev-3"
        world.step()
        assert world.canary.status.judge is None
        world.step()
        judge = judge_of(world)
        assert judge.revision == "rev-3" and judge.steps == 0

    def test_absolute_effects_become_a_ratio_from_the_primary_before_the_analysis(
            self) -> None:
        world = judged(Service(history=300), metrics=[
            {"name": "error-rate", "type": "errorRate", "minimumEffect": "+2pp"}])
        world.target_revision = "rev-2"
        world.step()
        world.step()
        metric = first_metric(world)
        base = present(metric.baseline)
        assert base.primary_requests == 60000
        assert metric.minimum_effect == ratio_for_absolute_effect(
            0.02, base.primary_requests, base.primary_events)
        # About 1 + 0.02 / 0.05, a little less (an upper bound on the base rate).
        assert 1.3 < metric.minimum_effect < 1.4
        roll_out(world)
        assert first_metric(world).minimum_effect == metric.minimum_effect

    def test_a_quantile_bound_is_placed_from_the_primary_before_the_analysis(self) -> None:
        world = judged(Service(slow_rate=0.3), metrics=[
            {"name": "latency", "type": "latency", "quantile": 0.9}])
        world.target_revision = "rev-2"
        world.step()
        world.step()
        # 35% at or below 100 ms, 70% at or below 500: the 0.9 quantile is past 500.
        assert first_metric(world).bound == 500

    def test_changing_a_metric_restarts_its_evidence(self) -> None:
        world = judged(Service())
        world.target_revision = "rev-2"
        for _ in range(5):
            world.advance(world.step().wake_after or 10)
        before = first_metric(world)
        assert before.evidence is not None
        present(world.canary.spec.analysis.judge).metrics[0].minimum_effect = "2x"
        world.advance(world.step().wake_after or 10)
        world.step()
        after = first_metric(world)
        assert after.spec == "errorRate minimumEffect=2x" and after.minimum_effect == 2.0
        assert after.state is None or after.state.steps < present(before.state).steps

    def test_removing_the_judge_clears_its_status(self) -> None:
        world = judged(Service())
        world.target_revision = "rev-2"
        for _ in range(4):
            world.advance(world.step().wake_after or 10)
        world.canary.spec.analysis.judge = None
        world.advance(world.step().wake_after or 10)
        world.step()
        assert world.canary.status.judge is None
        assert condition(world, "TrafficSufficient") is None


class TestNoEvidence:
    def test_a_counter_reset_is_reported_and_skipped_never_counted(self) -> None:
        service = Service()
        world, _ = under_way(service)
        steps_before = present(first_metric(world).state).steps
        service.reset_canary()
        world.advance(world.step().wake_after or 10)
        metric = first_metric(world)
        assert metric.skipped_steps == 1
        assert "went down" in present(metric.message) and "start again" in present(metric.message)
        assert present(metric.state).steps == steps_before
        skipped = events(world, "JudgeSkippedStep")
        assert len(skipped) == 1 and "error-rate" in skipped[0] and "went down" in skipped[0]
        world.step()
        assert present(first_metric(world).state).steps == steps_before + 1

    def test_missing_data_is_no_evidence_not_a_pass(self) -> None:
        service = Service(failing={"error-rate"})
        world = roll_out(judged(service, promoteEarly=True))
        metric = first_metric(world)
        # Held at the first weight, then rolled back at the progress deadline (60 s).
        assert world.canary.status.phase == Phase.FAILED
        assert max(weights(world)) == 5
        assert metric.state is None and metric.proven_at_step is None
        assert "no data: query failed" in present(metric.message)
        assert judge_of(world).outcome == "continue"
        promoted = condition(world, "Promoted")
        assert promoted.reason == "ProgressDeadlineExceeded"
        assert "the judge has had no usable reading for 60s" in promoted.message

    def test_data_returning_after_a_gap_starts_a_new_difference(self) -> None:
        service = Service()
        world, _ = under_way(service)
        service.failing.add("error-rate")
        world.advance(world.step().wake_after or 10)
        service.failing.clear()
        before = present(first_metric(world).state).steps
        world.advance(world.step().wake_after or 10)
        assert present(first_metric(world).state).steps == before  # new origin
        world.step()
        assert present(first_metric(world).state).steps == before + 1


class TestPower:
    def test_too_little_traffic_is_a_condition_and_one_event(self) -> None:
        world = roll_out(judged(Service(rps=2, error_rate=0.01)))
        traffic = condition(world, "TrafficSufficient")
        assert (traffic.status, traffic.reason) == ("False", "InsufficientTraffic")
        assert "a regression of x1.5 would take" in traffic.message
        assert "the analysis lasts 100s" in traffic.message
        assert len(events(world, "InsufficientTraffic")) == 1
        power = present(first_metric(world).power)
        assert not power.detectable and present(power.seconds_to_detect) > 100
        assert power.analysis_seconds == 100

    def test_enough_traffic_says_when_the_effect_would_be_found(self) -> None:
        world = roll_out(judged(Service(rps=500, error_rate=0.05)))
        traffic = condition(world, "TrafficSufficient")
        assert (traffic.status, traffic.reason) == ("True", "SufficientTraffic")
        assert "would be detected in about" in traffic.message
        assert not events(world, "InsufficientTraffic")

    def test_before_the_rollout_the_primary_s_traffic_says_what_the_schedule_can_detect(
            self) -> None:
        world = judged(Service(rps=2, error_rate=0.01))
        world.target_revision = "rev-2"
        world.step()
        world.step()
        assert judge_of(world).steps == 0  # the reading as traffic starts to move
        traffic = condition(world, "TrafficSufficient")
        assert (traffic.status, traffic.reason) == ("False", "InsufficientTraffic")
        assert "at 2 req/s before the rollout" in traffic.message
        assert "the analysis lasts 100s" in traffic.message
        power = present(first_metric(world).power)
        assert power.measured == "BeforeRollout" and power.canary_rps == 0
        assert power.primary_rps == pytest.approx(2, rel=0.01)
        assert len(events(world, "InsufficientTraffic")) == 1
        roll_out(world)
        assert present(first_metric(world).power).measured == "LastStep"
        assert len(events(world, "InsufficientTraffic")) == 1, "the same warning is not repeated"

    def test_enough_traffic_before_the_rollout_agrees_with_the_steps(self) -> None:
        world = judged(Service(rps=500, error_rate=0.05))
        world.target_revision = "rev-2"
        world.step()
        world.step()
        before = present(first_metric(world).power)
        assert before.measured == "BeforeRollout" and before.detectable
        roll_out(world)
        after = present(first_metric(world).power)
        assert after.measured == "LastStep"
        assert after.seconds_to_detect == pytest.approx(before.seconds_to_detect, rel=0.3)

    def test_without_a_known_canary_share_the_check_waits_for_the_canary_s_traffic(
            self) -> None:
        world = judged(Service())
        analysis = world.canary.spec.analysis
        analysis.step_weight = analysis.max_weight = None
        analysis.iterations, analysis.mirror = 10, True
        world.target_revision = "rev-2"
        world.step()
        world.step()
        assert condition(world, "TrafficSufficient") is None
        roll_out(world)
        assert present(first_metric(world).power).measured == "LastStep"

    def test_a_primary_without_events_cannot_measure_a_ratio(self) -> None:
        world = roll_out(judged(Service(error_rate=0.0)))
        traffic = condition(world, "TrafficSufficient")
        assert traffic.status == "False" and "shows no events" in traffic.message


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), ratio=st.sampled_from([1.0, 1.3, 2.0, 5.0]),
       restart_at=st.integers(0, 14), promote_early=st.booleans(),
       rps=st.sampled_from([5.0, 50.0, 300.0]))
def test_a_restart_between_any_two_steps_gives_the_same_decisions(
        seed: int, ratio: float, restart_at: int, promote_early: bool, rps: float) -> None:
    def run(restart: int | None) -> list[Any]:
        world = judged(Service(rps=rps, ratio=ratio, seed=seed), promoteEarly=promote_early)
        world.target_revision = "rev-2"
        for i in range(40):
            if i == restart:
                world.canary = restarted(world.canary)
            decision = world.step()
            if decision.wake_after is None:
                break
            world.advance(decision.wake_after)
        return [(d.status.to_api(), d.actions, d.events) for d in world.decisions]

    assert run(restart_at) == run(None)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), history=st.integers(0, 100), failing_from=st.integers(0, 12))
def test_a_step_without_data_never_moves_the_evidence(seed: int, history: int,
                                                      failing_from: int) -> None:
    service = Service(seed=seed, history=history)
    world = judged(service, promoteEarly=True)
    world.target_revision = "rev-2"
    for i in range(30):
        if i == failing_from:
            service.failing.add("error-rate")
        before = world.canary.status.judge
        decision = world.step()
        after = decision.status.judge
        if i >= failing_from and before is not None and after is not None:
            assert after.metrics[0].state == before.metrics[0].state
            assert after.outcome == before.outcome or after.outcome == "continue"
        if decision.wake_after is None:
            break
        world.advance(decision.wake_after)


def rolled_back_after(world: World) -> float:
    """Seconds from the release to the rollback."""
    return (world.now - START).total_seconds()


class TestChecksBetweenSteps:
    def test_a_regression_is_rolled_back_between_steps(self) -> None:
        world = roll_out(judged(Service(rps=40, error_rate=0.02, ratio=4.0), checkInterval="2s"))
        assert world.canary.status.phase == Phase.FAILED
        message = condition(world, "Promoted").message
        assert "the judge found a regression in error-rate between steps" in message
        # Several readings per 10-second step.
        assert judge_of(world).steps > len(weights(world)) + 1

    def test_checks_between_steps_roll_back_sooner(self) -> None:
        per_step, checked = [], []
        for seed in range(20):
            service: dict[str, Any] = {"rps": 40, "error_rate": 0.02, "ratio": 4.0, "seed": seed}
            slow = judged(Service(**service))
            start = slow.now
            roll_out(slow)
            fast = judged(Service(**service), checkInterval="2s")
            roll_out(fast)
            assert slow.canary.status.phase == fast.canary.status.phase == Phase.FAILED
            per_step.append((slow.now - start).total_seconds())
            checked.append((fast.now - start).total_seconds())
        # Strictly sooner; by less since half of alpha goes to evidence of a change
        # (a regression from the start pays log 2 nats on the cumulative evidence).
        assert statistics.median(checked) < statistics.median(per_step), (per_step, checked)

    def test_the_weights_and_a_proof_still_move_only_at_the_end_of_a_step(self) -> None:
        world = judged(Service(rps=500, error_rate=0.05), checkInterval="2s",
                       promoteEarly=True)
        world.target_revision = "rev-2"
        changes: list[tuple[float, int]] = []
        readings: set[float] = set()
        weight = 0
        for _ in range(200):
            decision = world.step()
            if decision.status.judge and decision.status.judge.last_reading_at:
                readings.add(parse_time(decision.status.judge.last_reading_at).timestamp())
            if (decision.status.canary_weight or 0) != weight:
                weight = decision.status.canary_weight or 0
                changes.append((world.now.timestamp(), weight))
            if decision.wake_after is None:
                break
            world.advance(decision.wake_after)
        assert world.canary.status.phase == Phase.SUCCEEDED
        assert "no regression" in events(world, "Promoting")[0]
        started = changes[0][0]
        assert [round(t - started) % 10 for t, _ in changes] == [0] * len(changes), changes
        # ... while the judge read its counters every 2 seconds in between.
        assert len(readings) > 2 * len(changes)

    def test_a_check_without_canary_requests_waits_quietly(self) -> None:
        # 0.5 req/s to the canary at 5%: most 1-second checks see no canary request.
        world = judged(Service(rps=10, error_rate=0.05), checkInterval="1s")
        world.target_revision = "rev-2"
        readings: set[str] = set()
        for _ in range(400):
            decision = world.step()
            if decision.status.judge and decision.status.judge.last_reading_at:
                readings.add(decision.status.judge.last_reading_at)
            if decision.wake_after is None:
                break
            world.advance(decision.wake_after)
        judge = judge_of(world)
        assert len(readings) > judge.steps + 5  # checks that took nothing in
        assert not events(world, "JudgeSkippedStep")
        assert condition(world, "TrafficSufficient").reason != "NoRequests"
        assert judge.metrics[0].skipped_steps == 0

    def test_a_reset_between_steps_is_reported_once_at_the_step_s_end(self) -> None:
        service = Service(rps=100, error_rate=0.05)
        world = judged(service, checkInterval="2s")
        world.target_revision = "rev-2"
        for _ in range(8):  # into the analysis
            decision = world.step()
            world.advance(decision.wake_after or 0)
        judged_steps = judge_of(world).steps
        assert judged_steps >= 1
        service.reset_canary()
        before = len(events(world, "JudgeSkippedStep"))
        for _ in range(6):
            decision = world.step()
            world.advance(decision.wake_after or 0)
        assert len(events(world, "JudgeSkippedStep")) - before == 1
        assert first_metric(world).skipped_steps == 1


@pytest.mark.parametrize(("check_interval", "rollouts", "most"), [
    (None, 300, 24),
    # Five checks per step cost five times the time: fewer rollouts, the same margin
    # (about 2.3 standard deviations above alpha's expectation).
    ("2s", 100, 10),
])
def test_false_rollbacks_of_healthy_canaries_stay_within_alpha(
        check_interval: str | None, rollouts: int, most: int) -> None:
    """Through the whole decision (readings, differences, status round trips), healthy
    canaries are rarely rolled back: at most alpha = 5% in expectation (1-2% measured by
    the benchmark), here with a margin for the number of rollouts; also when the judge is
    checked five times per step."""
    rolled_back = 0
    for seed in range(rollouts):
        world = judged(Service(rps=20, error_rate=0.05, seed=seed, history=0),
                       checkInterval=check_interval)
        roll_out(world, limit=400)
        rolled_back += world.canary.status.phase == Phase.FAILED
    assert rolled_back <= most, rolled_back


def test_scaled_down_canary_and_primary_routes_on_rollback() -> None:
    world = roll_out(judged(Service(ratio=10.0)))
    last = world.decisions[-1]
    assert Route(0) in last.actions and ScaleCanary(0) in last.actions


@pytest.mark.parametrize(("buckets", "quantile", "bound"), [
    (((10.0, 50), (100.0, 99), (float("inf"), 100)), 0.99, 100.0),
    (((10.0, 50), (100.0, 99), (float("inf"), 100)), 0.5, 10.0),
    (((10.0, 50), (100.0, 90), (float("inf"), 100)), 0.99, 100.0),  # beyond every bound
    ((), 0.99, None),
    (((10.0, 0), (float("inf"), 0)), 0.99, None),
])
def test_quantile_bounds(buckets: tuple[tuple[float, int], ...], quantile: float,
                         bound: float | None) -> None:
    assert quantile_bound(buckets, quantile) == bound


def reading(canary: tuple[int, int], primary: tuple[int, int], at: float,
            since: float | None = None, lost: tuple[int, int] = (0, 0),
            present: tuple[bool, bool] = (True, True)) -> JudgeReading:
    """An error-rate reading as the controller takes it, checked against ``since``."""
    return JudgeReading(
        "error-rate",
        Counters(*canary, present=present[0], lost=None if since is None else lost[0]),
        Counters(*primary, present=present[1], lost=None if since is None else lost[1]),
        at=at, since=since)


class TestSeriesThatComeAndGo:
    """The judge differences sums over many series (pods, response codes, sources): a
    step during which any of them vanished, went down or came back is no evidence."""

    JUDGE = CanaryJudge.model_validate({"metrics": [{"name": "error-rate",
                                                     "type": "errorRate"}]})
    PLAN = PowerPlan(shares=(0.1,), interval=10)
    T0 = START.timestamp()

    def advance(self, status: JudgeStatus, *readings: JudgeReading, seconds: float,
                canary_traffic: bool = True) -> tuple[JudgeStatus, Verdict]:
        return advance(self.JUDGE, status, readings,
                               START + timedelta(seconds=seconds), self.PLAN, canary_traffic)

    def started(self) -> JudgeStatus:
        status, _ = self.advance(begin(self.JUDGE, "rev"),
                                 reading((1000, 0), (9000, 90), self.T0), seconds=0,
                                 canary_traffic=False)
        assert status.metrics[0].reading_at == "2026-01-01T00:00:00.000Z"
        return status

    def test_a_canary_pod_that_vanishes_never_makes_a_biased_step(self) -> None:
        # Pod A (1000 requests, no errors) goes away while pod B serves 1100 requests with
        # 11 errors: the sums say 100 requests and 11 errors, an 11% error rate that
        # never happened. Prometheus reports the vanished series: no evidence.
        status, verdict = self.advance(
            self.started(), reading((1100, 11), (9900, 99), self.T0 + 10, since=self.T0,
                                    lost=(1, 0)), seconds=10)
        metric = status.metrics[0]
        assert metric.state is None and metric.evidence is None and status.steps == 0
        assert metric.skipped_steps == 1
        assert "1 of the canary's series vanished, went down or came back" in present(
            metric.message)
        assert [n.message for n in verdict.skipped] == [metric.message]
        # The next difference starts from the reading after the loss, and counts exactly.
        assert present(metric.reading).canary_requests == 1100
        status, _ = self.advance(status, reading((1200, 12), (10800, 108), self.T0 + 20,
                                                 since=self.T0 + 10), seconds=20)
        evidence = present(status.metrics[0].evidence)
        assert (evidence.canary_requests, evidence.canary_events) == (100, 1)
        assert (evidence.primary_requests, evidence.primary_events) == (900, 9)

    def test_a_primary_series_that_comes_back_after_a_missed_scrape_is_no_evidence(
            self) -> None:
        status, _ = self.advance(self.started(), reading(
            (1100, 1), (12000, 90), self.T0 + 10, since=self.T0, lost=(0, 3)), seconds=10)
        assert status.metrics[0].state is None
        assert "3 of the primary's series" in present(status.metrics[0].message)

    def test_a_series_marked_stale_at_the_last_reading_afterwards_is_no_evidence(
            self) -> None:
        # The last reading counted a pod whose failed scrape Prometheus learned of only
        # later: at that instant it now shows 400 fewer canary requests, and the pod is
        # gone now too, so no series "vanished" between the two views.
        status, verdict = self.advance(self.started(), JudgeReading(
            "error-rate", Counters(1100, 11, lost=0, previous=600),
            Counters(9900, 99, lost=0, previous=9000), at=self.T0 + 10, since=self.T0),
            seconds=10)
        metric = status.metrics[0]
        assert metric.state is None and verdict.skipped
        assert present(metric.message).startswith(
            "Prometheus now shows 600 of the canary's requests at the last reading, which "
            "counted 1000")

    def test_a_reading_not_checked_against_the_last_one_is_no_evidence(self) -> None:
        for unchecked in (reading((1100, 1), (9900, 90), self.T0 + 10),
                          reading((1100, 1), (9900, 90), self.T0 + 10, since=self.T0 - 10)):
            status, verdict = self.advance(self.started(), unchecked, seconds=10)
            assert status.metrics[0].state is None and verdict.skipped
            assert "the series" in present(status.metrics[0].message)

    def test_an_empty_answer_is_no_data_never_a_zero_to_count_from(self) -> None:
        status, verdict = self.advance(self.started(), reading(
            (0, 0), (0, 0), self.T0 + 10, since=self.T0, present=(False, False)), seconds=10)
        metric = status.metrics[0]
        assert metric.reading is None and metric.reading_at is None
        assert present(metric.message).startswith("no data: Prometheus has no series")
        assert [n.metric for n in verdict.no_requests] == ["error-rate"]
        # Data is back: a new origin, not a step counting everything since zero.
        status, _ = self.advance(status, reading((1300, 13), (11700, 117), self.T0 + 20,
                                                 since=self.T0 + 10), seconds=20)
        metric = status.metrics[0]
        assert metric.state is None and present(metric.reading).canary_requests == 1300

    def test_a_version_that_had_series_and_has_none_now_is_no_data(self) -> None:
        status, _ = self.advance(self.started(), reading(
            (0, 0), (9900, 99), self.T0 + 10, since=self.T0, present=(False, True)),
            seconds=10)
        metric = status.metrics[0]
        assert metric.state is None and metric.reading is None
        assert metric.message == ("no data: the canary had counted 1000 requests at the "
                                  "last reading and Prometheus has no series of it now")

    def test_a_series_lost_in_the_world_is_reported_as_a_skipped_step(self) -> None:
        service = Service()
        world, before = under_way(service)
        # A canary pod goes away with 30 of its requests; the others' growth hides it.
        service.lose_pod("canary", requests=30, errors=1)
        world.advance(world.step().wake_after or 10)
        metric = first_metric(world)
        assert metric.state == before and metric.skipped_steps == 1
        [skipped] = events(world, "JudgeSkippedStep")
        assert "1 of the canary's series vanished" in skipped
        world.step()
        assert present(first_metric(world).state).steps == before.steps + 1

    def test_a_scrape_failure_learned_late_is_reported_as_a_skipped_step(self) -> None:
        service = Service()
        world, before = under_way(service)
        service.stale_afterwards("primary", 100)
        service.primary[0] -= 100  # and that pod is gone
        world.advance(world.step().wake_after or 10)
        metric = first_metric(world)
        assert metric.state == before and metric.skipped_steps == 1
        assert "a series it counted was marked stale there afterwards" in present(metric.message)

    def test_after_a_gap_in_prometheus_no_step_counts_the_history(self) -> None:
        service = Service(history=600)
        world, _ = under_way(service)
        service.empty.add("error-rate")
        world.advance(world.step().wake_after or 10)
        service.empty.clear()
        for _ in range(2):
            world.advance(world.step().wake_after or 10)
        metric = first_metric(world)
        started = parse_time(present(world.canary.status.analysis_started_at))
        served = service.rps * (world.now - started).total_seconds()
        assert present(metric.state).steps >= 3 and metric.skipped_steps == 1
        # Only requests served during the analysis were counted (not 600 s of history).
        evidence = present(metric.evidence)
        assert evidence.canary_requests + evidence.primary_requests <= served


class TestNoRequests:
    def test_a_canary_whose_requests_never_reach_prometheus_is_never_judged(self) -> None:
        """Steps without canary requests are no evidence: the weight holds at its first
        step, and the rollout is rolled back at the progress deadline (60 s here)."""
        world = roll_out(judged(Service(unreported={"canary"}), promoteEarly=True))
        judge = judge_of(world)
        metric = judge.metrics[0]
        assert judge.steps == 0 and metric.state is None and metric.proven_at_step is None
        assert metric.skipped_steps == 6
        assert "no requests were seen on the canary" in present(metric.message)
        skipped = events(world, "JudgeSkippedStep")
        assert len(skipped) == 6 and all("no requests were seen" in m for m in skipped)
        traffic = condition(world, "TrafficSufficient")
        assert (traffic.status, traffic.reason) == ("False", "NoRequests")
        assert "error-rate: no requests were seen on the canary" in traffic.message
        assert len(events(world, "WeightHeld")) == 1
        assert world.canary.status.phase == Phase.FAILED and weights(world) == [0, 5, 0]
        promoted = condition(world, "Promoted")
        assert promoted.reason == "ProgressDeadlineExceeded"
        assert "no request reached the canary for 60s" in promoted.message

    def test_no_telemetry_at_all_says_no_requests_were_seen(self) -> None:
        world = roll_out(judged(Service(empty={"error-rate"})))
        traffic = condition(world, "TrafficSufficient")
        assert (traffic.status, traffic.reason) == ("False", "NoRequests")
        assert "no requests were seen" in traffic.message
        assert judge_of(world).steps == 0

    def test_the_reading_before_traffic_moves_needs_no_canary_requests(self) -> None:
        world = judged(Service())
        world.target_revision = "rev-2"
        world.step()
        world.step()
        metric = first_metric(world)
        assert metric.reading is not None and metric.skipped_steps == 0
        assert condition(world, "TrafficSufficient").reason == "SufficientTraffic"


class TestSyntheticLoad:
    def hooks(self, cmd: str, type_: str = "rollout",
              url: str = "http://canary-loadtester.test/") -> Any:
        return Canary.model_validate({
            "metadata": {}, "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                                     "service": {"port": 80}, "analysis": {
                "interval": "10s", "threshold": 2, "stepWeight": 5, "webhooks": [
                    {"name": "load", "type": type_, "url": url,
                     "metadata": {"cmd": cmd}}]}}}).spec.analysis.webhooks

    def world(self, cmd: str, type_: str = "rollout", **judge: Any) -> World:
        world = judged(Service(), **judge)
        world.canary.spec.analysis.webhooks = self.hooks(cmd, type_)
        world.hooks = {type_: True}
        world.target_revision = "rev-2"
        for _ in range(5):
            world.advance(world.step().wake_after or 10)
        return world

    @pytest.mark.parametrize("type_", ["rollout", "pre-rollout"])
    def test_load_sent_to_the_canary_service_is_a_warning_once_per_revision(
            self, type_: str) -> None:
        world = self.world("hey -z 1m -q 10 -c 2 http://web-canary.shop:80/", type_)
        [warning] = events(world, "JudgedLoadNotExcluded")
        assert f"The {type_} hook load sends load straight to web-canary" in warning
        assert "probably canary-loadtester" in warning and "excludeSources" in warning
        world.target_revision = "rev-3"
        for _ in range(3):
            world.advance(world.step().wake_after or 10)
        assert len(events(world, "JudgedLoadNotExcluded")) == 2  # once more, for rev-3

    def test_no_warning_when_the_load_tester_is_excluded(self) -> None:
        world = self.world("hey -z 1m http://web-canary.shop/",
                           excludeSources=["canary-loadtester"])
        assert events(world, "NewRevision") and not events(world, "JudgedLoadNotExcluded")

    @pytest.mark.parametrize("cmd", ["hey -z 1m http://web.shop/",
                                     "hey -z 1m http://other-web-canary.shop/",
                                     "hey -z 1m http://web-canary-v2.shop/"])
    def test_no_warning_for_load_through_the_apex_or_another_service(self, cmd: str) -> None:
        assert not events(self.world(cmd), "JudgedLoadNotExcluded")

    def test_no_warning_without_a_judge(self) -> None:
        world = judged(Service())
        world.canary.spec.analysis.judge = None
        world.canary.spec.analysis.webhooks = self.hooks("hey http://web-canary.shop/")
        world.hooks = {"rollout": True}
        world.target_revision = "rev-2"
        world.step()
        assert events(world, "NewRevision") and not events(world, "JudgedLoadNotExcluded")
