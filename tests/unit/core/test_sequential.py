"""The judge's statistics: counts in, a verdict with its evidence out, nothing else kept.

The guarantees measured over simulated rollouts are in test_sequential_simulations.py.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from canary.core.judge import (
    Counts,
    Design,
    JudgeState,
    Outcome,
    Traffic,
    as_count,
    assess,
    confidence_sequence,
    detection_seconds,
    latency_counts,
    no_regression_log_statistic,
    power_check,
    proof_seconds,
    rate_ratio,
    rate_upper_bound,
    ratio_for_absolute_effect,
    regression_log_statistic,
    replay,
    slow_requests,
    split_alpha,
    update,
    verdict,
    wald_asn,
)


@st.composite
def counts(draw: st.DrawFn, max_requests: int = 2000) -> Counts:
    canary = draw(st.integers(0, max_requests))
    primary = draw(st.integers(0, max_requests))
    return Counts(canary, draw(st.integers(0, canary)), primary, draw(st.integers(0, primary)))


histories = st.lists(counts(), max_size=12)
designs = st.builds(Design, minimum_effect=st.floats(1.05, 3.0),
                    maximum_effect=st.floats(4.0, 50.0), points=st.integers(2, 16),
                    proof_points=st.integers(1, 8), between_points=st.integers(0, 4))


def roundtrip(state: JudgeState) -> JudgeState:
    """Through JSON, as the Canary's status stores it."""
    return JudgeState.from_dict(json.loads(json.dumps(state.to_dict(), allow_nan=False)))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


class TestCounts:
    """Counts are whole, non-negative, and events never exceed requests."""

    @given(st.integers(0, 3), st.integers(-1000, -1))
    @settings(max_examples=30)
    def test_a_negative_count_is_refused(self, which: int, negative: int) -> None:
        values = [10, 0, 10, 0]
        values[which] = negative
        with pytest.raises(ValueError, match="negative"):
            Counts(*values)

    @pytest.mark.parametrize("values", [(5, 6, 10, 0), (10, 0, 5, 6)])
    def test_more_events_than_requests_is_refused(self, values: tuple[int, ...]) -> None:
        with pytest.raises(ValueError, match="exceed"):
            Counts(*values)

    @pytest.mark.parametrize("value", [1.5, True, "3", None])
    def test_a_count_must_be_an_int(self, value: object) -> None:
        with pytest.raises(ValueError, match="int"):
            Counts(value, 0, 1, 0)  # type: ignore[arg-type]

    def test_prometheus_floats_are_accepted_when_whole(self) -> None:
        assert as_count(1234.0) == 1234
        for bad in (12.5, math.nan, math.inf, -1.0):
            with pytest.raises(ValueError):
                as_count(bad)

    @given(counts(), counts())
    @settings(max_examples=50)
    def test_between_two_readings_is_their_difference(self, earlier: Counts,
                                                      step: Counts) -> None:
        assume(earlier.canary_events + step.canary_events
               <= earlier.canary_requests + step.canary_requests)
        assert Counts.between(earlier, earlier + step) == step

    def test_a_counter_reset_is_refused_not_guessed(self) -> None:
        with pytest.raises(ValueError, match=r"primary_requests went down.*reset"):
            Counts.between(Counts(10, 1, 500, 3), Counts(12, 1, 20, 3))


class TestLatencyCounts:
    """Latency becomes the same comparison: requests slower than a bucket bound."""

    BUCKETS = [(0.1, 800), (0.25, 950), (0.5, 990), (1.0, 998), (math.inf, 1000)]

    def test_slow_requests_are_those_above_the_bound(self) -> None:
        assert slow_requests(self.BUCKETS, 0.5) == (1000, 10)
        assert slow_requests([(le, float(c)) for le, c in self.BUCKETS], 0.1) == (1000, 200)

    def test_both_versions_make_one_step(self) -> None:
        canary = [(0.5, 90), (math.inf, 100)]
        assert latency_counts(canary, self.BUCKETS, 0.5) == Counts(100, 10, 1000, 10)

    @pytest.mark.parametrize(("buckets", "bound", "named"), [
        ([(0.5, 10)], 0.5, "Inf"),
        ([(0.5, 10), (math.inf, 12)], 0.3, "not a finite bucket bound"),
        ([(0.5, 10), (math.inf, 12)], math.inf, "not a finite bucket bound"),
        ([(0.5, 10), (1.0, 8), (math.inf, 12)], 0.5, "cumulative"),
        ([(0.5, 10), (0.5, 10), (math.inf, 12)], 0.5, "twice"),
        ([(0.5, 1.5), (math.inf, 12)], 0.5, "whole"),
    ])
    def test_malformed_histograms_are_refused(self, buckets: list[tuple[float, float]],
                                              bound: float, named: str) -> None:
        with pytest.raises(ValueError, match=named):
            slow_requests(buckets, bound)


