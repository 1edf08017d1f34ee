"""Can the traffic decide in time? Expected times to a verdict, and Wald's yardstick.

Each term ``A_t(g)`` of the judge's statistic is a sum of per-step log likelihood
ratios, so under a given ratio ``r`` it drifts at a steady rate per second. Wald's
approximation (ignoring the overshoot of the last step) replaces each term by its
expectation, ``t * drift(g)``, and asks when the mixture ``log mean exp(t * drift)``
reaches its bound: somewhere between ``bound / max drift`` (when every term drifts
alike) and ``(bound + log points) / max drift`` (when the best term is alone and pays
for its weight). Compared with the simulations in ``benchmarks/decisions``, the
estimates are close for regressions and pessimistic for proofs, whose times are skewed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from canary.core.judge.sequential import Design
from canary.core.judge.sparse import Chance, StepRates, detection_chance, first_reaching


def bernoulli_kl(p: float, q: float) -> float:
    """Kullback-Leibler divergence of Bernoulli(p) from Bernoulli(q), in nats."""
    if not (0 <= p <= 1 and 0 < q < 1):
        raise ValueError(f"need 0 <= p <= 1 and 0 < q < 1, got p={p!r}, q={q!r}")
    total = 0.0
    if p > 0:
        total += p * math.log(p / q)
    if p < 1:
        total += (1 - p) * math.log((1 - p) / (1 - q))
    return total


def _check_level(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def wald_asn(p0: float, p1: float, alpha: float, beta: float,
             under: Literal["alternative", "null"] = "alternative") -> float:
    """Wald's average sample number (requests) of the one-sample SPRT of an event rate
    ``p0`` against ``p1``, the baseline known: the yardstick for the judge, which does
    not know the baseline and may be checked forever."""
    _check_level("alpha", alpha)
    _check_level("beta", beta)
    if not (0 < p0 < 1 and 0 < p1 < 1) or p0 == p1:
        raise ValueError(f"need two different rates in (0, 1), got {p0!r} and {p1!r}")
    upper = math.log((1 - beta) / alpha)
    lower = math.log(beta / (1 - alpha))
    if under == "alternative":
        return ((1 - beta) * upper + beta * lower) / bernoulli_kl(p1, p0)
    return -((1 - alpha) * lower + alpha * upper) / bernoulli_kl(p0, p1)


@dataclass(frozen=True)
class Traffic:
    """Current rates: requests per second to each version and the primary's fraction of
    requests that are events (errors, or slower than the bound)."""

    canary_rps: float
    primary_rps: float
    base_rate: float

    def __post_init__(self) -> None:
        for name in ("canary_rps", "primary_rps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if not 0 <= self.base_rate <= 1:
            raise ValueError(f"base_rate is a fraction of requests, got {self.base_rate!r}")

    def drift(self, ratio: float, alternative: float, null: float) -> float:
        """Expected log likelihood ratio of ``alternative`` against ``null`` per second
        when the canary's rate is ``ratio`` times the primary's (Poisson model)."""
        total = self.canary_rps + self.primary_rps
        if total == 0 or self.base_rate == 0:
            return 0.0
        q = self.canary_rps / total
        canary_events = self.base_rate * ratio * self.canary_rps
        events = canary_events + self.base_rate * self.primary_rps
        return (canary_events * math.log(alternative / null)
                - events * (math.log1p((alternative - 1) * q) - math.log1p((null - 1) * q)))


def _crossing_seconds(bound: float, drifts: list[float]) -> float:
    """When ``log mean exp(t * drift)`` first reaches ``bound``. It is convex in ``t``
    and 0 at 0, so it crosses once, by ``(bound + log n) / max drift``."""
    best = max(drifts)
    if best <= 0:
        return math.inf

    def mixture(t: float) -> float:
        top = t * best
        return top + math.log(math.fsum(math.exp(t * d - top) for d in drifts) / len(drifts))

    return first_reaching(lambda t: mixture(t) >= bound, 0.0,
                          (bound + math.log(len(drifts))) / best, 100)


def detection_seconds(design: Design, traffic: Traffic, alpha: float,
                      effect: float | None = None) -> float:
    """Expected seconds until the regression test finds a canary ``effect`` times worse
    (default: the minimum effect); ``inf`` when it never would."""
    _check_level("alpha", alpha)
    effect = design.minimum_effect if effect is None else effect
    grid = design.grid
    return _crossing_seconds(math.log(1 / alpha), [traffic.drift(effect, grid.ratios[k], 1.0)
                                                   for k in grid.regression])


def proof_seconds(design: Design, traffic: Traffic, beta: float, ratio: float = 1.0
                  ) -> float:
    """Expected seconds until the no-regression test proves a canary whose rate is
    ``ratio`` times the primary's (default: as good as the primary)."""
    _check_level("beta", beta)
    grid = design.grid
    return _crossing_seconds(math.log(1 / beta),
                             [traffic.drift(ratio, grid.ratios[j], design.minimum_effect)
                              for j in grid.proof])


