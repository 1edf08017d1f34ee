"""The objects a Canary's spec names, checked before any traffic moves.

A MetricTemplate, an autoscaler or a template variable that is missing would only show
at the first analysis step, after traffic has already moved to the canary. Checking them
from the watch caches costs no API request, so it is done at every decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from canary.metrics.queries import variables_used
from canary.models.canary import Canary

JSON = dict[str, Any]
#: Finds an object in a watch cache: (namespace, name) -> object or None.
Find = Callable[[str, str], JSON | None]
#: Whether a namespace is watched: only there does a miss mean the object is missing.
Watched = Callable[[str], bool]


def missing(canary: Canary, templates: Find, autoscalers: Find,
            watched: Watched) -> tuple[str, ...]:
    """Each reference of the spec that names something missing, naming its field."""
    problems = [*_missing_templates(canary, templates, watched)]
    ref = canary.spec.autoscaler_ref
    if ref is not None and autoscalers(canary.namespace, ref.name) is None:
        problems.append(f"spec.autoscalerRef: HorizontalPodAutoscaler "
                        f"{canary.namespace}/{ref.name} not found")
    return tuple(problems)


def _missing_templates(canary: Canary, templates: Find, watched: Watched) -> list[str]:
    problems = []
    for index, metric in enumerate(canary.spec.analysis.metrics or []):
        ref = metric.template_ref
        if ref is None:
            continue
        field = f"spec.analysis.metrics[{index}]"
        namespace = ref.namespace or canary.namespace
        if not watched(namespace):
            continue  # read from the API at the analysis; nothing to say before
        found = templates(namespace, ref.name)
        if found is None:
            problems.append(f"{field}.templateRef: MetricTemplate {namespace}/{ref.name} "
                            "not found")
        else:
            query = str((found.get("spec") or {}).get("query") or "")
            defined = metric.template_variables or {}
            for variable in sorted(variables_used(query) - set(defined)):
                problems.append(f"{field}.templateVariables: MetricTemplate "
                                f"{namespace}/{ref.name} uses {{{{ variables.{variable} }}}}, "
                                "which is not set")
    return problems


def missing_route(canary: Canary, route: tuple[str, str] | None,
                  find: Callable[[str, str], JSON | None]) -> tuple[str, ...]:
    """The user's route (``route``: kind and name, None without one; ``find`` looks up
    by kind and name) when it is missing from the Canary's namespace, naming
    ``spec.service.routeRef``: no traffic can move through a route that is not there."""
    if route is None or find(*route) is not None:
        return ()
    kind, name = route
    return (f"spec.service.routeRef: {kind} {canary.namespace}/{name} not found",)