class TestDesign:
    """The grid of ratios: fixed by a few numbers, so the state need not carry it."""

    @given(designs)
    @settings(max_examples=50)
    def test_the_grid_holds_one_the_effects_and_nothing_twice(self, design: Design) -> None:
        grid = design.grid
        assert list(grid.ratios) == sorted(set(grid.ratios))
        assert len(grid.ratios) == design.size
        assert grid.ratios[grid.proof.stop - 1] == 1.0
        assert grid.ratios[grid.effect] == design.minimum_effect
        assert grid.ratios[grid.regression.stop - 1] == design.maximum_effect
        assert all(grid.ratios[j] <= 1 for j in grid.proof)
        assert all(grid.ratios[k] >= design.minimum_effect for k in grid.regression)

    @pytest.mark.parametrize("kwargs", [
        {"minimum_effect": 1.0}, {"minimum_effect": 0.5}, {"minimum_effect": math.nan},
        {"minimum_effect": 30.0}, {"maximum_effect": math.inf}, {"points": 1},
        {"proof_points": 0}, {"between_points": -1}, {"points": 60},
    ])
    def test_impossible_designs_are_refused(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError):
            Design(**kwargs)  # type: ignore[arg-type]


class TestIncrementalState:
    """The state is the running sums: folding steps, resuming from the status and
    replaying the history all agree exactly."""

    @given(histories, st.integers(0, 12), designs)
    @settings(max_examples=60)
    def test_resuming_from_the_status_is_replaying_the_history(
            self, history: list[Counts], cut: int, design: Design) -> None:
        cut = min(cut, len(history))
        state = roundtrip(replay(history[:cut], design))
        for step in history[cut:]:
            state = roundtrip(update(state, step))
        assert state == replay(history, design)
        assert state.steps == len(history)
        assert state.totals == sum(history, Counts(0, 0, 0, 0))

    @given(st.lists(counts().filter(lambda c: c.canary_requests and c.primary_requests),
                    min_size=1, max_size=6))
    @settings(max_examples=40)
    def test_the_running_sums_are_binomial_likelihood_ratios(
            self, history: list[Counts]) -> None:
        """Given each step's total, the canary's events are Binomial(m, p(r)) with
        p(r) = rq / (rq + 1 - q); the state holds log P_g / P_1 summed over steps."""
        state = replay(history)
        for g, a in zip(state.design.grid.ratios, state.log_lr, strict=True):
            expected = 0.0
            for step in history:
                q = step.canary_requests / step.requests
                p = g * q / (g * q + 1 - q)
                x, m = step.canary_events, step.events
                expected += x * math.log(p / q) + (m - x) * math.log((1 - p) / (1 - q))
            assert math.isclose(a, expected, rel_tol=1e-9, abs_tol=1e-7)
        regression = [state.log_lr[k] for k in state.design.grid.regression]
        if abs(max(regression)) < 700:  # where exp() neither overflows nor underflows
            direct = math.log(sum(math.exp(v) for v in regression) / len(regression))
            assert math.isclose(regression_log_statistic(state), direct, rel_tol=1e-9,
                                abs_tol=1e-9)

    @given(st.integers(1, 500), st.integers(1, 500),
           st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1,
                    max_size=8))
    @settings(max_examples=60)
    def test_steps_with_the_same_split_add_up_to_one_step(
            self, canary: int, primary: int, events: list[tuple[int, int]]) -> None:
        """With the same traffic split, the likelihood of several steps is that of their
        sum: the running sums are the whole story."""
        steps = [Counts(canary, min(x, canary), primary, min(y, primary)) for x, y in events]
        folded = replay(steps)
        combined = update(JudgeState.start(), sum(steps, Counts(0, 0, 0, 0)))
        assert folded.totals == combined.totals
        assert all(close(a, b) for a, b in zip(folded.log_lr, combined.log_lr, strict=True))

    @given(histories)
    @settings(max_examples=40)
    def test_the_order_of_steps_does_not_matter(self, history: list[Counts]) -> None:
        forward, backward = replay(history), replay(reversed(history))
        assert forward.totals == backward.totals
        assert all(close(a, b) for a, b in zip(forward.log_lr, backward.log_lr, strict=True))

    @given(histories, st.integers(0, 5000), st.integers(0, 5000))
    @settings(max_examples=40)
    def test_a_step_without_events_changes_only_the_totals(
            self, history: list[Counts], canary: int, primary: int) -> None:
        before = replay(history)
        after = update(before, Counts(canary, 0, primary, 0))
        assert after.log_lr == before.log_lr
        assert after.totals.canary_requests == before.totals.canary_requests + canary

    def test_the_state_is_small_and_plain(self) -> None:
        data = replay([Counts(100, 2, 2000, 10)] * 3).to_dict()
        assert set(data) == {"minimumEffect", "maximumEffect", "points", "proofPoints",
                             "betweenPoints", "steps", "canaryRequests", "canaryEvents",
                             "primaryRequests", "primaryEvents", "logLikelihoodRatios",
                             "recentLogLikelihoodRatios"}
        assert len(data["logLikelihoodRatios"]) == 20  # type: ignore[arg-type]
        assert len(data["recentLogLikelihoodRatios"]) == 12  # type: ignore[arg-type]
        assert all(isinstance(v, int | float | list) for v in data.values())

    @pytest.mark.parametrize(("change", "named"), [
        ({"logLikelihoodRatios": [0.0] * 3}, "grid"),
        ({"logLikelihoodRatios": [math.nan] * 20}, "finite"),
        ({"steps": -1}, "steps"),
        ({"steps": True}, "int"),
        ({"canaryEvents": 5}, "exceed"),
        ({"minimumEffect": "1.5"}, "number"),
        ({"extra": 1}, "keys"),
    ])
    def test_a_damaged_status_is_refused(self, change: dict[str, object], named: str) -> None:
        data: dict[str, object] = {**JudgeState.start().to_dict(), **change}
        with pytest.raises(ValueError, match=named):
            JudgeState.from_dict(data)


