"""Ages read as ``kubectl get`` shows them: two units while the smaller one still matters."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.console.render import age

UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _seconds(text: str) -> int:
    return sum(int(n) * UNIT_SECONDS[u] for n, u in re.findall(r"(\d+)([dhms])", text))


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (192, "3m12s"), (599, "9m59s"),
    (600, "10m"), (2820, "47m"), (10799, "179m"), (10800, "3h"), (18600, "5h10m"),
    (28799, "7h59m"), (28800, "8h"), (172799, "47h"), (172800, "2d"), (-5, "0s"),
])
def test_examples(seconds: int, shown: str) -> None:
    """Each band of durations with its own form."""
    assert age(seconds) == shown


@given(st.integers(min_value=0, max_value=10**8))
def test_an_age_never_overstates_and_drops_less_than_its_smallest_unit(seconds: int) -> None:
    """What is shown is the duration cut down to its smallest unit shown."""
    shown = age(seconds)
    smallest = UNIT_SECONDS[shown[-1]]
    assert 0 <= seconds - _seconds(shown) < smallest
    assert not re.search(r"[a-z]0[a-z]", shown)  # no "3m0s": a zero rest is left out
