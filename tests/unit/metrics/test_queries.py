"""Query templates are filled safely: no value can change a query's structure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.errors import ConfigError
from canary.metrics.builtins import ISTIO_BUILTINS
from canary.metrics.promql import Kind, string_value, tokenize
from canary.metrics.queries import QueryContext, render


def context(**overrides: object) -> QueryContext:
    values: dict[str, object] = {"name": "web", "namespace": "shop", "target": "web",
                                 "service": "web", "interval": "1m", "variables": {}}
    values.update(overrides)
    return QueryContext(**values)  # type: ignore[arg-type]


def test_the_builtin_success_rate_has_flaggers_semantics() -> None:
    query = render(ISTIO_BUILTINS["request-success-rate"], context())
    assert 'destination_workload_namespace="shop"' in query
    assert 'destination_workload=~"web"' in query
    assert 'response_code!~"5.*"' in query
    assert "[1m]" in query and query.endswith("* 100")


def test_variables_and_all_placeholders_are_filled() -> None:
    query = render('x{a="{{ variables.code }}",s="{{service}}",n="{{ name }}"}[{{ interval }}]',
                   context(variables={"code": "5.."}))
    assert query == 'x{a="5..",s="web",n="web"}[1m]'


@pytest.mark.parametrize("value", ['5"} or vector(1) or x{a="', "a\\b", "a\nb", "{{ name }}",
                                   "`x`", "5'", "5m]) or vector(1", "a b", "(a|b)"])
def test_a_variable_in_a_string_is_escaped_and_cannot_end_it(value: str) -> None:
    query = render('x{a="{{ variables.code }}"}', context(variables={"code": value}))
    tokens = tokenize(query)
    assert [t.text for t in tokens if t.kind is not Kind.STRING] == ["x", "{", "a", "=", "}"]
    assert string_value(tokens[4]) == value


@given(st.text(alphabet="abcXYZ019_.:/*+?|^$-", max_size=30))
def test_safe_variables_appear_verbatim_inside_their_quotes(value: str) -> None:
    assert render('x{a="{{ variables.v }}"}', context(variables={"v": value})) == \
        f'x{{a="{value}"}}'


@pytest.mark.parametrize(("field", "value"), [("namespace", 'shop"}'), ("target", "Web App"),
                                              ("interval", "1 minute")])
def test_names_and_the_interval_must_be_what_kubernetes_allows(field: str, value: str) -> None:
    with pytest.raises(ConfigError, match=field):
        render("x", context(**{field: value}))


def test_unknown_placeholders_and_missing_variables_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown placeholder"):
        render("{{ cluster }}", context())
    with pytest.raises(ConfigError, match="no 'missing'"):
        render("{{ variables.missing }}", context())
