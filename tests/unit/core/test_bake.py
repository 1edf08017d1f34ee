"""Early promotion by way of a bake at the final weight: the no-regression test asked
again on the bake's evidence alone, so that a canary that degrades after healthy minutes
is rolled back rather than promoted on them; a healthy canary is still promoted early."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core.judge import (
    Counts,
    no_regression_log_statistic,
    no_regression_log_statistic_since,
    replay,
    update,
)
from canary.core.judge.simulation import binomial, run_judge_with_bake
from canary.core.timefmt import parse_time
from canary.models.canary import Phase
from tests.unit.core.judge_steps import binomial_pmf, steps
from tests.unit.core.scenario import Service, World, first_metric, judge_of, judged, present


class TestTheBakesStatistic:
    @settings(max_examples=100, deadline=None)
    @given(st.lists(steps, max_size=8), st.lists(steps, max_size=8))
    def test_is_the_no_regression_test_of_the_later_steps_alone(
            self, before: list[Counts], during: list[Counts]) -> None:
        start = replay(before)
        state = start
        for step in during:
            state = update(state, step)
        assert no_regression_log_statistic_since(state, start.log_lr) == pytest.approx(
            no_regression_log_statistic(replay(during)), abs=1e-6)

    @settings(max_examples=150, deadline=None)
    @given(st.lists(steps, max_size=8), st.lists(steps, max_size=4), st.integers(1, 25),
           st.integers(1, 500), st.integers(1, 5000))
    def test_is_a_supermartingale_for_a_canary_worse_by_the_minimum_effect(
            self, before: list[Counts], during: list[Counts], events: int, canary: int,
            primary: int) -> None:
        """Given the past, when the canary's events of the next step are Binomial(m,
        p(delta)), the mean of the next ``exp`` of the bake's statistic is at most its value
        now: a bake proves no regression of such a canary at most beta of the time."""
        start = replay(before).log_lr
        now = replay(before + during)
        delta = now.design.minimum_effect
        q = canary / (canary + primary)
        p = delta * q / (delta * q + 1 - q)
        mean = math.fsum(
            binomial_pmf(events, p, x) * math.exp(no_regression_log_statistic_since(
                update(now, Counts(canary, x, primary, events - x)), start))
            for x in range(events + 1) if x <= canary and events - x <= primary)
        assert mean <= math.exp(no_regression_log_statistic_since(now, start)) * (1 + 1e-9)

    def test_refuses_a_start_of_another_grid(self) -> None:
        with pytest.raises(ValueError, match="the grid has"):
            no_regression_log_statistic_since(replay([]), [0.0])


def rollout(rng: random.Random, rps: int, ramp_from: float | None) -> list[Counts]:
    """10 minutes in 10-second steps, 20 times the canary's traffic to the primary, 0.5%
    errors; from ``ramp_from`` the canary's ramp to 10 times that over 5 minutes."""
    history = []
    for index in range(60):
        elapsed = index * 10
        ratio = 1.0 if ramp_from is None else 1 + 9 * min(max(elapsed - ramp_from, 0) / 300, 1)
        history.append(Counts(rps * 10, binomial(rng, rps * 10, 0.005 * ratio), rps * 200,
                              binomial(rng, rps * 200, 0.005)))
    return history


class TestInSimulation:
    """The controller's default bake is half the schedule: 300 s of these 10 minutes."""

    @pytest.mark.parametrize("rps", [5, 50])
    def test_a_canary_that_degrades_after_three_healthy_minutes_is_not_promoted(
            self, rps: int) -> None:
        rng = random.Random(rps)
        runs = [run_judge_with_bake(rollout(rng, rps, 180), 10, 300) for _ in range(150)]
        promoted = sum(r.promoted_at is not None for r in runs)
        # Without the bake, about a quarter (5 req/s) and most (50 req/s) are promoted.
        assert promoted <= 3, promoted
        assert all(r.regression_at is not None for r in runs if r.promoted_at is None)

    def test_a_healthy_canary_at_50_requests_per_second_is_still_promoted_early(
            self) -> None:
        rng = random.Random(7)
        runs = [run_judge_with_bake(rollout(rng, 50, None), 10, 300) for _ in range(100)]
        times = [math.inf if r.promoted_at is None else r.promoted_at for r in runs]
        assert statistics.median(times) < 450


