"""Evidence of a change during the analysis: a canary that degrades after healthy minutes
is found sooner, and the false-rollback bound still holds for a healthy canary."""

from __future__ import annotations

import math
import random
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core.judge import Counts, Design, JudgeState, regression_evidence, replay, update
from canary.core.judge.change import start_weight_spent
from canary.core.judge.simulation import binomial, run_judge
from tests.unit.core.judge_steps import binomial_pmf, steps


class TestBound:
    @settings(max_examples=150, deadline=None)
    @given(st.lists(steps, max_size=12), st.integers(1, 25), st.integers(1, 500),
           st.integers(1, 5000))
    def test_the_statistic_is_a_supermartingale_for_a_healthy_canary(
            self, history: list[Counts], events: int, canary: int, primary: int) -> None:
        """Given the past and the next step's requests and events, the mean of the next
        value of ``exp(evidence)`` when the canary's events are Binomial(m, q) (``r = 1``)
        is at most its value now: Ville's inequality then bounds false rollbacks."""
        before = replay(history)
        q = canary / (canary + primary)
        mean = math.fsum(
            binomial_pmf(events, q, x) * math.exp(regression_evidence(
                update(before, Counts(canary, min(x, canary), primary,
                                      min(events - x, primary)))))
            for x in range(events + 1) if x <= canary and events - x <= primary)
        assert mean <= math.exp(regression_evidence(before)) * (1 + 1e-9)

    def test_starts_with_no_evidence(self) -> None:
        assert regression_evidence(JudgeState.start()) == 0.0

    @given(st.integers(0, 10**9), st.integers(0, 10**9))
    def test_the_start_weights_sum_to_at_most_one(self, a: int, b: int) -> None:
        low, high = sorted((a, b))
        assert 0 <= start_weight_spent(low) <= start_weight_spent(high) < 1

    def test_healthy_canaries_are_rolled_back_at_most_alpha_of_the_time(self) -> None:
        """5 and 50 req/s to the canary, 20 times that to the primary, 0.5% errors,
        10 minutes checked every 10 s: at most 5% (with Monte Carlo margin)."""
        rng = random.Random(3)
        for rps in (5, 50):
            runs, rolled = 400, 0
            for _ in range(runs):
                history = [Counts(rps * 10, binomial(rng, rps * 10, 0.005), rps * 200,
                                  binomial(rng, rps * 200, 0.005)) for _ in range(60)]
                rolled += run_judge(history, 10).regression_at is not None
            assert rolled / runs <= 0.07, rps


def late_degradation(rng: random.Random, rps: int) -> list[Counts]:
    """Healthy (0.5%) for 3 minutes, then ramping to 5% over 5 minutes, then 5%."""
    history = []
    for index in range(60):
        elapsed = index * 10
        ratio = 1 + 9 * min(max(elapsed - 180, 0) / 300, 1)
        history.append(Counts(rps * 10, binomial(rng, rps * 10, 0.005 * ratio), rps * 200,
                              binomial(rng, rps * 200, 0.005)))
    return history


class TestLateDegradation:
    def test_is_rolled_back_sooner_than_by_the_cumulative_evidence_alone(self) -> None:
        rng = random.Random(5)
        cumulative, both = [], []
        for _ in range(150):
            history = late_degradation(rng, 5)
            cumulative.append(run_judge(history, 10, Design(change_share=0.0)).regression_at
                              or math.inf)
            both.append(run_judge(history, 10).regression_at or math.inf)
        assert statistics.median(both) < statistics.median(cumulative)


class TestState:
    def test_a_state_without_recent_evidence_is_read_back(self) -> None:
        """Records written before the change statistic existed continue without it."""
        data = replay([Counts(100, 2, 2000, 10)] * 3).to_dict()
        del data["recentLogLikelihoodRatios"]
        state = JudgeState.from_dict(data)
        assert state.recent == ()
        assert len(update(state, Counts(100, 2, 2000, 10)).recent) == 12

    def test_without_a_share_the_judge_is_the_cumulative_one(self) -> None:
        state = replay([Counts(100, 5, 2000, 10)] * 3, Design(change_share=0.0))
        assert state.recent == ()
