"""An always-valid sequential comparison of the canary with the primary.

At every analysis step the judge adds what both versions served during the step
(:class:`~canary.core.judge.counts.Counts`) and answers ``regression`` (roll back now),
``no_regression_proven`` (the canary may be promoted early) or ``continue``. It may be
asked at every step, for as many steps as the analysis lasts, without its error rates
growing: that is what *always valid* means, and why thresholds checked every interval
are not.

Model
-----
In step ``t`` the canary serves ``n_t`` requests and the primary ``n'_t``. Their events
(errors, or requests slower than a bound) are Poisson with means ``r * lam_t * n_t`` and
``lam_t * n'_t``. The baseline ``lam_t`` is unknown and may change from step to step in
any way, even in response to what happened before; ``r``, the ratio of the canary's rate
to the primary's, is what is judged. Given the step's total ``m_t = x_t + y_t``, the
canary's count ``x_t`` is ``Binomial(m_t, p_t(r))`` with::

    q_t    = n_t / (n_t + n'_t)                (the canary's share of the requests)
    p_t(r) = r q_t / (r q_t + 1 - q_t)

and ``lam_t`` has cancelled: the nuisance is removed exactly, not estimated. The log
likelihood ratio of ``r = g`` against ``r = 1`` over the steps so far is a running sum::

    A_t(g) = sum_s  x_s log g  -  m_s log(1 + (g - 1) q_s)

which the state keeps for each ``g`` of a fixed grid (:class:`Design`), with the four
totals. That is all the history the tests need, so the state stays small however long
the analysis runs, and folding the steps one at a time is the same computation as
replaying them (:func:`replay`).

The two tests
-------------
*Regression* (error budget ``alpha``). Null ``r <= 1``, alternatives the grid points
``g_1 < ... < g_K`` from the minimum effect to the maximum effect, weighted ``1/K``
each::

    M_t = (1/K) sum_k exp(A_t(g_k));    regression when  M_t >= 1/alpha

*No regression* (error budget ``beta``). Null ``r >= delta`` (the minimum effect),
alternatives ``1 = h_1 > ... > h_J``, weighted ``1/J``::

    N_t = (1/J) sum_j exp(A_t(h_j) - A_t(delta));    proven when  N_t >= 1/beta

*No regression at the final weight*. Early promotion asks the no-regression test
twice: once on the whole analysis, and again on the steps of a bake at the final weight
alone (:func:`no_regression_log_statistic_since`), so that a canary that degrades after
healthy minutes is not promoted on them.

*Change during the analysis* (same budget ``alpha``). A canary that degrades after
healthy minutes must first make up for them in ``M_t``. The test therefore compares
``(1 - s) M_t + s Z_t`` with ``1/alpha``, where ``Z_t`` mixes, over every start step, the
likelihood ratios of the steps since that start (:mod:`~canary.core.judge.change`) and
``s`` is ``Design.change_share`` (0.5; 0 leaves ``M_t`` alone). ``Z_t`` is a nonnegative
supermartingale starting at 1 for the reason ``M_t`` is (below), so the combination is
one too, and the bound below holds for it unchanged.

Proof sketch. Fix ``g > 1`` and let ``F_t`` hold every count up to step ``t``. One
step's factor ``f(x) = (p(g)/p(1))^x ((1 - p(g))/(1 - p(1)))^(m - x)`` has mean exactly
1 under ``Binomial(m, p(1))`` and increases with ``x``; when ``r <= 1``, ``x`` is
``Binomial(m, p(r))`` with ``p(r) <= p(1)``, stochastically smaller, so
``E[f(x) | F_{t-1}, n_t, n'_t, m_t] <= 1``. The traffic split and the baseline of step
``t`` may depend on ``F_{t-1}`` (the controller moves traffic by past decisions); only
the labels of the step's events are random given them. Hence ``exp(A_t(g))`` is a
nonnegative supermartingale starting at 1, and so is ``M_t``, a mixture with fixed
weights summing to 1. Ville's inequality for nonnegative supermartingales gives::

    P_{r <= 1}( exists t: M_t >= 1/alpha ) <= alpha

for every ``t`` at once: checking at every step, stopping whenever, or stopping early
for another reason cannot raise it. For ``N_t`` the argument is the mirror image: under
``r >= delta`` each factor of ``h <= 1 < delta`` against ``delta`` decreases in ``x``
while ``x`` is stochastically at least ``Binomial(m, p(delta))``, so
``P_{r >= delta}(exists t: N_t >= 1/beta) <= beta``. The weights cost at most
``log K`` (resp. ``log J``) nats of evidence against the best single alternative,
usually less, since neighbouring alternatives add up (see :class:`Design`).

The regression test stays exact when each request fails independently with a fixed
probability (Bernoulli rather than Poisson), and more generally under random routing:
under ``r = 1`` the canary's events are then a hypergeometric draw from the step's
events, which Hoeffding (1963, Theorem 4) shows is dominated in convex order by
``Binomial(m, q)``; ``f`` is convex, so ``E f <= 1`` still, and under ``r < 1`` the draw
is stochastically smaller (Fisher's noncentral hypergeometric with odds ratio below 1)
while ``f`` increases. The no-regression test and
the confidence sequence are exact under the Poisson model and close to it whenever
events are a small fraction of requests.

What is assumed: within one step the canary's share of traffic is the same for every
kind of request (random routing, weights changed only between steps); when a step ends
does not depend on which version its events came from (steps end on a timer); both
versions' events are counted alike; and the counts are exact (see ``counts``).

Several metrics: a rollout rolls back when any judged metric finds a regression, so
the rollout's false-rollback rate is at most the sum of the metrics' alphas
(:func:`split_alpha`). Early promotion needs every metric proven, and a wrong one needs
the regressed metric's own test to be wrong, so ``beta`` needs no split.

What "regression" means: proven ``r > 1``, found quickly when ``r`` is at least the
minimum effect. An effect below the minimum effect is a real regression too, and the
test may find it: never with more than ``alpha`` chance when ``r <= 1``, but for
``1 < r`` below the minimum effect with a chance that grows with the traffic and the
length of the analysis (the statistic drifts downwards, but crosses the bound with a
fixed probability once enough events have been seen). While the canary's share of
traffic is small, an alternative ``g`` drifts upwards only when the true ratio exceeds
about ``(g - 1) / log g`` (1.23 for ``g = 1.5``); below that the chance of ever
crossing is the same at any traffic, and more traffic only reaches it sooner. The
benchmark in ``benchmarks/decisions`` measures it: a ratio of 1.2 against a minimum
effect of 1.5 is flagged in about 6%, 24% and 46% of 10-minute analyses at 5, 50 and
500 canary requests per second (6%, 23% and 40% by the cumulative evidence alone).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from canary.core.judge import change
from canary.core.judge.counts import ZERO, Counts

#: Default error budgets: false rollback per rollout, wrong early promotion per metric.
DEFAULT_ALPHA = 0.05
DEFAULT_BETA = 0.2
#: The largest grid the state may carry (floats per judged metric).
MAX_GRID = 64


class Outcome(StrEnum):
    REGRESSION = "regression"
    NO_REGRESSION_PROVEN = "no_regression_proven"
    CONTINUE = "continue"


@dataclass(frozen=True)
class Grid:
    """The ratios the state keeps a running log likelihood ratio for, ascending."""

    ratios: tuple[float, ...]
    log_ratios: tuple[float, ...]
    #: Alternatives of the no-regression test: ``r <= 1``, ending at ``r = 1``.
    proof: range
    #: Alternatives of the regression test: ``minimum_effect`` to ``maximum_effect``.
    regression: range

    @property
    def effect(self) -> int:
        """Index of the minimum effect, the null of the no-regression test."""
        return self.regression.start


@dataclass(frozen=True)
class Design:
    """Which alternatives the tests weigh; fixed for the whole analysis.

    The regression alternatives are ``exp(log(minimum_effect) * rho**k)``: equally
    spaced in ``log log r``. An effect ``theta = log r`` is detected once the evidence
    has pinned ``theta`` down to about ``theta / sqrt(2 log(1/alpha))``, so spacing
    proportional to ``theta`` gives every effect in the range the same few neighbours
    and the same cost, about ``log(points) - log(neighbours)`` nats. With 12 points from
    1.5 to 20, neighbours are 20% apart in ``theta``. The no-regression alternatives are
    spaced the same way by their distance from the minimum effect, from ``r = 1`` down
    to ``1 / minimum_effect`` (a canary better than that is proven by ``r = 1`` anyway);
    ``between_points`` ratios between 1 and the minimum effect only refine the
    confidence sequence.
    """

    minimum_effect: float = 1.5
    maximum_effect: float = 20.0
    points: int = 12
    proof_points: int = 6
    between_points: int = 2
    #: The share of ``alpha`` given to evidence of a change during the analysis
    #: (:mod:`~canary.core.judge.change`); 0 judges the cumulative evidence alone.
    change_share: float = 0.5
    #: The requests over which the start weights of that evidence spread.
    change_scale: float = change.SCALE

    def __post_init__(self) -> None:
        if not (0 <= self.change_share < 1 and self.change_scale > 0):
            raise ValueError(f"need 0 <= change_share < 1 and change_scale > 0; got "
                             f"{self.change_share!r} and {self.change_scale!r}")
        low, high = self.minimum_effect, self.maximum_effect
        if not (math.isfinite(low) and math.isfinite(high) and 1 < low < high):
            raise ValueError(f"need 1 < minimum_effect < maximum_effect, finite; got "
                             f"{low!r} and {high!r}")
        for name in ("points", "proof_points", "between_points"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if self.points < 2 or self.proof_points < 1 or self.between_points < 0:
            raise ValueError("need points >= 2, proof_points >= 1, between_points >= 0")
        if self.size > MAX_GRID:
            raise ValueError(f"the grid would hold {self.size} ratios; at most {MAX_GRID}")

    @property
    def size(self) -> int:
        return self.points + self.proof_points + self.between_points

    @property
    def grid(self) -> Grid:
        return _grid(self)


@cache
def _grid(design: Design) -> Grid:
    theta = math.log(design.minimum_effect)
    rho = (math.log(design.maximum_effect) / theta) ** (1 / (design.points - 1))
    regression = [design.minimum_effect,
                  *(math.exp(theta * rho**k) for k in range(1, design.points - 1)),
                  design.maximum_effect]
    # Distances from the minimum effect grow geometrically from theta (r = 1) to
    # 2 theta (r = 1 / minimum_effect).
    spread = 2 ** (1 / max(design.proof_points - 1, 1))
    proof = [1.0, *(math.exp(theta * (1 - spread**j)) for j in range(1, design.proof_points))]
    between = [math.exp(theta * i / (design.between_points + 1))
               for i in range(1, design.between_points + 1)]
    ratios = (*reversed(proof), *between, *regression)
    first_regression = design.proof_points + design.between_points
    return Grid(ratios=ratios, log_ratios=tuple(math.log(r) for r in ratios),
                proof=range(design.proof_points),
                regression=range(first_regression, first_regression + design.points))


@dataclass(frozen=True)
class JudgeState:
    """Everything the judge remembers about one metric in one analysis."""

    design: Design
    #: Cumulative counts since the analysis started.
    totals: Counts
    steps: int
    #: ``A_t(g)`` for each ratio ``g`` of ``design.grid``, in the grid's order.
    log_lr: tuple[float, ...]
    #: ``log R_t(g)`` of :mod:`~canary.core.judge.change` for each regression
    #: alternative; empty until a step has events (or with ``change_share`` 0).
    recent: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be a non-negative int, got {self.steps!r}")
        if len(self.log_lr) != self.design.size:
            raise ValueError(f"log_lr holds {len(self.log_lr)} values; the design's grid "
                             f"has {self.design.size}")
        if not all(isinstance(v, float) and math.isfinite(v) for v in self.log_lr):
            raise ValueError("log_lr must hold finite floats")
        if len(self.recent) not in (0, self.design.points) or \
                not all(isinstance(v, float) and math.isfinite(v) for v in self.recent):
            raise ValueError(f"recent holds {self.design.points} finite floats or none")

    @classmethod
    def start(cls, design: Design | None = None) -> JudgeState:
        design = design or Design()
        return cls(design, ZERO, 0, (0.0,) * design.size)

    def to_dict(self) -> dict[str, int | float | list[float]]:
        """A JSON-ready form for the Canary's status; :meth:`from_dict` reads it back
        exactly (JSON keeps a float's shortest round-tripping digits)."""
        d = self.design
        return {
            "minimumEffect": d.minimum_effect, "maximumEffect": d.maximum_effect,
            "points": d.points, "proofPoints": d.proof_points,
            "betweenPoints": d.between_points, "steps": self.steps,
            "canaryRequests": self.totals.canary_requests,
            "canaryEvents": self.totals.canary_events,
            "primaryRequests": self.totals.primary_requests,
            "primaryEvents": self.totals.primary_events,
            "logLikelihoodRatios": list(self.log_lr),
            "recentLogLikelihoodRatios": list(self.recent),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> JudgeState:
        expected = set(cls.start().to_dict())
        if set(data) not in (expected, expected - {"recentLogLikelihoodRatios"}):
            raise ValueError(f"a judge state has exactly the keys {sorted(expected)}; "
                             f"got {sorted(data)}")
        ratios, recent = data["logLikelihoodRatios"], data.get("recentLogLikelihoodRatios", [])
        if not isinstance(ratios, list) or not isinstance(recent, list):
            raise ValueError("logLikelihoodRatios and recentLogLikelihoodRatios are lists")
        design = Design(_number(data["minimumEffect"]), _number(data["maximumEffect"]),
                        _integer(data["points"]), _integer(data["proofPoints"]),
                        _integer(data["betweenPoints"]))
        totals = Counts(_integer(data["canaryRequests"]), _integer(data["canaryEvents"]),
                        _integer(data["primaryRequests"]), _integer(data["primaryEvents"]))
        return cls(design, totals, _integer(data["steps"]),
                   tuple(_number(v) for v in ratios), tuple(_number(v) for v in recent))


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an int, got {value!r}")
    return value


def update(state: JudgeState, step: Counts) -> JudgeState:
    """Add one step's counts. A step without events carries no evidence about ``r``
    (only about the baseline) and changes only the totals."""
    totals, steps = state.totals + step, state.steps + 1
    m = step.events
    if m == 0:
        return JudgeState(state.design, totals, steps, state.log_lr, state.recent)
    x = step.canary_events
    q = step.canary_requests / step.requests
    design = state.design
    grid = design.grid
    terms = [x * log_g - m * math.log1p((g - 1) * q)
             for g, log_g in zip(grid.ratios, grid.log_ratios, strict=True)]
    log_lr = tuple(a + t for a, t in zip(state.log_lr, terms, strict=True))
    recent = state.recent
    if design.change_share > 0:
        recent = change.advance(state.recent, [terms[k] for k in grid.regression],
                                state.totals.requests, totals.requests, design.change_scale)
    return JudgeState(design, totals, steps, log_lr, recent)


def replay(steps: Iterable[Counts], design: Design | None = None) -> JudgeState:
    """The state after ``steps``, from the start: what :func:`update` arrives at."""
    state = JudgeState.start(design)
    for step in steps:
        state = update(state, step)
    return state


def _log_mean_exp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(math.fsum(math.exp(v - top) for v in values) / len(values))


def regression_log_statistic(state: JudgeState) -> float:
    """``log M_t``: evidence that the canary's rate is higher than the primary's."""
    return _log_mean_exp([state.log_lr[i] for i in state.design.grid.regression])


def regression_evidence(state: JudgeState) -> float:
    """The log statistic the regression test compares with ``log(1/alpha)``: the
    cumulative evidence and the evidence of a change during the analysis, together."""
    design = state.design
    return change.combined_log_statistic(regression_log_statistic(state), state.recent,
                                         state.totals.requests, design.change_share,
                                         design.change_scale)


def no_regression_log_statistic(state: JudgeState) -> float:
    """``log N_t``: evidence that the canary is not worse by the minimum effect."""
    grid = state.design.grid
    null = state.log_lr[grid.effect]
    return _log_mean_exp([state.log_lr[j] - null for j in grid.proof])


def no_regression_log_statistic_since(state: JudgeState, start: Sequence[float]) -> float:
    """``log N`` of the evidence gathered since the running log likelihood ratios were
    ``start``: the no-regression test begun afresh at that step (a bake at the final
    weight). The sums are additive over steps, so their differences are the likelihood
    ratios of the later steps alone; under ``r >= delta`` from that step on they form a
    nonnegative supermartingale starting at 1, and the bound ``beta`` holds for the
    fresh test by the same argument as for the whole analysis."""
    if len(start) != len(state.log_lr):
        raise ValueError(f"start holds {len(start)} values; the grid has {len(state.log_lr)}")
    grid = state.design.grid
    since = [a - b for a, b in zip(state.log_lr, start, strict=True)]
    null = since[grid.effect]
    return _log_mean_exp([since[j] - null for j in grid.proof])


def _check_level(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def split_alpha(alpha: float, metrics: int) -> float:
    """Each judged metric's share of the rollout's false-rollback budget (Bonferroni:
    valid because each test bounds its error over the whole analysis, not per step)."""
    _check_level("alpha", alpha)
    if isinstance(metrics, bool) or not isinstance(metrics, int) or metrics < 1:
        raise ValueError(f"metrics must be a positive int, got {metrics!r}")
    return alpha / metrics


def rate_ratio(totals: Counts) -> float | None:
    """The canary's event rate over the primary's, or None while it is undefined. It is
    the maximum-likelihood estimate when the traffic split never changed."""
    if totals.canary_requests == 0 or totals.primary_requests == 0:
        return None
    if totals.primary_events == 0:
        return None
    return ((totals.canary_events / totals.canary_requests)
            / (totals.primary_events / totals.primary_requests))


def confidence_sequence(state: JudgeState, alpha: float) -> tuple[float, float]:
    """Bounds ``(lower, upper)`` that contain the true ratio at every step at once with
    probability at least ``1 - alpha``; ``upper`` may be ``inf``.

    Each grid ratio ``g_i`` has two one-sided tests at level ``alpha/2``: ``r <= g_i``
    against the grid ratios above it, ``r >= g_i`` against those below (uniform weights),
    valid by the same argument as the regression test. ``lower`` is the grid ratio just
    below the smallest ``g_i`` whose ``r <= g_i`` test has not rejected (0 if that is
    the first); ``upper`` the one just above the largest ``g_i`` whose ``r >= g_i`` test
    has not rejected (``inf`` if that is the last). The grid point nearest the truth on
    the right side is rejected only on an event of probability ``alpha/2``, so the
    bounds cover the truth whether or not it lies on the grid; their resolution is the
    grid's.
    """
    _check_level("alpha", alpha)
    bound = math.log(2 / alpha)
    ratios, a = state.design.grid.ratios, state.log_lr
    size = len(ratios)

    def rejected_from_above(i: int) -> bool:
        return i < size - 1 and _log_mean_exp([a[k] - a[i] for k in range(i + 1, size)]) >= bound

    def rejected_from_below(i: int) -> bool:
        return i > 0 and _log_mean_exp([a[k] - a[i] for k in range(i)]) >= bound

    first = next(i for i in range(size) if not rejected_from_above(i))
    last = next(i for i in reversed(range(size)) if not rejected_from_below(i))
    lower = ratios[first - 1] if first > 0 else 0.0
    upper = ratios[last + 1] if last < size - 1 else math.inf
    return lower, upper


@dataclass(frozen=True)
class Assessment:
    """One step's verdict on one metric, with the evidence behind it."""

    outcome: Outcome
    totals: Counts
    steps: int
    #: Point estimate of the ratio of rates (None while undefined).
    ratio: float | None
    #: Confidence sequence for the ratio at level ``1 - alpha``; upper may be inf.
    ratio_lower: float
    ratio_upper: float
    log_regression: float
    #: ``log(1/alpha)``
    log_regression_bound: float
    log_no_regression: float
    #: ``log(1/beta)``
    log_no_regression_bound: float

    def to_dict(self) -> dict[str, str | int | float | None]:
        """JSON-ready evidence for the status (an infinite bound becomes None)."""
        t = self.totals
        return {
            "outcome": self.outcome.value, "steps": self.steps,
            "canaryRequests": t.canary_requests, "canaryEvents": t.canary_events,
            "primaryRequests": t.primary_requests, "primaryEvents": t.primary_events,
            "ratio": self.ratio, "ratioLower": self.ratio_lower,
            "ratioUpper": self.ratio_upper if math.isfinite(self.ratio_upper) else None,
            "logRegression": self.log_regression,
            "logRegressionBound": self.log_regression_bound,
            "logNoRegression": self.log_no_regression,
            "logNoRegressionBound": self.log_no_regression_bound,
        }

    def describe(self) -> str:
        """One line for events and messages."""
        t = self.totals
        rates = (f"canary {t.canary_events}/{t.canary_requests}, "
                 f"primary {t.primary_events}/{t.primary_requests}")
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.2f}"
        upper = f"{self.ratio_upper:.2f}" if math.isfinite(self.ratio_upper) else "inf"
        return (f"{self.outcome.value}: {rates}; ratio {ratio} in [{self.ratio_lower:.2f}, "
                f"{upper}]; regression evidence {self.log_regression:.2f} of "
                f"{self.log_regression_bound:.2f}, no-regression evidence "
                f"{self.log_no_regression:.2f} of {self.log_no_regression_bound:.2f}")


def _outcome(log_regression: float, log_no_regression: float, alpha: float,
             beta: float) -> Outcome:
    _check_level("alpha", alpha)
    _check_level("beta", beta)
    if log_regression >= math.log(1 / alpha):
        return Outcome.REGRESSION
    if log_no_regression >= math.log(1 / beta):
        return Outcome.NO_REGRESSION_PROVEN
    return Outcome.CONTINUE


def verdict(state: JudgeState, alpha: float = DEFAULT_ALPHA,
            beta: float = DEFAULT_BETA) -> Outcome:
    """The outcome alone: :func:`assess` without the evidence (cheaper, for simulations)."""
    return _outcome(regression_evidence(state), no_regression_log_statistic(state),
                    alpha, beta)


def assess(state: JudgeState, alpha: float = DEFAULT_ALPHA,
           beta: float = DEFAULT_BETA) -> Assessment:
    """The verdict for this step with its evidence. ``alpha`` is this metric's share of
    the rollout's false-rollback budget (:func:`split_alpha`); ``beta`` bounds the chance
    of proving "no regression" when the canary is worse by the minimum effect or more."""
    log_regression = regression_evidence(state)
    log_no_regression = no_regression_log_statistic(state)
    outcome = _outcome(log_regression, log_no_regression, alpha, beta)
    lower, upper = confidence_sequence(state, alpha)
    return Assessment(outcome=outcome, totals=state.totals, steps=state.steps,
                      ratio=rate_ratio(state.totals), ratio_lower=lower, ratio_upper=upper,
                      log_regression=log_regression, log_regression_bound=math.log(1 / alpha),
                      log_no_regression=log_no_regression,
                      log_no_regression_bound=math.log(1 / beta))