class TestMonotonicity:
    """More canary events never make a regression less likely; more primary events never
    make it more likely; and the reverse for the proof of no regression."""

    @given(histories.filter(bool), st.integers(0, 11), st.booleans())
    @settings(max_examples=80)
    def test_one_more_event_moves_the_evidence_the_right_way(
            self, history: list[Counts], index: int, canary_side: bool) -> None:
        i = index % len(history)
        step = history[i]
        if canary_side:
            assume(step.canary_events < step.canary_requests)
            worse = Counts(step.canary_requests, step.canary_events + 1,
                           step.primary_requests, step.primary_events)
        else:
            assume(step.primary_events < step.primary_requests)
            worse = Counts(step.canary_requests, step.canary_events,
                           step.primary_requests, step.primary_events + 1)
        before = replay(history)
        after = replay([*history[:i], worse, *history[i + 1:]])
        slack = 1e-9 * (1 + abs(regression_log_statistic(before)))
        grew = regression_log_statistic(after) - regression_log_statistic(before)
        proof_grew = no_regression_log_statistic(after) - no_regression_log_statistic(before)
        if canary_side:
            assert grew >= -slack and proof_grew <= slack
            if verdict(before) is Outcome.REGRESSION:
                assert verdict(after) is Outcome.REGRESSION
        else:
            assert grew <= slack and proof_grew >= -slack
            if verdict(after) is Outcome.REGRESSION:
                assert verdict(before) is Outcome.REGRESSION


class TestVerdicts:
    """The verdict and the evidence recorded with it."""

    def test_a_canary_failing_four_times_as_often_is_a_regression(self) -> None:
        state = replay([Counts(500, 10, 10000, 50)] * 3)
        result = assess(state, alpha=0.05)
        assert result.outcome is Outcome.REGRESSION
        assert result.log_regression >= result.log_regression_bound == pytest.approx(
            math.log(20))
        assert result.ratio == pytest.approx(4.0)
        assert 1 < result.ratio_lower <= 4.0 <= result.ratio_upper
        assert "regression: canary 30/1500, primary 150/30000" in result.describe()

    def test_a_healthy_canary_with_plenty_of_traffic_is_proven(self) -> None:
        state = replay([Counts(5000, 25, 100000, 500)] * 6)
        result = assess(state, alpha=0.05, beta=0.2)
        assert result.outcome is Outcome.NO_REGRESSION_PROVEN
        assert result.ratio_lower < 1.0 < result.ratio_upper < 1.5

    def test_without_traffic_nothing_is_known(self) -> None:
        result = assess(replay([Counts(0, 0, 0, 0)] * 3))
        assert result.outcome is Outcome.CONTINUE
        assert result.ratio is None
        assert (result.ratio_lower, result.ratio_upper) == (0.0, math.inf)
        assert result.log_regression == result.log_no_regression == 0.0

    def test_the_evidence_is_json_for_the_status(self) -> None:
        data = assess(replay([Counts(50, 0, 1000, 5)])).to_dict()
        text = json.dumps(data, allow_nan=False)
        assert json.loads(text)["outcome"] == "continue"
        assert data["ratioUpper"] is None or isinstance(data["ratioUpper"], float)

    @pytest.mark.parametrize(("alpha", "beta"), [(0.0, 0.2), (1.0, 0.2), (0.05, 0.0),
                                                  (0.05, 1.5), (math.nan, 0.2)])
    def test_error_budgets_must_be_probabilities(self, alpha: float, beta: float) -> None:
        with pytest.raises(ValueError):
            assess(JudgeState.start(), alpha, beta)

    def test_alpha_is_split_across_judged_metrics(self) -> None:
        assert split_alpha(0.05, 2) == 0.025
        assert split_alpha(0.05, 1) == 0.05
        for bad in (0, -1, True):
            with pytest.raises(ValueError):
                split_alpha(0.05, bad)

    def test_the_point_estimate_is_the_ratio_of_rates(self) -> None:
        assert rate_ratio(Counts(100, 3, 1000, 10)) == pytest.approx(3.0)
        assert rate_ratio(Counts(100, 3, 1000, 0)) is None
        assert rate_ratio(Counts(0, 0, 1000, 10)) is None

    @given(histories, st.floats(0.01, 0.5))
    @settings(max_examples=40)
    def test_the_confidence_sequence_is_an_interval_on_the_grid(
            self, history: list[Counts], alpha: float) -> None:
        state = replay(history)
        lower, upper = confidence_sequence(state, alpha)
        ratios = state.design.grid.ratios
        assert lower < upper
        assert lower == 0.0 or lower in ratios
        assert upper == math.inf or upper in ratios

    def test_the_confidence_sequence_narrows_around_the_truth(self) -> None:
        few = confidence_sequence(replay([Counts(100, 1, 2000, 20)]), 0.05)
        many = confidence_sequence(replay([Counts(10000, 50, 200000, 1000)] * 5), 0.05)
        assert few[0] < many[0] < 1.0 < many[1] < few[1]


