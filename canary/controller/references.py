"""The objects a Canary's spec names, checked before any traffic moves.

A MetricTemplate, an autoscaler or a template variable that is missing, or a variable
whose value does not fit its place in the template's query, would only show at the first
analysis step, after traffic has already moved to the canary; a ConfigMap or Secret the
target's pods need and that does not exist keeps them from ever starting. Checking them
from the watch caches costs no API request, so it is done at every decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from canary.errors import ConfigError
from canary.metrics.queries import variable_problems, variables_used
from canary.models.canary import Canary
from canary.targets import configs

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


def missing_configs(target: JSON | None, configs_lookup: configs.Lookup,
                    watched: Watched) -> tuple[str, ...]:
    """Each ConfigMap and Secret the target's pod template needs (not ``optional``) that
    does not exist, naming the target."""
    if target is None:
        return ()
    meta = target["metadata"]
    namespace = meta.get("namespace", "")
    if not watched(namespace):
        return ()
    template = (target.get("spec") or {}).get("template") or {}
    return tuple(f"spec.targetRef: Deployment {namespace}/{meta['name']} refers to {kind} "
                 f"{namespace}/{name}, not found"
                 for kind, name in sorted(configs.required(template))
                 if configs_lookup(kind, name) is None)


def invalid_variables(canary: Canary, templates: Find) -> tuple[str, ...]:
    """Each template variable whose value does not fit its place in its MetricTemplate's
    query (it would change the query's structure), naming the variable and the place."""
    problems = []
    for index, metric in enumerate(canary.spec.analysis.metrics or []):
        ref, defined = metric.template_ref, metric.template_variables or {}
        found = None if ref is None else templates(ref.namespace or canary.namespace, ref.name)
        if ref is None or found is None or not defined:
            continue
        query = str((found.get("spec") or {}).get("query") or "")
        try:
            refused = variable_problems(query, defined)
        except ConfigError:
            continue  # the template's own problem, said when its query is run
        document = f"MetricTemplate {ref.namespace or canary.namespace}/{ref.name}"
        problems += [f"spec.analysis.metrics[{index}].templateVariables.{name}: {why} "
                     f"(in the query of {document})" for name, why in sorted(refused.items())
                     if name in defined]
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
