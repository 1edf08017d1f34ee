"""The power check counts events: sparse errors that make the minimum effect undetectable
in the scheduled time are warned about, with the numbers behind the warning."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core.judge import Design, Traffic, power_check, scheduled_power_check
from canary.core.judge.simulation import Scenario, run_judge
from canary.core.judge.sparse import poisson_tail

DESIGN = Design(minimum_effect=1.5)


class TestPoissonTail:
    @settings(max_examples=200, deadline=None)
    @given(st.floats(0.01, 300), st.integers(0, 400))
    def test_matches_the_sum_of_the_probabilities(self, mean: float, k: int) -> None:
        """Summed term by term from zero, the complement of the tail."""
        below = math.fsum(math.exp(i * math.log(mean) - mean - math.lgamma(i + 1))
                          for i in range(k))
        assert math.isclose(poisson_tail(mean, k), 1 - below, abs_tol=1e-9)

    @given(st.floats(0.01, 1000), st.integers(0, 2000))
    def test_falls_as_more_events_are_needed(self, mean: float, k: int) -> None:
        assert poisson_tail(mean, k + 1) <= poisson_tail(mean, k) + 1e-12


class TestSparseErrors:
    def test_a_short_expected_time_is_not_enough_when_events_are_few(self) -> None:
        """Wald's expected time (1834 s) is inside a 2000 s analysis, but the effect
        would be caught only about half the time: that is not detectable."""
        check = power_check(DESIGN, Traffic(5, 100, 0.005), 2000, 0.05, 0.2)
        assert check.seconds_to_detect < check.remaining_seconds
        assert check.chance is not None and 0.4 < check.chance.probability < 0.65
        assert not check.detectable
        assert check.warning() is not None

    def test_the_warning_gives_the_numbers(self) -> None:
        """At 2 req/s to the canary and 0.2% errors, ten minutes hold a few events."""
        check = power_check(DESIGN, Traffic(2, 40, 0.002), 600, 0.05, 0.2)
        warning = check.warning()
        assert warning is not None
        assert "the canary would have about 3.6 events in the 600s analysis" in warning
        assert "the judge needs about 9" in warning
        assert "with probability 2%" in warning

    def test_ample_traffic_is_detectable(self) -> None:
        check = power_check(DESIGN, Traffic(50, 1000, 0.005), 600, 0.05, 0.2)
        assert check.detectable and check.warning() is None
        assert check.chance is not None and check.chance.probability > 0.9

    def test_a_schedule_counts_the_events_of_each_step(self) -> None:
        """A growing canary share: the chance lies between the first step's traffic
        throughout and the last step's."""
        steps = [(Traffic(rps, 100 - rps, 0.01), 60.0) for rps in (5, 10, 20, 40)]
        chance = scheduled_power_check(DESIGN, steps, 0.05, 0.2).chance
        first = scheduled_power_check(DESIGN, [steps[0]] * 4, 0.05, 0.2).chance
        last = scheduled_power_check(DESIGN, [steps[-1]] * 4, 0.05, 0.2).chance
        assert chance is not None and first is not None and last is not None
        assert first.probability < chance.probability < last.probability

    def test_no_events_no_chance(self) -> None:
        chance = power_check(DESIGN, Traffic(10, 90, 0.0), 600, 0.05, 0.2).chance
        assert chance is not None and chance.probability == 0 and chance.needed is None


class TestAgainstSimulation:
    """The chance is of a crossing by the end: a little below the simulated rate of
    detection at any step, and close to it."""

    def test_sparse_errors(self) -> None:
        scenario = Scenario(2, 40, 0.002, ratio=3.0, step_seconds=10, duration_seconds=600)
        chance = power_check(DESIGN, Traffic(2, 40, 0.002), 600, 0.05, 0.2, effect=3.0).chance
        assert chance is not None
        rng = random.Random(7)
        runs = 600
        found = sum(run_judge(scenario.simulate(rng), 10, DESIGN).regression_at is not None
                    for _ in range(runs))
        simulated = found / runs
        assert chance.probability - 0.05 <= simulated <= chance.probability + 0.2