class TestPower:
    """Whether the traffic can decide in time, and Wald's yardstick."""

    def test_wald_asn_for_the_reference_scenario(self) -> None:
        """0.5% against 2%, alpha 0.05, beta 0.2: about 148 requests (30 s at 5 req/s)
        under the alternative, 164 under the null."""
        assert wald_asn(0.005, 0.02, 0.05, 0.2) == pytest.approx(148.5, abs=0.1)
        assert wald_asn(0.005, 0.02, 0.05, 0.2, under="null") == pytest.approx(164.0, abs=0.1)
        with pytest.raises(ValueError):
            wald_asn(0.01, 0.01, 0.05, 0.2)

    def test_more_traffic_or_a_larger_effect_is_found_sooner(self) -> None:
        design = Design()
        low, high = Traffic(1, 20, 0.005), Traffic(50, 1000, 0.005)
        assert detection_seconds(design, high, 0.05) < detection_seconds(design, low, 0.05)
        assert (detection_seconds(design, low, 0.05, effect=4.0)
                < detection_seconds(design, low, 0.05, effect=1.5))
        assert proof_seconds(design, high, 0.2) < proof_seconds(design, low, 0.2)
        assert detection_seconds(design, Traffic(0, 100, 0.005), 0.05) == math.inf
        assert detection_seconds(design, Traffic(5, 100, 0.0), 0.05) == math.inf

    def test_too_little_traffic_is_a_warning_for_the_status(self) -> None:
        low = power_check(Design(), Traffic(5, 100, 0.005), remaining_seconds=600,
                          alpha=0.05, beta=0.2)
        assert not low.detectable
        assert "x1.5 would take about" in (low.warning() or "")
        high = power_check(Design(), Traffic(50, 1000, 0.005), remaining_seconds=600,
                           alpha=0.05, beta=0.2)
        assert high.detectable and high.provable and high.warning() is None
        with pytest.raises(ValueError):
            Traffic(-1, 100, 0.005)
        with pytest.raises(ValueError):
            Traffic(1, 100, 2.0)

    @given(st.integers(1, 10**6), st.data())
    @settings(max_examples=50)
    def test_an_absolute_effect_becomes_a_safe_ratio(self, requests: int,
                                                     data: st.DataObject) -> None:
        """The conversion uses an upper bound on the primary's rate: never a larger
        ratio than the observed rate would give."""
        events = data.draw(st.integers(0, requests))
        bound = rate_upper_bound(requests, events, 0.95)
        assert events / requests <= bound <= 1
        ratio = ratio_for_absolute_effect(0.005, requests, events)
        assert ratio > 1
        if events:
            assert ratio <= 1 + 0.005 / (events / requests)

    def test_absolute_effects_need_a_measured_baseline(self) -> None:
        for args in ((0.005, 0, 0), (0.0, 100, 1), (-0.1, 100, 1), (0.005, 100, 101)):
            with pytest.raises(ValueError):
                ratio_for_absolute_effect(*args)
