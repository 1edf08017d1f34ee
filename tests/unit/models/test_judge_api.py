"""The judge's API: analysis.judge in the spec, its evidence in the status."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from canary.models import crds
from canary.models.canary import CanaryJudge, Effect, JudgeMetric, parse_effect


def judge(*metrics: dict[str, Any], **fields: Any) -> CanaryJudge:
    return CanaryJudge.model_validate({"metrics": list(metrics), **fields})


class TestSpec:
    def test_defaults(self) -> None:
        parsed = judge({"name": "error-rate", "type": "errorRate"})
        assert (parsed.alpha, parsed.beta, parsed.promote_early) == (0.05, 0.2, False)
        assert parsed.metrics[0].effect() == Effect(ratio=1.5)

    @pytest.mark.parametrize(("text", "effect"), [
        ("1.5x", Effect(ratio=1.5)), ("2x", Effect(ratio=2.0)), ("+20%", Effect(ratio=1.2)),
        ("+0.5pp", Effect(absolute=0.005)), ("+5pp", Effect(absolute=0.05))])
    def test_minimum_effects(self, text: str, effect: Effect) -> None:
        assert parse_effect(text) == effect

    @pytest.mark.parametrize("text", ["1x", "0.9x", "x", "1.5", "+0%", "+0pp", "+100pp",
                                      "-10%", "1.5 x", "+0.5 pp", "50%"])
    def test_meaningless_effects_are_refused(self, text: str) -> None:
        with pytest.raises(ValidationError, match=r"minimumEffect|minimum_effect"):
            JudgeMetric.model_validate({"name": "m", "type": "errorRate",
                                        "minimumEffect": text})

    @given(st.floats(min_value=1.001, max_value=1000, allow_nan=False))
    def test_any_ratio_above_one_is_accepted(self, ratio: float) -> None:
        text = f"{ratio:.3f}x"
        assert parse_effect(text).ratio == pytest.approx(float(text[:-1]))

    @pytest.mark.parametrize(("metric", "message"), [
        ({"name": "l", "type": "latency"}, "needs bound or quantile"),
        ({"name": "l", "type": "latency", "bound": 500, "quantile": 0.99},
         "needs bound or quantile"),
        ({"name": "e", "type": "errorRate", "bound": 500}, "latency metrics only"),
        ({"name": "l", "type": "latency", "quantile": 1.0}, "quantile"),
        ({"name": "l", "type": "latency", "bound": 0}, "bound"),
        ({"name": "Error Rate", "type": "errorRate"}, "name"),
        ({"name": "e", "type": "throughput"}, "type"),
    ])
    def test_invalid_metrics_are_refused(self, metric: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            judge(metric)

    @pytest.mark.parametrize("fields", [{"alpha": 0}, {"alpha": 0.6}, {"beta": 0},
                                        {"beta": 0.51}])
    def test_error_budgets_must_be_in_range(self, fields: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            judge({"name": "e", "type": "errorRate"}, **fields)

    def test_names_must_be_unique_and_there_must_be_a_metric(self) -> None:
        with pytest.raises(ValidationError, match="unique"):
            judge({"name": "e", "type": "errorRate"}, {"name": "e", "type": "errorRate"})
        with pytest.raises(ValidationError):
            judge()


class TestCrd:
    def schema(self) -> dict[str, Any]:
        manifest = crds.definitions()["canary.dev_canaries.yaml"]
        return manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]

    def test_exclusive_bounds_are_in_openapi_v3_0_form(self) -> None:
        judge_schema = self.schema()["properties"]["spec"]["properties"]["analysis"][
            "properties"]["judge"]
        alpha = judge_schema["properties"]["alpha"]
        assert alpha["minimum"] == 0 and alpha["exclusiveMinimum"] is True
        quantile = judge_schema["properties"]["metrics"]["items"]["properties"]["quantile"]
        assert quantile["maximum"] == 1 and quantile["exclusiveMaximum"] is True

    def test_the_cel_rules_are_in_the_schema(self) -> None:
        analysis = self.schema()["properties"]["spec"]["properties"]["analysis"]
        rules = [r["rule"] for r in analysis["x-kubernetes-validations"]]
        assert any("has(self.judge)" in rule for rule in rules)
        metric = analysis["properties"]["judge"]["properties"]["metrics"]["items"]
        assert len(metric["x-kubernetes-validations"]) == 5

    def test_the_status_keeps_the_judge_state_typed_and_bounded(self) -> None:
        status = self.schema()["properties"]["status"]["properties"]["judge"]
        metric = status["properties"]["metrics"]["items"]["properties"]
        state = metric["state"]["properties"]
        assert state["logLikelihoodRatios"]["maxItems"] == 64
        assert set(metric["evidence"]["properties"]) >= {
            "outcome", "ratio", "ratioLower", "ratioUpper", "logRegression",
            "logRegressionBound", "logNoRegression", "logNoRegressionBound"}
