"""The judge's guarantees, measured over simulated rollouts.

Each rollout is 10 minutes of 10-second steps with the primary at 20 times the canary's
traffic and a base error rate of 0.5%, checked after every step. The sizes keep this
file to a few seconds; ``benchmarks/decisions/simulate.py`` runs the same scenarios at
full size and compares policies.

A measured rate is held to its bound with a Monte Carlo margin computed, not guessed: the
test fails when, were the true rate exactly at the bound, a count as high as the one
observed would have a probability below 1/1000.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from canary.core.judge import (
    Design,
    JudgeState,
    Outcome,
    Traffic,
    confidence_sequence,
    detection_seconds,
    update,
    wald_asn,
)
from canary.core.judge.simulation import (
    Scenario,
    binomial,
    binomial_tail,
    run_judge,
    run_likelihood_ratio,
    run_sprt,
    run_threshold,
)

ALPHA, BETA = 0.05, 0.2
BASE = 0.005
SURPRISE = 1e-3


def assert_within(count: int, runs: int, bound: float, what: str) -> None:
    tail = binomial_tail(runs, bound, count)
    assert tail > SURPRISE, (f"{what}: {count}/{runs} = {count / runs:.3f}; were the rate "
                             f"{bound}, P(>= {count}) = {tail:.2g}")


def median_seconds(times: list[float | None]) -> float:
    return statistics.median(math.inf if t is None else t for t in times)


class TestSimulator:
    """The simulation itself is right, or nothing measured with it is."""

    def test_binomial_draws_have_the_right_mean_and_variance(self) -> None:
        rng = random.Random(1)
        for n, p in ((300, 0.005), (20000, 0.005), (50, 0.9)):
            draws = [binomial(rng, n, p) for _ in range(4000)]
            mean, variance = n * p, n * p * (1 - p)
            assert abs(statistics.fmean(draws) - mean) < 4 * math.sqrt(variance / 4000)
            assert statistics.variance(draws) / variance == pytest.approx(1.0, abs=0.15)

    def test_binomial_draws_follow_the_exact_probabilities(self) -> None:
        rng, runs = random.Random(11), 20000
        draws = [binomial(rng, 300, BASE) for _ in range(runs)]
        for k in range(5):
            exact = binomial_tail(300, BASE, k) - binomial_tail(300, BASE, k + 1)
            seen = draws.count(k) / runs
            assert abs(seen - exact) < 4 * math.sqrt(exact * (1 - exact) / runs)

    def test_the_threshold_policy_fails_windows_as_often_as_the_binomial_says(self) -> None:
        """At 5 req/s a one-minute window fails ``success >= 99%`` when it holds four or
        more errors among 300 requests; with no failed window tolerated the rollout is
        rolled back unless all ten pass."""
        window_fails = binomial_tail(300, BASE, 4)
        expected = 1 - (1 - window_fails) ** 10
        rng, runs = random.Random(2), 1000
        scenario = Scenario(5, 100, BASE)
        rolled_back = sum(run_threshold(scenario.simulate(rng), 10) is not None
                          for _ in range(runs))
        assert abs(rolled_back / runs - expected) < 4 * math.sqrt(expected * (1 - expected) / runs)


class TestFalseRollbacks:
    """Healthy canaries are rolled back at most ``alpha`` of the time, at every traffic
    level and however often the judge is asked."""

    def test_at_one_five_and_fifty_requests_per_second(self) -> None:
        rng = random.Random(3)
        runs = 1500
        for canary_rps in (1, 5, 50):
            scenario = Scenario(canary_rps, 20 * canary_rps, BASE)
            rolled_back = sum(run_judge(scenario.simulate(rng), 10, alpha=ALPHA).regression_at
                              is not None for _ in range(runs))
            assert_within(rolled_back, runs, ALPHA, f"false rollbacks at {canary_rps} req/s")

    def test_with_a_baseline_that_jumps_from_step_to_step(self) -> None:
        """The baseline cancels out of the test: a noisy primary cannot frame the canary."""
        rng = random.Random(4)
        runs = 800
        scenario = Scenario(5, 100, BASE, baseline_spread=1.0)
        rolled_back = sum(run_judge(scenario.simulate(rng), 10, alpha=ALPHA).regression_at
                          is not None for _ in range(runs))
        assert_within(rolled_back, runs, ALPHA, "false rollbacks with a noisy baseline")

    def test_when_checked_every_second(self) -> None:
        rng = random.Random(5)
        runs = 300
        scenario = Scenario(5, 100, BASE, step_seconds=1, duration_seconds=300)
        rolled_back = sum(run_judge(scenario.simulate(rng), 1, alpha=ALPHA).regression_at
                          is not None for _ in range(runs))
        assert_within(rolled_back, runs, ALPHA, "false rollbacks with 1-second steps")


class TestWrongPromotions:
    """A canary worse by the minimum effect is proven healthy at most ``beta`` of the time."""

    def test_at_the_minimum_effect(self) -> None:
        rng = random.Random(6)
        runs = 500
        for canary_rps in (5, 50):
            scenario = Scenario(canary_rps, 20 * canary_rps, BASE, ratio=1.5)
            proven = sum(run_judge(scenario.simulate(rng), 10, alpha=ALPHA, beta=BETA).proven_at
                         is not None for _ in range(runs))
            assert_within(proven, runs, BETA, f"wrong proofs at {canary_rps} req/s")


class TestConfidenceSequence:
    """The reported interval holds the true ratio at every step at once, with
    probability at least ``1 - alpha``, even when the ratio is not on the grid."""

    def test_coverage_at_every_step(self) -> None:
        rng = random.Random(7)
        runs = 120
        for ratio in (1.2, 0.8):
            scenario = Scenario(50, 1000, BASE, ratio=ratio, duration_seconds=300)
            missed = 0
            for _ in range(runs):
                state = JudgeState.start()
                for step in scenario.simulate(rng):
                    state = update(state, step)
                    lower, upper = confidence_sequence(state, ALPHA)
                    if not lower <= ratio <= upper:
                        missed += 1
                        break
            assert_within(missed, runs, ALPHA, f"confidence sequence misses at r={ratio}")


class TestDetection:
    """How fast real regressions are found, against the best that can be done."""

    def test_a_fourfold_error_rate_at_five_requests_per_second(self) -> None:
        """Wald's SPRT, told the baseline and the effect and allowed to stop for "no
        regression" at its lower bound, needs 30 s on average (148 requests). No test
        that may be checked forever can reach that at 10-second steps: the one told the
        true effect takes about 50 s (median). The judge, told neither, stays within
        1.5 times that test and 2.5 times Wald's figure, and the power check's estimate
        is close to what it does."""
        rng = random.Random(8)
        runs = 600
        scenario = Scenario(5, 100, BASE, ratio=4.0)
        judged, told, sprt = [], [], []
        for _ in range(runs):
            steps = scenario.simulate(rng)
            judged.append(run_judge(steps, 10, alpha=ALPHA).regression_at)
            told.append(run_likelihood_ratio(steps, 10, 4.0, alpha=ALPHA))
            stopped = run_sprt(steps, 10, BASE, 4 * BASE, ALPHA, BETA)
            sprt.append(stopped[1] if stopped and stopped[0] is Outcome.REGRESSION else None)
        asn_seconds = wald_asn(BASE, 4 * BASE, ALPHA, BETA) / 5
        assert asn_seconds == pytest.approx(29.7, abs=0.05)
        assert sum(t is None for t in judged) <= runs * 0.01
        assert median_seconds(judged) <= 1.5 * median_seconds(told)
        assert median_seconds(judged) <= 2.5 * asn_seconds
        assert median_seconds(sprt) <= median_seconds(told) <= median_seconds(judged)
        estimate = detection_seconds(Design(), Traffic(5, 100, BASE), ALPHA, effect=4.0)
        assert 0.67 <= estimate / median_seconds(judged) <= 1.5

    def test_the_minimum_effect_at_high_traffic(self) -> None:
        rng = random.Random(9)
        runs = 200
        scenario = Scenario(50, 1000, BASE, ratio=1.5)
        found = [run_judge(scenario.simulate(rng), 10, alpha=ALPHA).regression_at
                 for _ in range(runs)]
        assert sum(t is not None for t in found) >= 0.8 * runs


class TestEarlyPromotion:
    """Healthy canaries with enough traffic are proven well before the schedule ends."""

    def test_at_fifty_requests_per_second(self) -> None:
        rng = random.Random(10)
        runs = 200
        scenario = Scenario(50, 1000, BASE)
        proven = [run_judge(scenario.simulate(rng), 10, Design(), ALPHA, BETA).proven_at
                  for _ in range(runs)]
        assert sum(t is not None for t in proven) >= 0.95 * runs
        assert median_seconds(proven) <= 300


def test_outcomes_are_the_three_named_in_the_status() -> None:
    assert [o.value for o in Outcome] == ["regression", "no_regression_proven", "continue"]