def roll_out(world: World, limit: int = 80) -> World:
    world.target_revision = "rev-2"
    world.run_until_quiet(limit)
    return world


def reasons(world: World) -> list[str]:
    return [e.reason for d in world.decisions for e in d.events]


def event_at(world: World, reason: str) -> float:
    """Seconds from the first decision to the first event of ``reason``."""
    start = world.decisions[0].status.step_started_at
    for decision in world.decisions:
        if any(e.reason == reason for e in decision.events):
            assert start is not None and decision.status.step_started_at is not None
            return (parse_time(decision.status.step_started_at)
                    - parse_time(start)).total_seconds()
    raise AssertionError(f"no {reason} event")


def bake_world(service: Service, **judge: Any) -> World:
    """10-second steps of 5% up to 50%, promoteEarly on."""
    return judged(service, promoteEarly=True, **judge)


class TestInTheController:
    def test_a_canary_that_degrades_during_the_bake_is_rolled_back(self) -> None:
        service = Service()
        world = bake_world(service)
        world.target_revision = "rev-2"
        for _ in range(60):
            decision = world.step()
            if "Baking" in [e.reason for e in decision.events]:
                service.ratio = 4.0  # the canary degrades once it has been proven
            if decision.wake_after is None:
                break
            world.advance(decision.wake_after)
        assert world.canary.status.phase == Phase.FAILED
        assert "Baking" in reasons(world) and "Promoting" not in reasons(world)
        promoted = next(c for c in world.canary.status.conditions or [] if c.type == "Promoted")
        assert promoted.reason == "RegressionDetected"

    def test_the_bake_lasts_at_least_bake_time_and_its_own_proof(self) -> None:
        world = roll_out(bake_world(Service(), bakeTime="40s"))
        assert world.canary.status.phase == Phase.SUCCEEDED
        assert event_at(world, "Promoting") - event_at(world, "Baking") >= 40
        metric = first_metric(world)
        judge = judge_of(world)
        assert present(metric.bake_log_no_regression) >= math.log(1 / judge.beta)
        assert present(judge.bake).seconds == 40

    def test_turning_promote_early_off_during_the_bake_lets_the_schedule_finish(
            self) -> None:
        world = bake_world(Service(), bakeTime="20s")
        world.target_revision = "rev-2"
        for _ in range(80):
            decision = world.step()
            judge = world.canary.spec.analysis.judge
            if "Baking" in [e.reason for e in decision.events] and judge is not None:
                judge.promote_early = False
            if decision.wake_after is None:
                break
            world.advance(decision.wake_after)
        assert world.canary.status.phase == Phase.SUCCEEDED
        assert "Baking" in reasons(world)
        assert judge_of(world).steps == 10  # the whole schedule, at maxWeight from the proof

    def test_by_default_the_bake_lasts_half_the_schedule(self) -> None:
        world = roll_out(bake_world(Service()))
        # 10 steps of 10 s.
        assert present(judge_of(world).bake).seconds == 50

    def test_a_bake_longer_than_the_skipped_steps_ends_in_the_ordinary_promotion(
            self) -> None:
        world = roll_out(bake_world(Service(), bakeTime="10m"))
        assert world.canary.status.phase == Phase.SUCCEEDED
        promoting = [e.message for d in world.decisions for e in d.events
                     if e.reason == "Promoting"]
        assert promoting[0].startswith("Analysis passed at weight 50, the bake having lasted "
                                       "the skipped steps")
        # The schedule's 10 steps, no more.
        assert judge_of(world).steps == 10
