"""Query templates: the built-in Istio metrics, the judge's counters and MetricTemplate
rendering (pure).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from canary.errors import ConfigError
from canary.metrics import positions, values
from canary.metrics.promql import PLACEHOLDER
from canary.models.base import DURATION_PATTERN

#: Built-in metrics on Istio, with Flagger's semantics: the canary workload's percentage
#: of non-5xx responses, and its P99 latency in milliseconds.
ISTIO_BUILTINS = {
    "request-success-rate": (
        'sum(rate(istio_requests_total{reporter="destination",'
        'destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}",response_code!~"5.*"}[{{ interval }}])) '
        '/ sum(rate(istio_requests_total{reporter="destination",'
        'destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}"}[{{ interval }}])) * 100'),
    "request-duration": (
        'histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{'
        'reporter="destination",destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))'),
}

#: The judge's counters on Istio, for the canary and the primary workloads at once: raw
#: cumulative values, which the judge differences itself (``rate()`` and ``increase()``
#: extrapolate and are not whole numbers). :func:`judge_query` reads all of a metric's
#: counters in one query, so that they come from the same scrapes (Prometheus never shows
#: one query part of a scrape); each of its series carries a :data:`JUDGE_PART` label
#: saying what it counts.
JUDGE_PART = "canary_judge"
#: The counters summed per workload, by metric type: what each part counts and its
#: expression, where ``{series}`` stands for the metric's series of both workloads and
#: ``{errors}`` for those of 5xx responses.
JUDGE_PARTS = {
    "errorRate": {
        "requests": "sum by (destination_workload) ({series})",
        "errors": "sum by (destination_workload) ({errors})",
    },
    "latency": {
        "buckets": "sum by (destination_workload, le) ({series})",
    },
}
_JUDGE_METRICS = {"errorRate": "istio_requests_total",
                  "latency": "istio_request_duration_milliseconds_bucket"}
#: How far before the previous reading a series absent from it is looked for: found
#: there, it came back (after a failed scrape, say) holding counts that reading missed.
REAPPEARED_WINDOW = "1h"
#: The ``lost`` part: per workload, the series that make the difference with the previous
#: reading (``{since}`` ago) unsound: vanished since, lower now than then, reset in
#: between, or present now but absent then although Prometheus had them before.
LOST = ("count by (destination_workload) ("
        "({series} offset {since} unless {series}) "
        "or ({series} < {series} offset {since}) "
        "or (resets({series}[{since}]) > 0) "
        "or ({series} and (last_over_time({series}[" + REAPPEARED_WINDOW + "] offset {since}) "
        "unless {series} offset {since})))")
#: The ``previous`` part: per workload, the requests Prometheus shows now at the previous
#: reading's instant (``{total}``: the series counting every request). Fewer than that
#: reading counted means a series it counted has since been marked stale there (a failed
#: scrape, known only after the reading): the series set shrank.
PREVIOUS = "sum by (destination_workload) ({total} offset {since})"

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


def _alternatives(names: Sequence[str]) -> str:
    """A regular expression matching exactly ``names`` (Kubernetes names, checked)."""
    for value in names:
        if not _DNS_NAME.fullmatch(value):
            raise ConfigError(f"{value!r} is not a valid Kubernetes name")
    # Names may hold dots, which a regular expression must match literally.
    return "|".join(w.replace(".", "\\\\.") for w in names)


def judge_query(metric_type: str, namespace: str, workloads: Sequence[str],
                since: float | None = None, exclude_sources: Sequence[str] = ()) -> str:
    """The PromQL reading a judged metric's counters for ``workloads`` (the canary's and
    the primary's Deployment names), without the requests of ``exclude_sources``.

    With ``since`` (seconds since the previous reading), the ``lost`` part counts, per
    workload, the series that make the difference with that reading unsound, and the
    ``previous`` part sums the requests Prometheus now shows at that reading's instant."""
    if metric_type not in JUDGE_PARTS:
        raise ConfigError(f"no counters for judged metrics of type {metric_type!r}")
    if not _DNS_NAME.fullmatch(namespace):
        raise ConfigError(f"{namespace!r} is not a valid Kubernetes name")
    selector = (f'reporter="destination",destination_workload_namespace="{namespace}",'
                f'destination_workload=~"{_alternatives(workloads)}"')
    if exclude_sources:
        selector += f',source_workload!~"{_alternatives(exclude_sources)}"'
    metric = _JUDGE_METRICS[metric_type]
    series = f"{metric}{{{selector}}}"
    errors = f'{metric}{{{selector},response_code=~"5.*"}}'
    parts = {what: expression.format(series=series, errors=errors)
             for what, expression in JUDGE_PARTS[metric_type].items()}
    if since is not None:
        offset = f"{max(1, round(since * 1000))}ms"
        total = series if metric_type == "errorRate" else f'{metric}{{{selector},le="+Inf"}}'
        parts["lost"] = LOST.format(series=series, since=offset)
        parts["previous"] = PREVIOUS.format(total=total, since=offset)
    return " or ".join(f'label_replace({expression}, "{JUDGE_PART}", "{what}", "", "")'
                       for what, expression in parts.items())


def variables_used(template: str) -> set[str]:
    """The names of the ``{{ variables.NAME }}`` placeholders a query template uses."""
    return {match.group(1).split(".", 1)[1] for match in PLACEHOLDER.finditer(template)
            if match.group(1).startswith("variables.")}
