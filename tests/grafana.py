"""Reading the Grafana dashboards in ``dashboards/``: their panels, PromQL queries and
template variables, Grafana's interpolation of variables into PromQL (as its Prometheus
data source does it), and the metric selectors of an expression.

Shared by the unit tests (static checks) and the e2e test (the queries run against the
local environment's Prometheus).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"

#: How every panel, target, annotation and query variable names its data source.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

#: Grafana's global variables that reach a Prometheus query.
BUILTINS = frozenset({"__interval", "__interval_ms", "__rate_interval", "__rate_interval_ms",
                      "__range", "__range_s", "__range_ms", "__from", "__to"})

#: Grafana's own pattern for a variable reference: $name, [[name:format]] and
#: ${name.field:format}.
_REFERENCE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


class _All:
    """The "All" selection of a variable (its ``allValue`` when it has one)."""

    def __repr__(self) -> str:
        return "ALL"


ALL = _All()
Value = str | Sequence[str] | _All


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included; a collapsed row carries its panels inside it."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(board: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board.get("templating", {}).get("list", [])}


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard: a panel's target or an annotation."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool
    #: The variable the panel is repeated over (one copy of the panel per value).
    repeat: str | None = None

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def queries(board: Mapping[str, Any]) -> list[Query]:
    found = []
    for panel in panels(board):
        for target in panel.get("targets", []):
            found.append(Query(board["title"], panel["title"], target["refId"], target["expr"],
                               bool(target.get("instant")) and not target.get("range"),
                               panel.get("repeat")))
    for annotation in board.get("annotations", {}).get("list", []):
        expr = annotation.get("expr") or annotation.get("target", {}).get("expr")
        if expr:
            found.append(Query(board["title"], f"annotation {annotation['name']}", "Anno",
                               expr, False))
    return found


def panel_queries(board: Mapping[str, Any], title: str) -> dict[str, Query]:
    """The queries of the panel titled ``title``, by refId."""
    found = {q.ref_id: q for q in queries(board) if q.panel == title}
    if not found:
        raise KeyError(f"{board['title']} has no panel titled {title!r}")
    return found


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?"
                           r"(?P<label>[A-Za-z_]\w*)\s*\)\s*$", re.S)


def label_values(definition: str) -> tuple[str | None, str]:
    """The (series selector, label) of a ``label_values(...)`` variable query."""
    match = _LABEL_VALUES.match(definition)
    if match is None:
        raise ValueError(f"not a label_values() query: {definition!r}")
    return match["selector"], match["label"]


def apply_regex(regex: str, values: Sequence[str]) -> list[str]:
    """Filter (and with a capture group, extract from) option values as a variable's
    ``regex`` does; ``/.../`` delimiters as in Grafana."""
    if not regex:
        return list(values)
    pattern = re.compile(regex[1:-1] if regex.startswith("/") and regex.endswith("/")
                         else regex)
    out = []
    for value in values:
        match = pattern.search(value)
        if match:
            text = match.group(1) if pattern.groups else value
            if text not in out:
                out.append(text)
    return out


# -- variables --------------------------------------------------------------------------

def references(text: str) -> set[str]:
    """The variables ``text`` refers to. ``$1``, ``$2``, ... are not variables: they are
    label_replace's references to regex groups, which Grafana leaves alone."""
    names = set()
    for match in _REFERENCE.finditer(text):
        name = match.group(1) or match.group(2) or match.group(4)
        if not name.isdigit():
            names.add(name)
    return names


