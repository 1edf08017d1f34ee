"""Workloads answer as their pod annotations say, and bad annotations are named."""

from __future__ import annotations

import random
import statistics

import pytest

from canary.devenv.traffic import behaviour
from canary.errors import ConfigError


def test_error_rate_and_latency_quantiles_are_honoured() -> None:
    b = behaviour.from_annotations({
        behaviour.ERROR_RATE_ANNOTATION: "0.1", behaviour.LATENCY_ANNOTATION: "p50=20,p99=150"})
    rng = random.Random(5)
    samples = [b.sample(rng) for _ in range(40000)]
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
])
def test_invalid_annotations_are_refused_with_the_annotation_named(
        annotations: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        behaviour.from_annotations(annotations)
    assert "devenv.canary.dev/" in str(caught.value)
