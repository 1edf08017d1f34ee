"""Simulated rollouts: the judge and the policies it is measured against.

Pure and seeded (a ``random.Random`` comes in), so the unit tests, the benchmark in
``benchmarks/decisions`` and future backtests share one definition of a scenario and of
each policy. Requests arrive at constant rates; each request is an event (an error, or a
slow response) independently, with the primary's probability ``base_rate`` and the
canary's ``ratio`` times that. A noisy baseline multiplies both by the same random
factor in each step, as a bad dependency or a traffic spike would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from canary.core.judge.counts import Counts
from canary.core.judge.sequential import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    Design,
    JudgeState,
    Outcome,
    no_regression_log_statistic_since,
    update,
    verdict,
)

#: Largest mean drawn by one inversion in :func:`binomial` (larger means are split).
_CHUNK_MEAN = 30.0


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact Binomial(n, p) draw by inversion, in time proportional to ``n * p``."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1 - p)
    chunk = max(1, int(_CHUNK_MEAN / p))
    total = 0
    while n > 0:
        size = min(n, chunk)
        n -= size
        total += _inversion(rng, size, p)
    return total


def _inversion(rng: random.Random, n: int, p: float) -> int:
    odds = p / (1 - p)
    probability = (1 - p) ** n
    cumulative = probability
    u = rng.random()
    x = 0
    while u > cumulative and x < n:
        probability *= odds * (n - x) / (x + 1)
        x += 1
        cumulative += probability
    return x


@dataclass(frozen=True)
class Scenario:
    """A rollout's traffic and behaviour; rates per second, times in seconds."""

    canary_rps: float
    primary_rps: float
    base_rate: float
    #: The canary's event rate over the primary's: 1 is a healthy canary.
    ratio: float = 1.0
    step_seconds: float = 10.0
    duration_seconds: float = 600.0
    #: Standard deviation of the log of the baseline's multiplier in each step.
    baseline_spread: float = 0.0

    @property
    def steps(self) -> int:
        return round(self.duration_seconds / self.step_seconds)

    def simulate(self, rng: random.Random) -> list[Counts]:
        """Each step's counts."""
        canary = round(self.canary_rps * self.step_seconds)
        primary = round(self.primary_rps * self.step_seconds)
        result = []
        for _ in range(self.steps):
            base = self.base_rate
            if self.baseline_spread:
                base = min(1.0, base * math.exp(rng.gauss(0.0, self.baseline_spread)))
            result.append(Counts(canary, binomial(rng, canary, min(1.0, base * self.ratio)),
                                 primary, binomial(rng, primary, base)))
        return result


@dataclass(frozen=True)
class JudgeRun:
    """When the judge first said regression and first proved no regression (seconds
    from the start; None: never). A regression ends the rollout; a proof does not
    here, so that rollbacks after it are still counted."""

    regression_at: float | None
    proven_at: float | None


def run_judge(steps: Sequence[Counts], step_seconds: float, design: Design | None = None,
              alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA) -> JudgeRun:
    """The judge checked after every step."""
    state = JudgeState.start(design)
    proven_at = None
    for index, step in enumerate(steps, start=1):
        state = update(state, step)
        outcome = verdict(state, alpha, beta)
        if outcome is Outcome.REGRESSION:
            return JudgeRun(index * step_seconds, proven_at)
        if outcome is Outcome.NO_REGRESSION_PROVEN and proven_at is None:
            proven_at = index * step_seconds
    return JudgeRun(None, proven_at)


@dataclass(frozen=True)
class BakedRun:
    """A rollout with ``promoteEarly``: when the judge rolled back, and when the early
    promotion came (seconds from the start; None: never within the steps)."""

    regression_at: float | None
    promoted_at: float | None


