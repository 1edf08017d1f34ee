"""Query templates: filling the placeholders of a built-in metric's or a MetricTemplate's
query (pure).

Placeholders are ``{{ name }}``, ``{{ namespace }}``, ``{{ target }}``, ``{{ service }}``,
``{{ interval }}`` and ``{{ variables.NAME }}``. A value is checked *by position*: the
template is tokenized (:mod:`canary.metrics.promql`) and each placeholder classed by where
it sits (:mod:`canary.metrics.positions`); the position decides what the value may be
(:mod:`canary.metrics.values`):

- in a string (a ``=`` or ``!=`` matcher's, a function argument): anything, escaped for
  the string's quotes so that it cannot end the string;
- in a regular expression (a ``=~`` or ``!~`` matcher's string, ``label_replace``'s
  regex): a name is a literal; a variable is a literal alternation such as ``5..|4..``
  unless the template marks it ``{{ variables.NAME | regex }}`` (:mod:`canary.metrics.regex`);
- in a range, a subquery or after ``offset``: a duration; in a metric, label or function
  name: an identifier; anywhere else outside strings: a number.

So no value can change the query's structure: a value that does not fit is a
:class:`~canary.errors.ConfigError` naming it, its position and the place in the template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from canary.errors import ConfigError
from canary.metrics import positions, values
from canary.metrics.promql import PLACEHOLDER
from canary.models.base import DURATION_PATTERN

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class QueryContext:
    name: str
    namespace: str
    target: str
    service: str
    interval: str
    variables: Mapping[str, str]

    def validate(self) -> None:
        for field in ("name", "namespace", "target", "service"):
            value = getattr(self, field)
            if not _DNS_NAME.fullmatch(value):
                raise ConfigError(f"{field} {value!r} is not a valid Kubernetes name")
        if not re.fullmatch(DURATION_PATTERN, self.interval):
            raise ConfigError(f"interval {self.interval!r} is not a duration")


def render(template: str, context: QueryContext) -> str:
    """Fill a query template; raise :class:`ConfigError` naming a bad value or placeholder."""
    context.validate()
    if PLACEHOLDER.search(template) is None:
        return template
    out, done = [], 0
    for slot in positions.slots(template):
        label, value = _value(slot.hole.key, context)
        try:
            written = values.write(slot, value, variable=label.startswith("templateVariables"))
        except ValueError as exc:
            raise ConfigError(f"{label} {_misfit(template, slot, value, exc)}") from exc
        out += [template[done:slot.hole.start], written]
        done = slot.hole.end
    return "".join(out) + template[done:]


def variable_problems(template: str, variables: Mapping[str, str]) -> dict[str, str]:
    """Why :func:`render` would refuse each template variable the query uses (at its first
    place that refuses it), by name; the variables that fit are absent. Checks a Canary's
    variables against a template without the rest of the Canary; a template refused
    whatever the values raises :class:`ConfigError`."""
    problems: dict[str, str] = {}
    for slot in positions.slots(template):
        key = slot.hole.key
        name = key.split(".", 1)[1] if key.startswith("variables.") else None
        if name is None or name in problems:
            continue
        try:
            value = _variable(key, variables)[1]
        except ConfigError as exc:
            problems[name] = str(exc)
            continue
        try:
            values.write(slot, value, variable=True)
        except ValueError as exc:
            problems[name] = _misfit(template, slot, value, exc)
    return problems


def _misfit(template: str, slot: positions.Slot, value: str, problem: ValueError) -> str:
    """Why ``value`` does not fit ``slot``: the value, its position and the place."""
    return (f"{value!r} is in {slot.where} at {positions.excerpt(template, slot.hole)} "
            f"and {problem}")


def _value(key: str, context: QueryContext) -> tuple[str, str]:
    """The field a placeholder names, and its value."""
    if key.startswith("variables."):
        return _variable(key, context.variables)
    plain = {"name": context.name, "namespace": context.namespace, "target": context.target,
             "service": context.service, "interval": context.interval}
    if key not in plain:
        raise ConfigError(f"unknown placeholder {{{{ {key} }}}} in the query "
                          f"(known: {', '.join(sorted(plain))}, variables.NAME)")
    return key, plain[key]


def _variable(key: str, variables: Mapping[str, str]) -> tuple[str, str]:
    """The field a ``variables.NAME`` placeholder names, and its value."""
    variable = key.split(".", 1)[1]
    if variable not in variables:
        raise ConfigError(f"the query uses {{{{ {key} }}}} but templateVariables "
                          f"has no {variable!r}")
    return f"templateVariables.{variable}", variables[variable]


def variables_used(template: str) -> set[str]:
    """The names of the ``{{ variables.NAME }}`` placeholders a query template uses."""
    return {match.group(1).split(".", 1)[1] for match in PLACEHOLDER.finditer(template)
            if match.group(1).startswith("variables.")}
