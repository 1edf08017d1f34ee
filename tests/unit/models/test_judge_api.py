"""The judge's API: analysis.judge in the spec, its evidence in the status."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from canary.models import crds
from canary.models.canary import (
    MAXIMUM_PERCENT,
    MAXIMUM_RATIO,
    CanaryJudge,
    Effect,
    JudgeMetric,
    parse_effect,
)


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
                                      "-10%", "1.5 x", "+0.5 pp", "50%", "2000x",
                                      "1000.001x", "+100000%", "+99900.01%"])
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

    @pytest.mark.parametrize(("text", "ratio"), [("1000x", 1000.0), ("+99900%", 1000.0)])
    def test_the_largest_effects_are_accepted(self, text: str, ratio: float) -> None:
        assert parse_effect(text).ratio == pytest.approx(ratio)

    def test_excluded_sources_are_workload_names(self) -> None:
        parsed = judge({"name": "e", "type": "errorRate"},
                       excludeSources=["canary-loadtester", "hey.tools"])
        assert parsed.exclude_sources == ["canary-loadtester", "hey.tools"]
        assert judge({"name": "e", "type": "errorRate"}).exclude_sources is None
        for bad in ('load"}', "Load", "a|b", "", "a b"):
            with pytest.raises(ValidationError, match=r"exclude_sources|excludeSources"):
                judge({"name": "e", "type": "errorRate"}, excludeSources=[bad])

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

    def test_the_cel_rules_bound_effects_as_the_models_do(self) -> None:
        # A Canary the API server accepts must be one the controller can read: the rules
        # carry the models' upper bounds (the e2e tests apply them to a real API server).
        metric = self.schema()["properties"]["spec"]["properties"]["analysis"]["properties"][
            "judge"]["properties"]["metrics"]["items"]
        rules = {r["message"]: r["rule"] for r in metric["x-kubernetes-validations"]}
        ratio = next(rule for message, rule in rules.items() if "ratio" in message)
        relative = next(rule for message, rule in rules.items() if "relative" in message)
        assert f"<= {MAXIMUM_RATIO:.1f}" in ratio and "> 1.0" in ratio
        assert f"<= {MAXIMUM_PERCENT:.1f}" in relative and "> 0.0" in relative
        assert parse_effect(f"{MAXIMUM_RATIO:g}x").ratio == MAXIMUM_RATIO
        assert parse_effect(f"+{MAXIMUM_PERCENT:g}%").ratio == pytest.approx(MAXIMUM_RATIO)
        for text in (f"{MAXIMUM_RATIO + 0.1:g}x", f"+{MAXIMUM_PERCENT + 0.1:g}%"):
            with pytest.raises(ValueError, match="at most"):
                parse_effect(text)
        judge_schema = self.schema()["properties"]["spec"]["properties"]["analysis"][
            "properties"]["judge"]
        sources = judge_schema["properties"]["excludeSources"]
        assert sources["maxItems"] == 16 and "pattern" in sources["items"]

    def test_the_status_keeps_the_judge_state_typed_and_bounded(self) -> None:
        status = self.schema()["properties"]["status"]["properties"]["judge"]
        metric = status["properties"]["metrics"]["items"]["properties"]
        state = metric["state"]["properties"]
        assert state["logLikelihoodRatios"]["maxItems"] == 64
        assert set(metric["evidence"]["properties"]) >= {
            "outcome", "ratio", "ratioLower", "ratioUpper", "logRegression",
            "logRegressionBound", "logNoRegression", "logNoRegressionBound"}
