"""Validation errors said as a manifest's author reads them: the field as the manifest spells
it, the first problem or every one, in pydantic's words or explained with the value given."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field, ValidationError

from canary.models.base import ApiModel, Duration
from canary.models.canary import Canary
from canary.models.problems import describe, field_path, kind_of


class Item(ApiModel):
    minimum_effect: int = Field(default=1, le=1000)
    interval: Duration = "1m"


class Holder(ApiModel):
    name: str = "web"
    items: list[Item] = []
    port: int | str = 80


def errors_of(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Holder.model_validate_json(json.dumps(data), strict=True)
    return caught.value


keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1,
               max_size=8)
locs = st.lists(st.one_of(keys, st.integers(0, 99)), max_size=6)


class TestFieldPath:
    """Keys joined by dots, list indexes in brackets: what a manifest's author writes."""

    def test_a_judge_metric(self) -> None:
        loc = ("spec", "analysis", "judge", "metrics", 0, "minimumEffect")
        assert field_path(loc) == "spec.analysis.judge.metrics[0].minimumEffect"

    @given(locs)
    def test_reads_back_as_the_location(self, loc: list[str | int]) -> None:
        text = field_path(loc)
        parts = re.findall(r"\[(\d+)\]|\.?([A-Za-z]+)", text)
        assert [int(index) if index else key for index, key in parts] == loc
        assert not text.startswith(".")


class TestOneLine:
    """The controller's condition, the notifier's failure and the console's view."""

    def test_a_canary_names_its_field(self) -> None:
        canary = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {
            "targetRef": {"kind": "Deployment", "name": "web"}, "service": {"port": 80},
            "analysis": {"interval": "1m", "threshold": 5, "judge": {"metrics": [
                {"name": "error-rate", "type": "errorRate", "minimumEffect": "2000x"}]}}}}
        with pytest.raises(ValidationError) as caught:
            Canary.model_validate(canary)
        said = describe(caught.value)
        assert said.startswith("spec.analysis.judge.metrics[0].minimumEffect: ")
        assert "at most 1000" in said and "more)" not in said

    @given(st.lists(st.integers(1001, 10**6), min_size=1, max_size=5))
    def test_the_first_problem_and_how_many_more(self, effects: list[int]) -> None:
        exc = errors_of({"items": [{"minimumEffect": e} for e in effects]})
        said = describe(exc)
        assert said.startswith("items[0].minimumEffect: Input should be less than or equal")
        more = len(effects) - 1
        assert said.endswith(f" (and {more} more)") if more else "more)" not in said

    @given(st.lists(st.integers(1001, 10**6), min_size=1, max_size=5))
    def test_every_problem_each_field_once(self, effects: list[int]) -> None:
        exc = errors_of({"items": [{"minimumEffect": e} for e in effects]})
        said = describe(exc, every=True).split("; ")
        assert [s.split(": ")[0] for s in said] == \
            [f"items[{i}].minimumEffect" for i in range(len(effects))]
        assert "more)" not in said[-1]

    def test_a_problem_of_the_whole_object(self) -> None:
        assert describe(errors_of([1])).startswith("the object: ")

    @given(st.text(max_size=20))
    def test_the_value_given_is_not_shown(self, text: str) -> None:
        """The notifier's and controller's messages reach other people than the author."""
        secret = f"SECRET-{text}"
        assert "SECRET-" not in describe(errors_of({"name": 1, "port": [secret],
                                                     "items": [{"interval": secret}]}),
                                          every=True)


class TestExplained:
    """``canary convert``: each field's problems in a YAML author's words, with the value."""

    @pytest.mark.parametrize(("data", "said"), [
        ({"name": 5}, 'name: expected a string, got 5'),
        ({"items": [{"minimumEffect": "x"}]}, 'items[0].minimumEffect: expected an integer, '
                                              'got "x"'),
        ({"items": [{"interval": "soon"}]}, 'items[0].interval: expected a duration such as '
                                            '30s, 1m or 1m30s, got "soon"'),
        ({"items": {"a": 1}}, "items: expected a list, got a dict"),
        ({"items": [{"minimumEffect": 2000}]}, "items[0].minimumEffect: Input should be less "
                                               "than or equal to 1000, got 2000"),
    ])
    def test_words(self, data: dict[str, object], said: str) -> None:
        assert describe(errors_of(data), every=True, explained=True) == said

    @given(st.text(min_size=61, max_size=200))
    def test_a_long_value_is_cut(self, text: str) -> None:
        said = describe(errors_of({"name": 1, "items": [{"interval": text}]}), every=True,
                        explained=True, named=False)
        shown = said.rsplit("got ", 1)[1]
        assert len(shown) == 60 and shown.endswith("...")

    def test_without_the_field(self) -> None:
        exc = errors_of({"port": 1.5})
        assert describe(exc, explained=True, named=False) == \
            "expected an integer, got 1.5 (and 1 more)"
        assert describe(exc.errors(), every=True, explained=True, named=False) == \
            "expected an integer or a string, got 1.5"


class TestKindOf:
    @pytest.mark.parametrize(("value", "kind"), [
        ([1], "a list"), ("x", "a string"), ({"a": 1}, "a dict"), (1.5, "a float")])
    def test_kinds(self, value: object, kind: str) -> None:
        assert kind_of(value) == kind
