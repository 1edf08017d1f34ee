"""The Canary model reads Flagger-shaped manifests and derives what the controller needs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.models.base import format_duration, parse_duration
from canary.models.canary import Canary, CanaryAnalysis, CanaryMetric


def analysis(**fields: object) -> CanaryAnalysis:
    return CanaryAnalysis.model_validate({"interval": "1m", "threshold": 5, **fields})


class TestDurations:
    @pytest.mark.parametrize(("text", "seconds"), [
        ("30s", 30), ("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("1.5s", 1.5)])
    def test_go_style_durations(self, text: str, seconds: float) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "1", "1d", "m", "-1s", "1 m"])
    def test_malformed_durations_are_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(text)

    @given(st.integers(min_value=0, max_value=10**6))
    def test_formatting_round_trips(self, seconds: int) -> None:
        assert parse_duration(format_duration(seconds)) == seconds


class TestWeightSteps:
    def test_step_weight_walks_to_max_weight(self) -> None:
        assert analysis(stepWeight=10, maxWeight=50).weight_steps() == [10, 20, 30, 40, 50]

    def test_a_last_partial_step_ends_exactly_at_max_weight(self) -> None:
        assert analysis(stepWeight=20, maxWeight=50).weight_steps() == [20, 40, 50]

    def test_max_weight_defaults_to_100(self) -> None:
        assert analysis(stepWeight=50).weight_steps() == [50, 100]

    def test_explicit_step_weights_are_used_as_given(self) -> None:
        assert analysis(stepWeights=[1, 5, 25, 50]).weight_steps() == [1, 5, 25, 50]

    @given(st.integers(1, 100), st.integers(1, 100))
    def test_steps_increase_and_end_at_max_weight(self, step: int, top: int) -> None:
        if step > top:
            return
        steps = analysis(stepWeight=step, maxWeight=top).weight_steps()
        assert steps[-1] == top
        assert steps == sorted(set(steps))


class TestMetricBounds:
    def test_threshold_range(self) -> None:
        metric = CanaryMetric.model_validate(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}})
        assert metric.bounds() == (99, None)

    def test_deprecated_threshold_means_minimum_for_success_rate_maximum_otherwise(self) -> None:
        assert CanaryMetric(name="request-success-rate", threshold=99).bounds() == (99, None)
        assert CanaryMetric(name="request-duration", threshold=500).bounds() == (None, 500)


def test_a_flagger_manifest_reads_with_only_the_api_version_changed() -> None:
    canary = Canary.model_validate({
        "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "progressDeadlineSeconds": 60,
            "service": {"port": 9898, "targetPort": 9898, "gateways": ["public-gateway"],
                        "hosts": ["app.example.com"],
                        "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
            "analysis": {
                "interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 99},
                     "interval": "1m"},
                    {"name": "request-duration", "thresholdRange": {"max": 500},
                     "interval": "30s"}],
                "webhooks": [{"name": "load-test", "url": "http://flagger-loadtester.test/",
                              "timeout": "5s", "metadata": {"cmd": "hey -z 1m"}}]},
        },
    })
    assert canary.spec.analysis.weight_steps() == [10, 20, 30, 40, 50]
    assert canary.spec.service.traffic_policy == {"tls": {"mode": "DISABLE"}}
    assert canary.to_api()["spec"]["analysis"]["maxWeight"] == 50
