"""Query templates: the built-in Istio metrics and MetricTemplate rendering (pure).

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
from collections.abc import Mapping
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