@dataclass(frozen=True)
class PowerCheck:
    """Whether the current traffic can decide before the analysis ends."""

    seconds_to_detect: float
    seconds_to_prove: float
    remaining_seconds: float
    effect: float
    #: Counting the events: the chance of detecting ``effect`` before the analysis ends.
    chance: Chance | None = None
    #: The chance of detection below which the effect counts as undetectable (1 - beta).
    power: float = 1 - 0.2

    @property
    def detectable(self) -> bool:
        if self.seconds_to_detect > self.remaining_seconds:
            return False
        return self.chance is None or self.chance.probability >= self.power

    @property
    def provable(self) -> bool:
        return self.seconds_to_prove <= self.remaining_seconds

    def warning(self) -> str | None:
        """A message for the status when a regression of the minimum effect would
        probably go unnoticed; None when the traffic suffices."""
        if self.detectable:
            return None
        needed = ("never (no events to compare)" if math.isinf(self.seconds_to_detect)
                  else f"about {self.seconds_to_detect:.0f}s")
        return (f"a regression of x{self.effect:g} would take {needed} to detect at this "
                f"traffic; {self.remaining_seconds:.0f}s of analysis remain"
                + (f"; {self.sparse_events()}" if self.chance is not None else ""))

    def sparse_events(self) -> str:
        """The events behind the chance of detection, in words."""
        chance = self.chance
        if chance is None:
            return ""
        needed = ("no number of them would do" if chance.needed is None
                  else f"the judge needs about {chance.needed}")
        return (f"the canary would have about {chance.canary_events:.1f} events in the "
                f"{self.remaining_seconds:.0f}s analysis under a regression of "
                f"x{self.effect:g} (the primary {chance.primary_events:.1f}); {needed}, so "
                f"it would be detected in time with probability {chance.probability:.0%}")


def _chance(design: Design, schedule: Sequence[tuple[Traffic, float]], alpha: float,
            effect: float) -> Chance:
    """Counting events: the chance of detecting ``effect`` within ``schedule``."""
    steps = []
    for traffic, seconds in schedule:
        total = traffic.canary_rps + traffic.primary_rps
        steps.append(StepRates(share=traffic.canary_rps / total if total else 0.0,
                               seconds=seconds,
                               canary_events=traffic.base_rate * effect * traffic.canary_rps,
                               primary_events=traffic.base_rate * traffic.primary_rps))
    grid = design.grid
    return detection_chance(steps, [grid.ratios[k] for k in grid.regression], alpha)


def power_check(design: Design, traffic: Traffic, remaining_seconds: float, alpha: float,
                beta: float, effect: float | None = None) -> PowerCheck:
    """Expected times to detect ``effect`` and to prove a healthy canary, against the
    time the analysis has left, and the chance of detecting ``effect`` in that time."""
    if not remaining_seconds >= 0:
        raise ValueError(f"remaining_seconds must be >= 0, got {remaining_seconds!r}")
    effect = design.minimum_effect if effect is None else effect
    return PowerCheck(seconds_to_detect=detection_seconds(design, traffic, alpha, effect),
                      seconds_to_prove=proof_seconds(design, traffic, beta),
                      remaining_seconds=remaining_seconds, effect=effect,
                      chance=_chance(design, [(traffic, remaining_seconds)], alpha, effect),
                      power=1 - beta)


def rate_upper_bound(requests: int, events: int, confidence: float) -> float:
    """An upper confidence bound for an event rate from ``events`` in ``requests``
    (Chernoff: the largest p with requests * KL(observed || p) <= log(1/(1-confidence)))."""
    _check_level("confidence", confidence)
    if requests <= 0 or not 0 <= events <= requests:
        raise ValueError(f"need 0 <= events <= requests and requests > 0, got "
                         f"{events} of {requests}")
    observed = events / requests
    if observed == 1:
        return 1.0
    level = math.log(1 / (1 - confidence)) / requests
    low, high = observed, 1.0
    for _ in range(200):
        middle = (low + high) / 2
        if middle >= 1 or bernoulli_kl(observed, middle) > level:
            high = middle
        else:
            low = middle
        if high - low <= 1e-15:
            break
    return high


