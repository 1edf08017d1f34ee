"""Template values are checked by where the template puts them: whatever a value holds,
the rendered query has the template's structure, or the value is refused naming itself,
its position and the place in the template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from canary.errors import ConfigError
from canary.metrics.promql import PLACEHOLDER, Kind, Token, string_value, tokenize, unquote
from canary.metrics.queries import QueryContext, render

FIXTURES = Path(__file__).parents[1] / "cli" / "fixtures" / "flagger" / "metric-templates.yaml"

#: A template per position kind, with a value the position accepts.
CASES = {
    "match": ('x{a="{{ variables.v }}",b="c"} > 1', "web"),
    "not match, single quotes": ("x{a!='{{ variables.v }}'}", "web"),
    "match, backticks": ("x{a=`{{ variables.v }}`}", "web"),
    "function string": ('label_join(x, "d", "{{ variables.v }}", "a", "b")', ","),
    "regex, alone": ('x{a=~"{{ variables.v }}"}', "5..|4.."),
    "regex, surrounded": ('x{a!~"pre-{{ variables.v }}-post",b="c"}', "a|b"),
    "regex, quantified": ('x{a=~"{{ variables.v }}+"}', "ab"),
    "regex, marked": ('x{a=~"{{ variables.v | regex }}.+"}', "/api/.*"),
    "label_replace regex": ('label_replace(x, "d", "$1", "s", "{{ variables.v }}(.*)")', "a"),
    "range": ("rate(x[{{ variables.v }}]) > 0", "5m"),
    "subquery step": ("max_over_time(x[1h:{{ variables.v }}])", "1m"),
    "offset": ("x offset {{ variables.v }} + 1", "1h"),
    "number": ("x > {{ variables.v }}", "0.95"),
    "function argument": ("topk({{ variables.v }}, x)", "5"),
    "metric name": ('{{ variables.v }}{a="b"} + 1', "up"),
    "glued name": ("x_{{ variables.v }}_total", "5xx"),
    "grouping label": ("sum by ({{ variables.v }}) (x)", "le"),
    "label name": ('x{ {{ variables.v }}="b"}', "job"),
    "quoted name": ('{"{{ variables.v }}"="b"}', "http.method"),
    "comment": ("x # {{ variables.v }}\n + 1", "a note"),
    "among other placeholders": (
        '100 * sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}",response_code=~"{{ variables.v }}"}'
        '[{{ interval }}])) / sum(rate(istio_requests_total{destination_workload="{{ target }}"}'
        '[{{ interval }}]))', "5.."),
}
HOSTILE = ['"', "'", "`", "\\", '"} or vector(1) or x{a="', "nomatch|.*", ".*", "|", ")",
           "(", "}", "]", "{", "+0", "0*up+0", "\n", "\r", "a\nb", "5m]) or vector(1", "é",
           "\u2028", "\x00", "\x85", "{{ name }}", "or", "offset", "Inf", "1e3", "-1", "5..",
           "a)|(b", "\\Q", "[a", "5m", "up", "le", "a b", "# c", "\\.", "(?i)", "a|", "ab",
           "😀", " ", ","]
VALUES = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12),
                   st.lists(st.sampled_from([*HOSTILE, "a", "5", "m", "."]), max_size=4)
                   .map("".join))


def context(value: str) -> QueryContext:
    return QueryContext(name="web", namespace="shop", target="web", service="web",
                        interval="1m", variables={"v": value})


def rendered_offset(template: str) -> int:
    """Where the value of ``{{ variables.v }}`` starts in the rendered query (the other
    placeholders' values are written as they are: short names and the interval)."""
    plain = {"name": "web", "namespace": "shop", "target": "web", "service": "web",
             "interval": "1m"}
    offset = template.index("{{ variables.v")
    return offset + sum(len(plain[m.group(1)]) - len(m.group(0))
                        for m in PLACEHOLDER.finditer(template, 0, offset))


def own_token(tokens: list[Token], offset: int) -> int:
    return next(i for i, t in enumerate(tokens) if t.start <= offset < t.end)


def inserted(template: str, token: Token) -> str:
    """What a string token of the rendered query holds between the template's text."""
    literal = next(t for t in tokenize(template, placeholders=True)
                   if t.kind is Kind.STRING and any(h.key == "variables.v" for h in t.holes))
    hole = next(h for h in literal.holes if h.key == "variables.v")
    quote = literal.text[0]
    prefix = unquote(template[literal.start + 1:hole.start], quote)
    suffix = unquote(template[hole.end:literal.end - 1], quote)
    value = string_value(token)
    assert value.startswith(prefix) and value.endswith(suffix)
    return value[len(prefix):len(value) - len(suffix)]


class TestStructure:
    @settings(max_examples=600)
    @given(st.sampled_from(sorted(CASES)), VALUES)
    @example("regex, alone", "nomatch|.*")
    @example("number", "0*up+0")
    @example("match", '"} or vector(1) or x{a="')
    def test_a_value_keeps_the_templates_structure_or_is_refused(self, case: str,
                                                                 value: str) -> None:
        template, accepted = CASES[case]
        reference = tokenize(render(template, context(accepted)))
        try:
            rendered = tokenize(render(template, context(value)))
        except ConfigError as exc:
            assert "templateVariables.v" in str(exc)
            return
        offset = rendered_offset(template)
        own = own_token(reference, offset)
        assert len(rendered) == len(reference)
        for index, (got, want) in enumerate(zip(rendered, reference, strict=True)):
            assert got.kind is want.kind
            if index != own:
                assert got.text == want.text
        token = rendered[own]
        if token.kind is Kind.STRING:
            middle = inserted(template, token)
            assert middle in (value, f"(?:{value})")
        else:
            assert value in token.text

    @pytest.mark.parametrize("case", sorted(CASES))
    def test_each_position_accepts_what_belongs_there(self, case: str) -> None:
        template, accepted = CASES[case]
        assert accepted in render(template, context(accepted))


class TestRegularExpressions:
    @given(st.lists(st.text(alphabet="abc05.-/", min_size=1, max_size=4), min_size=1,
                    max_size=3))
    def test_an_alternation_stays_in_its_slot(self, alternatives: list[str]) -> None:
        query = render('x{a=~"pre-{{ variables.v }}-post"}',
                       context("|".join(alternatives)))
        pattern = string_value(tokenize(query)[4])
        for alternative in alternatives:
            sample = alternative.replace(".", "z")
            assert re.fullmatch(pattern, f"pre-{sample}-post")
            assert not re.fullmatch(pattern, f"{sample}-post")
            assert not re.fullmatch(pattern, f"pre-{sample}")

    @pytest.mark.parametrize("value", ["5..|4..", "GET|POST", "inbound", "my.app", "a\\|b",
                                       "/api/v1", ""])
    def test_literal_alternations_are_sent_as_written(self, value: str) -> None:
        query = render('x{a=~"{{ variables.v }}"}', context(value))
        assert string_value(tokenize(query)[4]) == value

    @pytest.mark.parametrize(("value", "reason"), [
        ("nomatch|.*", "'\\*'"), (".*", "'\\*'"), ("(a|b)", "'\\('"), ("[45]..", "'\\['"),
        ("^a", "'\\^'"), ("a|", "empty alternative"), ("\\d", "backslash"),
        ("\\Q", "backslash")])
    def test_patterns_are_refused_unless_the_template_marks_them(self, value: str,
                                                                  reason: str) -> None:
        with pytest.raises(ConfigError, match=reason) as error:
            render('x{a=~"{{ variables.v }}"}', context(value))
        assert "{{ variables.NAME | regex }}" in str(error.value)

    def test_a_marked_placeholder_takes_any_whole_pattern_grouped(self) -> None:
        query = render('x{a=~"{{ variables.v | regex }}-canary"}', context("nomatch|.*"))
        assert string_value(tokenize(query)[4]) == "(?:nomatch|.*)-canary"
        whole = render('x{a=~"{{ variables.v | regex }}"}', context("[45]..|/api/.*"))
        assert string_value(tokenize(whole)[4]) == "[45]..|/api/.*"

    @pytest.mark.parametrize(("value", "reason"), [
        ("a)|(b", "closes a group"), ("(a", "group open"), ("[a", "class open"),
        ("a\\", "lone backslash"), ("\\Qa", "quote open"), ("a{", "{ open")])
    def test_a_marked_value_must_close_what_it_opens(self, value: str, reason: str) -> None:
        with pytest.raises(ConfigError, match=reason):
            render('x{a=~"{{ variables.v | regex }}"}', context(value))

    def test_names_are_literals_in_patterns(self) -> None:
        values = QueryContext(name="web", namespace="shop", target="web.v2", service="web",
                              interval="1m", variables={})
        query = render('x{a=~"{{ target }}-[0-9a-z]+"}', values)
        assert string_value(tokenize(query)[4]) == "web\\.v2-[0-9a-z]+"


class TestRefusedTemplates:
    @pytest.mark.parametrize(("template", "reason"), [
        ("x{a={{ variables.v }}}", "must be quoted"),
        ("x > 1{{ variables.v }}", "glued to a number"),
        ("{{ variables.v }}{{ target }}{}", "run together"),
        ("x[{{ variables.v }}m]", "stand alone"),
        ('x{a=~"[{{ variables.v }}]"}', "character class"),
        ('x{a=~"a\\\\{{ variables.v }}"}', "backslash"),
        ('x{a=~"(?{{ variables.v }})a"}', "flags or name"),
        ('x{a=~"a{{{ variables.v }}}"}', "repetition"),
        ('x{a="{{ variables.v | regex }}"}', "belongs in a regex matcher"),
        ('x{a=~"{{ target | regex }}"}', "only a template variable"),
        ('x{a=~"{{ variables.v | upper }}"}', "unknown filter"),
        ('x{a="{{ variables.v }}}', "does not parse"),
        ('x{a=~"{{ target }}[{{ variables.v }}]"}', "{{ variables.v }} at"),
    ])
    def test_a_placeholder_where_no_value_is_safe_refuses_the_template(
            self, template: str, reason: str) -> None:
        with pytest.raises(ConfigError, match=re.escape(reason)):
            render(template, context("5"))


class TestMessages:
    def test_a_refused_value_names_itself_its_position_and_the_template(self) -> None:
        with pytest.raises(ConfigError) as error:
            render('sum(x{code=~"{{ variables.v }}"}) > 1', context("nomatch|.*"))
        message = str(error.value)
        assert message.startswith("templateVariables.v 'nomatch|.*' is in a label "
                                  "matcher's string (=~) at ")
        assert '`sum(x{code=~"{{ variables.v }}"}) > 1`' in message

    @pytest.mark.parametrize(("template", "value", "where"), [
        ("x > {{ variables.v }}", "0*up+0", "a number position"),
        ("rate(x[{{ variables.v }}])", "5m])", "a range or duration"),
        ("x offset -{{ variables.v }}", "5", "a range or duration"),
        ("{{ variables.v }}{}", "or", "a metric or function name"),
        ("x_{{ variables.v }}", "a-b", "a name"),
        ('x{"{{ variables.v }}"="a"}', "a b", "a quoted name"),
        ("x # {{ variables.v }}", "a\nb", "a comment")])
    def test_each_position_says_what_it_takes(self, template: str, value: str,
                                              where: str) -> None:
        with pytest.raises(ConfigError, match=f"templateVariables.v .* is in {where} at"):
            render(template, context(value))

    def test_the_interval_is_checked_where_it_is_used(self) -> None:
        assert render("x[{{ interval }}]", context("")) == "x[1m]"
        with pytest.raises(ConfigError, match="interval '1m' is in a number position"):
            render("x / {{ interval }}", context(""))


class TestRealTemplates:
    def test_flaggers_documented_templates_render(self) -> None:
        documents = [d for d in yaml.safe_load_all(FIXTURES.read_text())
                     if d and d["kind"] == "MetricTemplate"
                     and d["spec"]["provider"]["type"] == "prometheus"]
        assert documents
        values = QueryContext(name="podinfo", namespace="test", target="podinfo",
                              service="podinfo", interval="1m",
                              variables={"direction": "inbound"})
        for document in documents:
            query = render(document["spec"]["query"], values)
            assert "{{" not in query and tokenize(query)
