"""What the judge's property tests draw: one step's counts, and the exact probability of
a binomial count, for expectations over the next step."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from canary.core.judge import Counts

#: One step's counts, events never above requests.
steps = st.builds(
    lambda cr, ce, pr, pe: Counts(cr, min(ce, cr), pr, min(pe, pr)),
    st.integers(0, 400), st.integers(0, 12), st.integers(0, 4000), st.integers(0, 40))


def binomial_pmf(m: int, p: float, x: int) -> float:
    return math.comb(m, x) * p**x * (1 - p) ** (m - x)
