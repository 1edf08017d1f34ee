"""Query templates: the built-in Istio metrics, the judge's counters and MetricTemplate
rendering (pure).

Placeholders are ``{{ name }}``, ``{{ namespace }}``, ``{{ target }}``, ``{{ service }}``,
``{{ interval }}`` and ``{{ variables.NAME }}``. Every value is checked before it is
inserted so that none can change the query's structure: names must be Kubernetes names,
the interval a duration, and variables may only use letters, digits and ``_ . : - / * + ?
| ^ $`` (enough for label values and simple regular expressions such as ``5..|4..``; no
quotes, spaces, parentheses, brackets, braces or commas), wherever the template puts
them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from canary.errors import ConfigError
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
#: extrapolate and are not whole numbers). ``{{ namespace }}`` and ``{{ workloads }}`` (a
#: regular expression naming both workloads) are filled by :func:`judge_queries`.
_ISTIO_SELECTOR = ('reporter="destination",destination_workload_namespace="{{ namespace }}",'
                   'destination_workload=~"{{ workloads }}"')
ISTIO_JUDGE_COUNTERS = {
    "errorRate": {
        "requests": "sum by (destination_workload) (istio_requests_total{"
                    + _ISTIO_SELECTOR + "})",
        "errors": "sum by (destination_workload) (istio_requests_total{"
                  + _ISTIO_SELECTOR + ',response_code=~"5.*"})',
    },
    "latency": {
        "buckets": "sum by (destination_workload, le) (istio_request_duration_milliseconds_"
                   "bucket{" + _ISTIO_SELECTOR + "})",
    },
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w]*(?:\.[A-Za-z_][\w-]*)?)\s*\}\}")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SAFE_VARIABLE = re.compile(r"^[A-Za-z0-9_.:/*+?|^$-]*$")


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
            if not _DNS_NAME.match(value):
                raise ConfigError(f"{field} {value!r} is not a valid Kubernetes name")
        if not re.fullmatch(DURATION_PATTERN, self.interval):
            raise ConfigError(f"interval {self.interval!r} is not a duration")
        for key, value in self.variables.items():
            if not _SAFE_VARIABLE.match(value):
                raise ConfigError(
                    f"templateVariables.{key} {value!r} may only contain letters, digits and "
                    "_ . : - / * + ? | ^ $ (anything else could change the query)")


def render(template: str, context: QueryContext) -> str:
    """Fill a query template; raise :class:`ConfigError` naming a bad value or placeholder."""
    context.validate()
    plain = {"name": context.name, "namespace": context.namespace, "target": context.target,
             "service": context.service, "interval": context.interval}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.startswith("variables."):
            variable = key.split(".", 1)[1]
            if variable not in context.variables:
                raise ConfigError(f"the query uses {{{{ {key} }}}} but templateVariables "
                                  f"has no {variable!r}")
            return context.variables[variable]
        if key not in plain:
            raise ConfigError(f"unknown placeholder {{{{ {key} }}}} in the query "
                              f"(known: {', '.join(sorted(plain))}, variables.NAME)")
        return plain[key]

    return _PLACEHOLDER.sub(fill, template)


def judge_queries(metric_type: str, namespace: str, workloads: Sequence[str]
                  ) -> dict[str, str]:
    """The PromQL reading a judged metric's counters for ``workloads`` (the canary's and
    the primary's Deployment names), by what each query counts."""
    if metric_type not in ISTIO_JUDGE_COUNTERS:
        raise ConfigError(f"no counters for judged metrics of type {metric_type!r}")
    for value in (namespace, *workloads):
        if not _DNS_NAME.match(value):
            raise ConfigError(f"{value!r} is not a valid Kubernetes name")
    # Names may hold dots, which a regular expression must match literally.
    alternatives = "|".join(w.replace(".", "\\\\.") for w in workloads)
    return {what: query.replace("{{ namespace }}", namespace)
            .replace("{{ workloads }}", alternatives)
            for what, query in ISTIO_JUDGE_COUNTERS[metric_type].items()}
