"""Workloads answer as their pod annotations say (an error-rate ramp as the pod's age
says), and bad annotations are named."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.devenv.traffic import behaviour
from canary.errors import ConfigError


def test_error_rate_and_latency_quantiles_are_honoured() -> None:
    b = behaviour.from_annotations({
        behaviour.ERROR_RATE_ANNOTATION: "0.1", behaviour.LATENCY_ANNOTATION: "p50=20,p99=150"})
    rng = random.Random(5)
    samples = [b.sample(rng, 0.0) for _ in range(40000)]
    errors = sum(1 for status, _ in samples if status == 500) / len(samples)
    latencies = sorted(latency for _, latency in samples)
    assert errors == pytest.approx(0.1, abs=0.006)
    assert statistics.median(latencies) == pytest.approx(20, rel=0.05)
    assert latencies[int(0.99 * len(latencies))] == pytest.approx(150, rel=0.1)


def test_no_annotations_means_healthy_and_fast() -> None:
    b = behaviour.from_annotations({})
    assert b.error_rate == 0
    assert b.median_ms == 10


@pytest.mark.parametrize(("annotations", "named"), [
    ({behaviour.ERROR_RATE_ANNOTATION: "ten percent"}, "not a number"),
    ({behaviour.ERROR_RATE_ANNOTATION: "1.5"}, "fraction"),
    ({behaviour.LATENCY_ANNOTATION: "p99=100"}, "needs p50"),
    ({behaviour.LATENCY_ANNOTATION: "p50=20,p42=30"}, "unknown quantile"),
    ({behaviour.LATENCY_ANNOTATION: "p50=200,p99=100"}, "below p50"),
    ({behaviour.LATENCY_ANNOTATION: "p50=-1"}, "positive"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: "40s=0.2,20s=0.005"}, "times must increase"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: "20s=0.005,20s=0.2"}, "times must increase"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: "20s=0.005,40s=1.2"}, "fraction"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: "20s=-0.1"}, "fraction"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: "20s=nan"}, "fraction"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: "20s=much"}, "not a number"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: "20=0.1"}, "duration=fraction"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: "20s"}, "duration=fraction"),
    ({behaviour.ERROR_RATE_RAMP_ANNOTATION: " , "}, "no point"),
    ({behaviour.ERROR_RATE_ANNOTATION: "0.1",
      behaviour.ERROR_RATE_RAMP_ANNOTATION: "20s=0.2"}, "not both"),
])
def test_invalid_annotations_are_refused_with_the_annotation_named(
        annotations: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        behaviour.from_annotations(annotations)
    assert "devenv.canary.dev/" in str(caught.value)
    for name in annotations:
        if name in str(caught.value):
            break
    else:
        raise AssertionError(f"{caught.value} names none of {list(annotations)}")



#: Ramps of 1 to 5 points: times (whole milliseconds) strictly increasing, rates in [0, 1].
RAMP_POINTS = st.lists(st.tuples(st.integers(0, 3_600_000), st.floats(0, 1)), min_size=1,
                       max_size=5, unique_by=lambda p: p[0]).map(sorted)


def ramp_text(points: list[tuple[int, float]]) -> str:
    return ",".join(f"{ms}ms={rate!r}" for ms, rate in points)


class TestErrorRateRamp:
    """``error-rate-ramp`` makes the error rate a function of the pod's age: linear between
    its points, flat before the first and after the last."""

    def test_the_documented_example(self) -> None:
        b = behaviour.from_annotations({behaviour.ERROR_RATE_RAMP_ANNOTATION:
                                        "20s=0.005, 40s=0.2"})
        assert [b.error_rate_at(age) for age in (0, 20, 40, 600)] == [0.005, 0.005, 0.2, 0.2]
        assert b.error_rate_at(30) == pytest.approx(0.1025)

    def test_durations_are_the_canarys(self) -> None:
        ramp = behaviour.parse_ramp("500ms=0,1m30s=0.5,1h=1")
        assert ramp.points == ((0.5, 0.0), (90.0, 0.5), (3600.0, 1.0))

    @given(RAMP_POINTS)
    def test_the_annotation_gives_its_points(self, points: list[tuple[int, float]]) -> None:
        ramp = behaviour.parse_ramp(ramp_text(points))
        assert [seconds for seconds, _ in ramp.points] == pytest.approx(
            [ms / 1000 for ms, _ in points])
        assert [rate for _, rate in ramp.points] == [rate for _, rate in points]

    @given(RAMP_POINTS)
    def test_at_each_point_the_rate_is_the_points(self, points: list[tuple[int, float]]
                                                  ) -> None:
        ramp = behaviour.parse_ramp(ramp_text(points))
        for seconds, rate in ramp.points:
            assert ramp.rate_at(seconds) == rate

    @given(RAMP_POINTS, st.floats(0, 1))
    def test_between_points_the_rate_lies_between_theirs(
            self, points: list[tuple[int, float]], where: float) -> None:
        ramp = behaviour.parse_ramp(ramp_text(points))
        for (t0, r0), (t1, r1) in zip(ramp.points, ramp.points[1:], strict=False):
            # t0 + (t1 - t0) can round past t1, onto the next segment.
            rate = ramp.rate_at(min(t1, t0 + where * (t1 - t0)))
            assert min(r0, r1) <= rate <= max(r0, r1)
            if r0 == r1:
                assert rate == r0

    @given(RAMP_POINTS, st.floats(0, 1e9))
    def test_before_the_first_and_after_the_last_point_the_rate_is_theirs(
            self, points: list[tuple[int, float]], beyond: float) -> None:
        ramp = behaviour.parse_ramp(ramp_text(points))
        (first, first_rate), (last, last_rate) = ramp.points[0], ramp.points[-1]
        assert ramp.rate_at(first - beyond - 1e-3) == first_rate
        assert ramp.rate_at(last + beyond + 1e-3) == last_rate

    @given(st.floats(0, 1), st.floats(-1e9, 1e9))
    def test_without_a_ramp_the_age_does_not_matter(self, rate: float, age: float) -> None:
        assert behaviour.Behaviour(rate).error_rate_at(age) == rate

    def test_a_pod_fails_as_often_as_its_age_says(self) -> None:
        b = behaviour.from_annotations({behaviour.ERROR_RATE_RAMP_ANNOTATION:
                                        "20s=0.01,40s=0.3", behaviour.LATENCY_ANNOTATION:
                                        "p50=20"})
        rng = random.Random(11)
        for age, rate in ((5, 0.01), (30, 0.155), (90, 0.3)):
            failed = sum(1 for _ in range(20000) if b.sample(rng, age)[0] == 500) / 20000
            assert failed == pytest.approx(rate, abs=0.012), age
        assert b.median_ms == 20