def run_judge_with_bake(steps: Sequence[Counts], step_seconds: float, bake_seconds: float,
                        design: Design | None = None, alpha: float = DEFAULT_ALPHA,
                        beta: float = DEFAULT_BETA) -> BakedRun:
    """The judge checked after every step, promoting as the controller does: the first
    proof of no regression starts a bake, and the promotion comes at the first step at
    least ``bake_seconds`` later whose evidence since the bake began proves no regression
    by itself. The canary's traffic is the scenario's throughout (in a rollout the bake
    runs at maxWeight, with more of it)."""
    state = JudgeState.start(design)
    bake_from: tuple[float, tuple[float, ...]] | None = None
    bound = math.log(1 / beta)
    for index, step in enumerate(steps, start=1):
        state = update(state, step)
        at = index * step_seconds
        outcome = verdict(state, alpha, beta)
        if outcome is Outcome.REGRESSION:
            return BakedRun(at, None)
        if bake_from is None:
            if outcome is Outcome.NO_REGRESSION_PROVEN:
                bake_from = (at, state.log_lr)
        elif at - bake_from[0] >= bake_seconds and \
                no_regression_log_statistic_since(state, bake_from[1]) >= bound:
            return BakedRun(None, at)
    return BakedRun(None, None)


def run_threshold(steps: Sequence[Counts], step_seconds: float,
                  window_seconds: float = 60.0, min_success: float = 0.99,
                  tolerated: int = 0) -> float | None:
    """Flagger's analysis: the canary's success rate over each window must be at least
    ``min_success``; the rollout is rolled back (seconds returned) at the first failed
    window beyond ``tolerated``. A window without requests fails, as "no values" does."""
    per_window = round(window_seconds / step_seconds)
    if per_window < 1 or not math.isclose(per_window * step_seconds, window_seconds):
        raise ValueError("window_seconds must be a whole number of steps")
    failed = 0
    for end in range(per_window, len(steps) + 1, per_window):
        window = steps[end - per_window:end]
        requests = sum(s.canary_requests for s in window)
        errors = sum(s.canary_events for s in window)
        if requests == 0 or (requests - errors) / requests < min_success:
            failed += 1
            if failed > tolerated:
                return end * step_seconds
    return None


def run_sprt(steps: Sequence[Counts], step_seconds: float, p0: float, p1: float,
             alpha: float = DEFAULT_ALPHA, beta: float = DEFAULT_BETA
             ) -> tuple[Outcome, float] | None:
    """Wald's one-sample SPRT of the canary's rate, ``p0`` (the baseline, known) against
    ``p1``, checked after every step: the reference that knows what the judge must
    estimate. Returns what it concluded and when, or None if it had not by the end."""
    upper = math.log((1 - beta) / alpha)
    lower = math.log(beta / (1 - alpha))
    per_event = math.log(p1 / p0)
    per_request = math.log((1 - p1) / (1 - p0))
    total = 0.0
    for index, step in enumerate(steps, start=1):
        total += (step.canary_events * per_event
                  + (step.canary_requests - step.canary_events) * per_request)
        if total >= upper:
            return Outcome.REGRESSION, index * step_seconds
        if total <= lower:
            return Outcome.NO_REGRESSION_PROVEN, index * step_seconds
    return None


def run_likelihood_ratio(steps: Sequence[Counts], step_seconds: float, ratio: float,
                         alpha: float = DEFAULT_ALPHA) -> float | None:
    """The always-valid test that is told the true effect: the judge's statistic with a
    single alternative at ``ratio``. No mixture can beat it by much; it shows what the
    mixture costs."""
    bound = math.log(1 / alpha)
    total = 0.0
    for index, step in enumerate(steps, start=1):
        if step.events:
            q = step.canary_requests / step.requests
            total += (step.canary_events * math.log(ratio)
                      - step.events * math.log1p((ratio - 1) * q))
            if total >= bound:
                return index * step_seconds
    return None


def binomial_tail(n: int, p: float, k: int) -> float:
    """P(Binomial(n, p) >= k), exactly (for Monte Carlo margins)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
             + i * log_p + (n - i) * log_q for i in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def binomial_upper_bound(successes: int, trials: int, confidence: float = 0.95) -> float:
    """Clopper-Pearson one-sided upper confidence bound for a proportion."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, trials > 0; got {successes} "
                         f"of {trials}")
    if successes == trials:
        return 1.0
    low, high = successes / trials, 1.0
    for _ in range(100):
        middle = (low + high) / 2
        # P(Bin(trials, middle) <= successes) = 1 - P(>= successes + 1)
        if 1 - binomial_tail(trials, middle, successes + 1) > 1 - confidence:
            low = middle
        else:
            high = middle
    return high
