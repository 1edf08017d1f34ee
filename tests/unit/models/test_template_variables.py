"""templateVariables values are refused at admission when no query could use them: control
characters and overlong values; everything else is judged where the query puts it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from canary.models import crds
from canary.models.canary import (
    TEMPLATE_VARIABLE_MAX_LENGTH,
    TEMPLATE_VARIABLE_PATTERN,
    CanaryMetric,
)


def metric(value: str) -> CanaryMetric:
    return CanaryMetric.model_validate({
        "name": "errors", "templateRef": {"name": "errors"}, "thresholdRange": {"max": 1},
        "templateVariables": {"codes": value}})


def schema() -> dict[str, Any]:
    manifest = crds.definitions()["canary.dev_canaries.yaml"]
    spec = manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    item = spec["properties"]["analysis"]["properties"]["metrics"]["items"]
    return item["properties"]["templateVariables"]["additionalProperties"]  # type: ignore[no-any-return]


class TestValues:
    @pytest.mark.parametrize("value", ["5..|4..", 'a "quoted" value', "a\\b", "é😀", "",
                                       "/api/.*", "x" * TEMPLATE_VARIABLE_MAX_LENGTH])
    def test_values_a_query_could_use_are_accepted(self, value: str) -> None:
        assert metric(value).template_variables == {"codes": value}

    @pytest.mark.parametrize("value", ["5..\n", "a\tb", "\x00", "\x7f", "\x85",
                                       "x" * (TEMPLATE_VARIABLE_MAX_LENGTH + 1)])
    def test_control_characters_and_overlong_values_are_refused(self, value: str) -> None:
        with pytest.raises(ValidationError, match="codes"):
            metric(value)


class TestCrd:
    def test_the_api_server_checks_what_the_model_checks(self) -> None:
        values = schema()
        assert values["pattern"] == TEMPLATE_VARIABLE_PATTERN
        assert values["maxLength"] == TEMPLATE_VARIABLE_MAX_LENGTH

    @given(st.text(max_size=20))
    def test_the_pattern_means_no_control_character(self, value: str) -> None:
        # The API server reads the pattern with RE2; for a class of escapes RE2 and
        # Python agree, so Python's reading stands for the API server's.
        controls = any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value)
        assert (re.fullmatch(TEMPLATE_VARIABLE_PATTERN, value) is None) == controls
        accepted = True
        try:
            metric(value)
        except ValidationError:
            accepted = False
        assert accepted != controls
