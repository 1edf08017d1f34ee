"""The chance that the judge detects an effect within a schedule, counting events.

Wald's approximation (``power``) gives the expected time to a verdict, which says little
when events are sparse: with a handful of canary errors in the whole analysis, whether
the test crosses its bound is a matter of how many arrive, and an expected time just
inside the schedule means a coin toss. Here the events are counted instead. By the end
of the schedule the canary's events ``X`` and the primary's ``Y`` are Poisson; the
statistic of each regression alternative ``g`` is about ``X w_g - Y d_g`` (``w_g`` and
``d_g`` the steps' per-event weights, averaged over where the events are expected), so
for each ``Y`` the test needs at least ``k(Y)`` canary events, and the chance is
``sum_y P(Y = y) P(X >= k(y))``. It is the chance of a crossing at the end of the
schedule; crossing earlier (and stopping) only adds to it, so it is a slight
underestimate, and exact in the limit of one long step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Poisson means above this are summed over a normal grid rather than term by term.
_EXACT_MEAN = 10.0
#: Poisson tails of means above this use the normal approximation (with Wilson and
#: Hilferty's cube root, accurate to far better than the estimate needs).
_NORMAL_MEAN = 1e4
#: The normal grid's points, in standard deviations.
_GRID = tuple(float(z) for z in range(-6, 7))


@dataclass(frozen=True)
class Chance:
    """How likely the regression test detects the effect by the end of the schedule."""

    probability: float
    #: Expected events over the schedule, under the effect.
    canary_events: float
    primary_events: float
    #: Canary events the test needs when the primary has its expected events; None when
    #: no number would do (no events expected at all).
    needed: int | None


@dataclass(frozen=True)
class StepRates:
    """One step of the schedule: its canary share, seconds, and the expected events per
    second of each version under the effect."""

    share: float
    seconds: float
    canary_events: float
    primary_events: float


def poisson_tail(mean: float, k: int) -> float:
    """``P(Poisson(mean) >= k)``."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if mean > _NORMAL_MEAN:
        # P(X >= k) = P(Gamma(k) <= mean), Wilson-Hilferty for the chi-square 2k.
        z = ((mean / k) ** (1 / 3) - 1 + 1 / (9 * k)) * math.sqrt(9 * k)
        return 0.5 * math.erfc(-z / math.sqrt(2))
    spread = 12 * math.sqrt(mean) + 30

    def term(i: int) -> float:
        return math.exp(i * math.log(mean) - mean - math.lgamma(i + 1))

    if k >= mean:
        return min(1.0, math.fsum(term(i) for i in range(k, k + int(spread) + 1)))
    low = max(0, int(mean - spread))
    return max(0.0, 1.0 - math.fsum(term(i) for i in range(low, k)))


def _weights(steps: Sequence[StepRates], ratios: Sequence[float]
             ) -> tuple[list[float], list[float], float, float]:
    """Per-event weights of each alternative, averaged over the steps' expected events:
    ``w_g`` for a canary event, ``d_g`` for a primary one; and the two expected totals."""
    canary = math.fsum(s.canary_events * s.seconds for s in steps)
    primary = math.fsum(s.primary_events * s.seconds for s in steps)
    w, d = [], []
    for g in ratios:
        w.append(math.fsum(s.canary_events * s.seconds
                           * (math.log(g) - math.log1p((g - 1) * s.share)) for s in steps)
                 / canary if canary else 0.0)
        d.append(math.fsum(s.primary_events * s.seconds * math.log1p((g - 1) * s.share)
                           for s in steps) / primary if primary else 0.0)
    return w, d, canary, primary


def _needed(w: Sequence[float], d: Sequence[float], y: float, bound: float) -> int:
    """The fewest canary events that bring ``log mean exp(x w_g - y d_g)`` to ``bound``."""

    def mixture(x: float) -> float:
        values = [x * wg - y * dg for wg, dg in zip(w, d, strict=True)]
        top = max(values)
        return top + math.log(math.fsum(math.exp(v - top) for v in values) / len(values))

    high = 1.0
    while mixture(high) < bound:
        high *= 2
    return math.ceil(first_reaching(lambda x: mixture(x) >= bound, 0.0, high, 30) - 1e-9)


def first_reaching(reached: Callable[[float], bool], low: float, high: float,
                   iterations: int) -> float:
    """Bisection: where an increasing condition, false at ``low`` and true at ``high``,
    first holds (to within ``(high - low) / 2**iterations``, from above)."""
    for _ in range(iterations):
        middle = (low + high) / 2
        if reached(middle):
            high = middle
        else:
            low = middle
    return high


def _primary_points(mean: float) -> list[tuple[float, float]]:
    """``(y, probability)`` pairs covering the primary's Poisson count."""
    if mean <= _EXACT_MEAN:
        top = int(mean + 12 * math.sqrt(mean) + 30)
        return [(float(y), math.exp(y * math.log(mean) - mean - math.lgamma(y + 1))
                 if mean > 0 else float(y == 0)) for y in range(top + 1)]
    weights = [math.exp(-z * z / 2) for z in _GRID]
    total = math.fsum(weights)
    return [(max(0.0, mean + z * math.sqrt(mean)), p / total)
            for z, p in zip(_GRID, weights, strict=True)]


def detection_chance(steps: Sequence[StepRates], ratios: Sequence[float], alpha: float
                     ) -> Chance:
    """The chance that the mixture of ``ratios`` reaches ``log(1/alpha)`` by the end."""
    w, d, canary, primary = _weights(steps, ratios)
    if canary <= 0 or max(w) <= 0:
        return Chance(0.0, canary, primary, None)
    bound = math.log(1 / alpha)
    probability = math.fsum(p * poisson_tail(canary, _needed(w, d, y, bound))
                            for y, p in _primary_points(primary) if p > 1e-9)
    return Chance(min(1.0, probability), canary, primary, _needed(w, d, primary, bound))