def strings(node: Any) -> Iterator[str]:
    """Every string in a JSON document, keys excluded."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def regular_escape(value: str) -> str:
    """Grafana's escaping of a single-valued variable (no multi, no All)."""
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def regex_escape(value: str) -> str:
    """Grafana's escaping of a value of a multi-value or All variable: it lands in a
    regular expression inside a PromQL string."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]+?.()|]", lambda m: "\\\\" + m.group(0), value)


def format_value(variable: Mapping[str, Any], value: Value) -> str:
    """A variable's value as Grafana's Prometheus data source writes it into a query."""
    if isinstance(value, _All):
        if variable.get("allValue"):
            return str(variable["allValue"])
        raise ValueError(f"${variable['name']} has no allValue: give the list of its "
                         "options for All")
    if not variable.get("multi") and not variable.get("includeAll"):
        if not isinstance(value, str):
            raise ValueError(f"${variable['name']} takes a single value, not {value!r}")
        return regular_escape(value)
    if isinstance(value, str):
        return regex_escape(value)
    escaped = [regex_escape(v) for v in value]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(text: str, board: Mapping[str, Any], values: Mapping[str, Value],
                builtins: Mapping[str, str] | None = None) -> str:
    """``text`` with every variable replaced: dashboard variables from ``values`` (a
    string, a list for a multi-value selection, or :data:`ALL`), Grafana's global ones
    (``$__rate_interval``, ...) from ``builtins``. A variable without a value raises."""
    defined = variables(board)
    builtins = builtins or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if name.isdigit():
            return match.group(0)
        if match.group(3) or match.group(5) or match.group(6):
            raise ValueError(f"{match.group(0)}: formats and fields are not interpolated here")
        if name in BUILTINS:
            if name not in builtins:
                raise KeyError(f"no value given for ${name}")
            return builtins[name]
        if name not in defined:
            raise KeyError(f"${name} is not a variable of {board.get('title')!r}")
        if name not in values:
            raise KeyError(f"no value given for ${name}")
        return format_value(defined[name], values[name])

    return _REFERENCE.sub(replace, text)


# -- PromQL -----------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$\w+|\[\[\w+(?::\w+)?\]\])
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![\w.]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][\w:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>(){}\[\],:@])
""", re.X)

#: Aggregation operators: followed by a grouping clause or by their parenthesised argument.
AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                          "count_values", "bottomk", "topk", "quantile", "limitk",
                          "limit_ratio"})
#: Keywords followed by a parenthesised list of label names.
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "start", "end"})
MATCH_OPERATORS = frozenset({"=", "!=", "=~", "!~"})


@dataclass(frozen=True)
class Selector:
    """A vector selector: its metric name and the label names its matchers use."""

    metric: str
    labels: frozenset[str]


def tokens(expr: str) -> list[tuple[str, str]]:
    """PromQL tokens (kind, text), whitespace and comments dropped; raises on anything
    that is not PromQL or on unbalanced brackets."""
    out: list[tuple[str, str]] = []
    position = 0
    stack: list[str] = []
    pairs = {")": "(", "}": "{", "]": "["}
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"unexpected {expr[position:position + 20]!r} in {expr!r}")
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind in ("space", "comment"):
            continue
        text = match.group(0)
        if text in ("(", "{", "["):
            stack.append(text)
        elif text in pairs and (not stack or stack.pop() != pairs[text]):
            raise ValueError(f"unbalanced {text!r} in {expr!r}")
        out.append((kind, text))
    if stack:
        raise ValueError(f"unclosed {stack[-1]!r} in {expr!r}")
    return out


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of ``expr`` (variables may be left in it)."""
    toks = tokens(expr)
    found: list[Selector] = []
    i = 0

    def skip_group(start: int, close: str) -> int:
        depth = 0
        for j in range(start, len(toks)):
            if toks[j][1] in ("(", "[", "{"):
                depth += 1
            elif toks[j][1] in (")", "]", "}"):
                depth -= 1
                if depth == 0:
                    assert toks[j][1] == close
                    return j + 1
        raise ValueError(f"unclosed group in {expr!r}")

    def matchers(start: int) -> tuple[dict[str, str], int]:
        """Label matchers from the ``{`` at ``start``: {label: value literal}."""
        labels: dict[str, str] = {}
        j = start + 1
        while toks[j][1] != "}":
            if toks[j][0] == "ident" and j + 2 < len(toks) and toks[j + 1][1] in MATCH_OPERATORS:
                labels[toks[j][1]] = toks[j + 2][1]
                j += 3
            elif toks[j][1] == ",":
                j += 1
            else:
                raise ValueError(f"unexpected {toks[j][1]!r} in a selector of {expr!r}")
        return labels, j + 1

    while i < len(toks):
        kind, text = toks[i]
        following = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "ident" and text.lower() in GROUPING:
            i = skip_group(i + 1, ")") if following == "(" else i + 1
        elif kind == "ident" and (text.lower() in KEYWORDS or text in AGGREGATIONS
                                  or following == "("):
            i += 1
        elif kind == "ident":
            labels: dict[str, str] = {}
            i += 1
            if following == "{":
                labels, i = matchers(i)
            found.append(Selector(text, frozenset(labels)))
        elif text == "{":
            labels, i = matchers(i)
            name = labels.pop("__name__", None)
            if name is None or not name.startswith(('"', "'", "`")):
                raise ValueError(f"a selector without a metric name in {expr!r}")
            found.append(Selector(name[1:-1], frozenset(labels)))
        elif text == "[":
            i = skip_group(i, "]")
        else:
            i += 1
    return found
