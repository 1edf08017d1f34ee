"""The PromQL tokenizer reads queries as Prometheus's lexer does where structure is decided."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.metrics.promql import (
    Hole,
    Kind,
    PromqlSyntaxError,
    quote_body,
    string_value,
    tokenize,
    unquote,
)


def kinds(text: str) -> list[tuple[str, str]]:
    return [(t.kind.name, t.text) for t in tokenize(text)]


class TestTokens:
    def test_a_selector_with_matchers_and_a_range(self) -> None:
        assert kinds('rate(x{a="b",c!~\'d\'}[5m])') == [
            ("IDENT", "rate"), ("OPERATOR", "("), ("IDENT", "x"), ("OPERATOR", "{"),
            ("IDENT", "a"), ("OPERATOR", "="), ("STRING", '"b"'), ("OPERATOR", ","),
            ("IDENT", "c"), ("OPERATOR", "!~"), ("STRING", "'d'"), ("OPERATOR", "}"),
            ("OPERATOR", "["), ("DURATION", "5m"), ("OPERATOR", "]"), ("OPERATOR", ")")]

    @pytest.mark.parametrize(("text", "kind"), [
        ("5", "NUMBER"), ("0.95", "NUMBER"), ("1e3", "NUMBER"), ("1.5E-3", "NUMBER"),
        (".5", "NUMBER"), ("0x1F", "NUMBER"), ("Inf", "NUMBER"), ("NaN", "NUMBER"),
        ("5m", "DURATION"), ("1h30m", "DURATION"), ("500ms", "DURATION"), ("2d", "DURATION"),
        ("job:rate5m:sum", "IDENT"), ("offset", "KEYWORD"), ("OR", "KEYWORD"),
        ("group_left", "KEYWORD"), ("sum", "IDENT")])
    def test_numbers_durations_names_and_keywords(self, text: str, kind: str) -> None:
        assert kinds(text) == [(kind, text)]

    def test_operators_take_their_longest_form(self) -> None:
        assert [t for _, t in kinds("a == b != c =~ d !~ e <= f >= g ^ h % i @ 5")][1::2] == [
            "==", "!=", "=~", "!~", "<=", ">=", "^", "%", "@"]

    def test_a_colon_in_brackets_separates_a_subquery(self) -> None:
        assert kinds("x[5m:1m]")[2:5] == [("DURATION", "5m"), ("OPERATOR", ":"),
                                          ("DURATION", "1m")]

    def test_comments_run_to_the_end_of_the_line(self) -> None:
        assert kinds("x # a \"comment\n+ 1") == [
            ("IDENT", "x"), ("COMMENT", '# a "comment'), ("OPERATOR", "+"), ("NUMBER", "1")]

    @pytest.mark.parametrize("text", ['x{a="b}', "x{a='b\n'}", "5xx", "1.5.5", "x $ y",
                                      '"\\q"', "`open"])
    def test_what_prometheus_would_not_lex_is_an_error(self, text: str) -> None:
        with pytest.raises(PromqlSyntaxError):
            tokenize(text)


class TestStrings:
    @pytest.mark.parametrize(("literal", "value"), [
        (r'"a\"b"', 'a"b'), (r"'a\'b'", "a'b"), (r'"a\\b"', "a\\b"), (r'"\n\t"', "\n\t"),
        (r'"\x41\101\u00e9\U0001F600"', "AA\u00e9\U0001F600"), ("`a\\n\"`", 'a\\n"'),
        ('"5..|4.."', "5..|4..")])
    def test_escapes_are_read_as_prometheus_reads_them(self, literal: str, value: str) -> None:
        (token,) = tokenize(literal)
        assert token.kind is Kind.STRING and string_value(token) == value

    def test_a_quote_of_the_other_kind_needs_no_escape_and_takes_none(self) -> None:
        assert string_value(tokenize("'a\"b'")[0]) == 'a"b'
        with pytest.raises(PromqlSyntaxError):
            unquote(r"a\"b", "'")

    @given(st.text(), st.sampled_from(["\"", "'", "`"]))
    def test_quoting_reads_back_as_the_value(self, value: str, quote: str) -> None:
        try:
            body = quote_body(value, quote)
        except ValueError:
            assert quote == "`"
            return
        (token,) = tokenize(f"{quote}{body}{quote}")
        assert token.kind is Kind.STRING and string_value(token) == value


class TestPlaceholders:
    def test_placeholders_are_tokens_outside_strings_and_holes_inside(self) -> None:
        tokens = tokenize('x{a="p-{{ variables.v }}"}[{{interval}}]', placeholders=True)
        assert tokens[4].holes == (Hole(7, 24, "variables.v"),)
        assert tokens[7].kind is Kind.PLACEHOLDER and tokens[7].holes[0].key == "interval"

    def test_a_filter_is_read_with_its_placeholder(self) -> None:
        (token,) = tokenize('"{{ variables.codes | regex }}"', placeholders=True)
        assert token.holes[0].filter == "regex"

    def test_a_placeholder_inside_an_escape_sequence_is_an_error(self) -> None:
        with pytest.raises(PromqlSyntaxError, match="escape sequence"):
            tokenize('"\\x{{ variables.v }}"', placeholders=True)

    def test_braces_next_to_a_placeholder_stay_braces(self) -> None:
        tokens = tokenize('x{{{ variables.label }}="a"}', placeholders=True)
        assert [t.kind for t in tokens[:3]] == [Kind.IDENT, Kind.OPERATOR, Kind.PLACEHOLDER]
