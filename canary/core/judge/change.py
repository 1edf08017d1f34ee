"""Evidence that the canary got worse during the analysis: a mixture over start times.

The regression test of ``sequential`` weighs all the evidence since the analysis
started. A canary healthy for minutes that then degrades first has to make up for the
healthy minutes, which pushed the regression alternatives down: evidence gathered while
it was healthy dilutes the change. This statistic looks at recent evidence instead. For
every step ``s`` it keeps the likelihood ratio of the steps from ``s`` on, ``L_{s:t}(g)``
for each regression alternative ``g``, mixed over the start steps with weights ``w_s``::

    R_t(g) = sum_{s <= t} w_s L_{s:t}(g) = (R_{t-1}(g) + w_t) * L_t(g)

so one number per alternative carries it, however long the analysis runs. The weights
come from a clock that does not depend on the events: the requests served so far, ``N``.
A start in a step from ``N_{s-1}`` to ``N_s`` requests weighs ``F(N_s) - F(N_{s-1})``
with ``F(n) = 1 - 1 / (1 + log(1 + n / SCALE))``, a distribution over all times whose
tail is heavy enough that a change after an hour costs only a few nats more than a
change after a minute.

Why the false-rollback bound still holds. Each ``L_{s:t}`` (taken as 1 before ``s``) is
a nonnegative supermartingale starting at 1 when ``r <= 1``, by the argument of
``sequential``; ``w_s`` depends only on requests, which the argument conditions on. So
``Z_t = sum_s w_s L_{s:t} + (1 - F(N_t))`` (the weights not yet given out, at 1) is a
nonnegative supermartingale with ``Z_0 = 1``; so is its mixture over the alternatives,
and so is ``(1 - share) M_t + share Z_t`` with the cumulative statistic ``M_t``. Ville's
inequality bounds the chance that it ever reaches ``1/alpha`` by ``alpha``. The judge
compares this combination with its bound: the cumulative test costs ``log(1/(1-share))``
nats, the recent one ``log(1/share)`` and the weight of its start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Requests at which the clock of start weights has given out about half its weight
#: over ``log``: ``F(SCALE) = 0.41``, ``F(100 SCALE) = 0.82``.
SCALE = 1000.0


def start_weight_spent(requests: int, scale: float = SCALE) -> float:
    """``F(requests)``: the weight given to starts up to this many requests."""
    return 1 - 1 / (1 + math.log1p(requests / scale))


def advance(recent: Sequence[float], step_terms: Sequence[float], requests_before: int,
            requests_after: int, scale: float = SCALE) -> tuple[float, ...]:
    """``log R_t(g)`` from ``log R_{t-1}(g)`` (empty: no start yet) and the step's log
    likelihood ratios; a step starting at ``requests_before`` requests, ending at
    ``requests_after``."""
    weight = (start_weight_spent(requests_after, scale)
              - start_weight_spent(requests_before, scale))
    log_weight = math.log(weight) if weight > 0 else -math.inf
    previous = recent or [-math.inf] * len(step_terms)
    updated = []
    for before, term in zip(previous, step_terms, strict=True):
        top = max(before, log_weight)
        if math.isinf(top):
            updated.append(-math.inf)
            continue
        updated.append(top + math.log(math.exp(before - top) + math.exp(log_weight - top))
                       + term)
    return tuple(updated)


def combined_log_statistic(cumulative: float, recent: Sequence[float], requests: int,
                           share: float, scale: float = SCALE) -> float:
    """``log((1 - share) M_t + share Z_t)``: ``cumulative`` is ``log M_t``, ``recent``
    the ``log R_t(g)`` of the alternatives (mixed with equal weights)."""
    if share <= 0:
        return cumulative
    left = 1 - start_weight_spent(requests, scale)
    finite = [v for v in recent if not math.isinf(v)]
    terms = [math.log1p(-share) + cumulative] if share < 1 else []
    if finite:
        top = max(finite)
        mixed = top + math.log(math.fsum(math.exp(v - top) for v in finite) / len(recent))
        terms.append(math.log(share) + mixed)
    if left > 0:
        terms.append(math.log(share) + math.log(left))
    top = max(terms)
    return top + math.log(math.fsum(math.exp(t - top) for t in terms))