def ratio_for_absolute_effect(absolute_effect: float, primary_requests: int,
                              primary_events: int, confidence: float = 0.95) -> float:
    """The minimum effect, as a ratio, for an absolute one (``0.005`` = +0.5 points).

    The judge compares ratios, because the baseline cancels from ratios only. The caller
    converts once, at the start of the analysis, from the primary's counts over a window
    before it, and keeps the ratio for the whole analysis (a conversion that followed
    the data would change the test as it runs). The conversion uses an upper confidence
    bound ``p`` for the primary's rate, so ``1 + absolute_effect / p`` is the smaller,
    safer ratio. What is then guaranteed: "regression" always means the canary's rate is
    above the primary's; "no regression proven" means ``r < 1 + absolute_effect / p``,
    which implies the canary is less than ``absolute_effect`` worse as long as the
    primary's rate stays at or below ``p`` during the analysis.
    """
    if not (math.isfinite(absolute_effect) and absolute_effect > 0):
        raise ValueError(f"absolute_effect must be positive, got {absolute_effect!r}")
    return 1 + absolute_effect / rate_upper_bound(primary_requests, primary_events, confidence)


def _scheduled_crossing(bound: float, steps: Sequence[tuple[list[float], float]]) -> float:
    """When ``log mean exp(A(t))`` first reaches ``bound``, each ``A`` growing by the
    step's drift per second through ``steps`` (drifts, seconds), the last step's drifts
    continuing after the schedule; ``inf`` when it never does."""

    def mixture(values: list[float]) -> float:
        top = max(values)
        return top + math.log(math.fsum(math.exp(v - top) for v in values) / len(values))

    def first_crossing(start: list[float], drifts: list[float], high: float) -> float:
        low = 0.0
        for _ in range(100):
            middle = (low + high) / 2
            if mixture([a + middle * d for a, d in zip(start, drifts, strict=True)]) >= bound:
                high = middle
            else:
                low = middle
        return high

    if not steps:
        return math.inf
    size = len(steps[0][0])
    level, elapsed = [0.0] * size, 0.0
    for drifts, seconds in steps:
        end = [a + seconds * d for a, d in zip(level, drifts, strict=True)]
        if mixture(end) >= bound:
            # Convex along the step and below the bound at its start: one crossing.
            return elapsed + first_crossing(level, drifts, seconds)
        level, elapsed = end, elapsed + seconds
    drifts = steps[-1][0]
    # mixture >= max(a + t d) - log(size): past this the bound is surely reached.
    candidates = [(bound + math.log(size) - a) / d for a, d in zip(level, drifts, strict=True)
                  if d > 0]
    if not candidates:
        return math.inf
    return elapsed + first_crossing(level, drifts, max(min(candidates), 0.0))


def scheduled_power_check(design: Design, schedule: Sequence[tuple[Traffic, float]],
                          alpha: float, beta: float, effect: float | None = None
                          ) -> PowerCheck:
    """:func:`power_check` for an analysis whose traffic changes step by step, as a
    weighted canary's does: ``schedule`` lists each step's traffic and length in seconds
    from the analysis start. The times are from the start of the schedule (past its end,
    its last step's traffic is assumed to continue); ``remaining_seconds`` is the
    schedule's length."""
    _check_level("alpha", alpha)
    _check_level("beta", beta)
    effect = design.minimum_effect if effect is None else effect
    grid = design.grid
    detect = [([traffic.drift(effect, grid.ratios[k], 1.0) for k in grid.regression], seconds)
              for traffic, seconds in schedule]
    prove = [([traffic.drift(1.0, grid.ratios[j], design.minimum_effect) for j in grid.proof],
              seconds) for traffic, seconds in schedule]
    return PowerCheck(seconds_to_detect=_scheduled_crossing(math.log(1 / alpha), detect),
                      seconds_to_prove=_scheduled_crossing(math.log(1 / beta), prove),
                      remaining_seconds=math.fsum(seconds for _, seconds in schedule),
                      effect=effect, chance=_chance(design, schedule, alpha, effect),
                      power=1 - beta)
