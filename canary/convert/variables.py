"""Template variables of converted Canaries, checked against the MetricTemplates converted
with them (pure).

The controller checks a ``templateVariables`` value by where the template's query puts it
(:func:`canary.metrics.queries.render`), so the same value can be right in one template and
wrong in another. ``canary convert`` can say so only when the input holds both the Canary
and the MetricTemplate its metric names; otherwise the values are left to the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from canary.errors import ConfigError
from canary.metrics.queries import variable_problems

#: A MetricTemplate as a Canary names it: (namespace, name), the namespace None where the
#: manifest leaves it to the namespace the objects are applied to.
TemplateKey = tuple[str | None, str]


@dataclass(frozen=True)
class Template:
    """A converted MetricTemplate's query, and how to name the template in a message."""

    document: str
    query: str


@dataclass(frozen=True)
class TemplateUse:
    """A converted Canary's metric that names a MetricTemplate, with where its fields were
    written in the input."""

    source: str
    document: str
    template: TemplateKey
    variables: Mapping[str, str]
    #: The input path of the metric's ``templateVariables`` (or of the metric without them).
    path: str
    line: int | None
    #: The line of each variable.
    lines: Mapping[str, int | None]

    def where(self, name: str) -> tuple[str, int | None]:
        """The input path and line of the variable ``name``, or of the metric's
        ``templateVariables`` when it does not set ``name``."""
        if name in self.variables:
            return f"{self.path}.{name}", self.lines.get(name)
        return self.path, self.line


def problems(uses: list[TemplateUse], templates: Mapping[TemplateKey, Template]
             ) -> list[tuple[TemplateUse, str, str]]:
    """Each variable of ``uses`` that the query of its MetricTemplate, when ``templates``
    holds it, would refuse: the use, the variable's name and why (naming the template). A
    template refused whatever the values checks nothing."""
    found: list[tuple[TemplateUse, str, str]] = []
    for use in uses:
        template = templates.get(use.template)
        if template is None:
            continue
        try:
            refused = variable_problems(template.query, use.variables)
        except ConfigError:
            continue  # the template's own problem, not the Canary's variables'
        found += [(use, name, f"{template.document}: {reason}")
                  for name, reason in refused.items()]
    return found
