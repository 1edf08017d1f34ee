"""Exponential backoff: the waits grow by doubling up to the cap, spread by the jitter."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canary.backoff import Backoff

seconds = st.floats(min_value=0.001, max_value=3600.0)
retries = st.integers(min_value=1, max_value=5000)
jitters = st.floats(min_value=0.0, max_value=0.99)


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    initial = draw(seconds)
    cap = draw(seconds.filter(lambda cap: cap >= initial))
    return Backoff(initial, cap, draw(jitters))


class TestGrowth:
    def test_the_first_retry_waits_the_initial_time_then_each_wait_doubles(self) -> None:
        backoff = Backoff(0.5, 30.0)
        assert [backoff.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]

    @given(backoffs(), retries)
    def test_waits_grow_until_the_cap(self, backoff: Backoff, retry: int) -> None:
        now, after = backoff.base(retry), backoff.base(retry + 1)
        assert after == min(2 * now, backoff.cap) or after == backoff.cap
        assert after >= now

    @given(backoffs(), retries)
    def test_a_wait_never_exceeds_the_cap(self, backoff: Backoff, retry: int) -> None:
        assert backoff.base(retry) <= backoff.cap

    def test_a_huge_number_of_retries_waits_the_cap(self) -> None:
        assert Backoff(0.2, 30.0).base(10**9) == 30.0


class TestJitter:
    @given(backoffs(), retries, st.floats(min_value=0.0, max_value=1.0))
    def test_jitter_stays_within_its_bounds(self, backoff: Backoff, retry: int,
                                            draw: float) -> None:
        def uniform(low: float, high: float) -> float:
            return low + (high - low) * draw

        wait, base = backoff.delay(retry, uniform), backoff.base(retry)
        assert base * (1 - backoff.jitter) * (1 - 1e-9) <= wait
        assert wait <= base * (1 + backoff.jitter) * (1 + 1e-9)
        assert wait <= backoff.cap * (1 + backoff.jitter) * (1 + 1e-9)

    def test_jitter_spreads_the_waits(self) -> None:
        waits = {Backoff(1.0, 10.0, jitter=0.2).delay(1) for _ in range(50)}
        assert len(waits) > 1 and all(0.8 <= w <= 1.2 for w in waits)

    def test_without_jitter_no_random_number_is_drawn(self) -> None:
        def refuse(low: float, high: float) -> float:
            raise AssertionError("drawn")

        assert Backoff(1.0, 10.0).delay(3, refuse) == 4.0
