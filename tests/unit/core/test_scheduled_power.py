"""The power check along an analysis's schedule of traffic splits."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core.evidence import design
from canary.core.judge import Design, Traffic, power_check, scheduled_power_check

DESIGN = Design(1.5, 20.0)


@given(canary=st.floats(0.5, 100), primary=st.floats(1, 1000), base=st.floats(0.001, 0.2),
       steps=st.integers(1, 20))
@settings(max_examples=50, deadline=None)
def test_a_constant_schedule_is_the_constant_traffic_check(canary: float, primary: float,
                                                           base: float, steps: int) -> None:
    traffic = Traffic(canary, primary, base)
    constant = power_check(DESIGN, traffic, 10.0 * steps, 0.05, 0.2)
    scheduled = scheduled_power_check(DESIGN, [(traffic, 10.0)] * steps, 0.05, 0.2)
    assert scheduled.seconds_to_detect == pytest.approx(constant.seconds_to_detect, rel=1e-6)
    assert scheduled.seconds_to_prove == pytest.approx(constant.seconds_to_prove, rel=1e-6)
    assert scheduled.remaining_seconds == 10.0 * steps
    assert scheduled.detectable == constant.detectable


def test_growing_weights_detect_sooner_than_the_first_weight_alone() -> None:
    weights = [0.05 * k for k in range(1, 11)]
    schedule = [(Traffic(200 * w, 200 * (1 - w), 0.05), 10.0) for w in weights]
    growing = scheduled_power_check(DESIGN, schedule, 0.05, 0.2)
    first_only = scheduled_power_check(DESIGN, schedule[:1], 0.05, 0.2)
    last_only = scheduled_power_check(DESIGN, schedule[-1:], 0.05, 0.2)
    assert last_only.seconds_to_detect < growing.seconds_to_detect < \
        first_only.seconds_to_detect


def test_without_events_nothing_can_be_detected() -> None:
    check = scheduled_power_check(DESIGN, [(Traffic(10, 90, 0.0), 60.0)], 0.05, 0.2)
    assert math.isinf(check.seconds_to_detect) and not check.detectable


def test_the_crossing_falls_inside_the_step_where_it_happens() -> None:
    traffic = Traffic(20, 180, 0.05)
    constant = power_check(DESIGN, traffic, 1000, 0.05, 0.2).seconds_to_detect
    # The same traffic, cut into steps of various lengths: the same crossing time.
    for seconds in (1.0, 7.0, 30.0):
        steps = int(constant // seconds) + 2
        check = scheduled_power_check(DESIGN, [(traffic, seconds)] * steps, 0.05, 0.2)
        assert check.seconds_to_detect == pytest.approx(constant, rel=1e-6)


@pytest.mark.parametrize(("effect", "maximum"), [(1.5, 20.0), (2.0, 20.0), (10.0, 40.0)])
def test_the_grid_reaches_at_least_four_times_the_minimum_effect(effect: float,
                                                                 maximum: float) -> None:
    assert design(effect).maximum_effect == maximum
