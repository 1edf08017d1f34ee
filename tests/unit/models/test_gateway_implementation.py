"""spec.service.gatewayImplementation: any implementation may be named; one whose
metrics canary does not know is refused at apply with built-in checks or a judge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.models import crds
from canary.models.canary import Canary, CanaryService


class TestGatewayImplementationAtApply:
    """The API server refuses what canary could only refuse later: built-in checks or a
    judge on a Gateway API implementation whose metrics canary does not know."""

    def rules(self) -> dict[str, str]:
        spec = crds.structural(Canary)["properties"]["spec"]
        return {r["message"]: r["rule"] for r in spec["x-kubernetes-validations"]}

    def test_the_rules_name_the_field_and_every_builtin(self) -> None:
        rules = self.rules()
        metrics = next(rule for message, rule in rules.items()
                       if message.startswith("spec.analysis.metrics: "))
        judge = next(rule for message, rule in rules.items()
                     if message.startswith("spec.analysis.judge reads"))
        for rule in (metrics, judge):
            assert "self.service.gatewayImplementation in ['istio', 'envoy-gateway']" in rule
            assert "self.provider == 'gatewayapi:v1'" in rule
        assert "['request-success-rate', 'request-duration']" in metrics
        assert "!has(m.templateRef)" in metrics

    @given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True))
    def test_any_implementation_name_is_a_valid_field(self, name: str) -> None:
        service = CanaryService.model_validate({"port": 80, "gatewayImplementation": name})
        assert service.gateway_implementation == name

    @pytest.mark.parametrize("name", ["Envoy", "envoy_gateway", "-x", "a" * 64])
    def test_a_name_that_is_not_a_label_is_refused(self, name: str) -> None:
        with pytest.raises(ValueError):
            CanaryService.model_validate({"port": 80, "gatewayImplementation": name})
