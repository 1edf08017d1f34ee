"""A request the API server refused for load is sent again after the pause it asks
for, a bounded number of times; any other answer goes to the caller at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.kube.throttle import ThrottleSettings, wait_before_resending

SETTINGS = ThrottleSettings(attempts=6, default_wait_seconds=1.0, max_wait_seconds=10.0)


def test_a_429_waits_as_long_as_retry_after_says() -> None:
    assert wait_before_resending(429, "3", 1, SETTINGS) == 3.0


def test_a_429_without_retry_after_waits_the_default() -> None:
    assert wait_before_resending(429, None, 1, SETTINGS) == 1.0
    assert wait_before_resending(429, "Wed, 21 Oct 2026 07:28:00 GMT", 1, SETTINGS) == 1.0


def test_a_5xx_is_sent_again_only_when_the_server_says_when() -> None:
    """A shutting-down API server answers 503 with Retry-After; a bare 500 is an answer
    about the request, which the caller must see."""
    assert wait_before_resending(503, "1", 1, SETTINGS) == 1.0
    assert wait_before_resending(500, None, 1, SETTINGS) is None


@pytest.mark.parametrize("status", [200, 201, 404, 409, 410, 422])
def test_other_answers_go_to_the_caller(status: int) -> None:
    assert wait_before_resending(status, "1", 1, SETTINGS) is None


@given(st.integers(min_value=1, max_value=20), st.floats(min_value=0, max_value=1e6))
def test_pauses_are_bounded_and_attempts_too(attempt: int, asked: float) -> None:
    wait = wait_before_resending(429, str(asked), attempt, SETTINGS)
    if attempt >= SETTINGS.attempts:
        assert wait is None
    else:
        assert wait is not None and 0 <= wait <= SETTINGS.max_wait_seconds


def test_impossible_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        ThrottleSettings(attempts=0)
