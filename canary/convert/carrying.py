"""Carrying a Flagger object's fields over onto canary's models, generically: each field a
model has is kept (under its model, recursively), each other field is left out with a note,
and the result is validated as the API server's schema would, each problem an error at the
field and line it was written."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from canary.convert.context import Context
from canary.convert.paths import Path, pattern
from canary.models.base import ApiModel
from canary.models.problems import describe

_PROVIDERS = "canary routes traffic through Istio, the Gateway API or Kubernetes Services"
#: Flagger fields canary has no counterpart for, with what to do instead. Keys are field
#: paths with ``[]`` for any list index. Other unknown fields get a generic note.
UNSUPPORTED: dict[str, str] = {
    "spec.metricsServer": "set the Prometheus address for the controller "
                          "(`canary run --metrics-server`) or per MetricTemplate "
                          "(spec.provider.address)",
    "spec.ingressRef": f"{_PROVIDERS} (no NGINX ingress)",
    "spec.routeRef": f"{_PROVIDERS} (no APISIX routes)",
    "spec.upstreamRef": f"{_PROVIDERS} (no Gloo upstreams)",
    "spec.service.portDiscovery": "canary's Services expose spec.service.port only",
    "spec.service.delegation": "canary's VirtualService always carries its hosts "
                               "(no Istio delegation)",
    "spec.service.meshName": "App Mesh is not supported",
    "spec.service.backends": "App Mesh is not supported",
    "spec.service.apex": "canary does not add custom labels or annotations to its Services",
    "spec.service.primary": "canary does not add custom labels or annotations to its "
                            "Services",
    "spec.service.canary": "canary does not add custom labels or annotations to its "
                           "Services",
    "spec.autoscalerRef.primaryScalerQueries": "KEDA ScaledObjects are not supported",
    "spec.autoscalerRef.primaryScalerReplicas": "the primary's autoscaler copies the "
                                                "user's replica bounds",
}

#: Flagger fields whose content canary implies: left out without a note.
SILENT = frozenset({
    "spec.analysis.metrics[].templateRef.apiVersion",
    "spec.analysis.metrics[].templateRef.kind",
    "spec.analysis.alerts[].providerRef.apiVersion",
    "spec.analysis.alerts[].providerRef.kind",
})

#: Put in place of a field or list item by a fix-up that has said why it is left out.
DROP = object()


def empty(value: Any) -> bool:
    """A Go zero value, which Flagger writes for fields left unset."""
    return value is None or value is False or value == "" or value == 0 or value == [] \
        or value == {}


def submodel(annotation: Any) -> tuple[type[ApiModel] | None, bool]:
    """The model a field holds (directly, optionally, or as a list of them)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                found = submodel(arg)
                if found[0] is not None:
                    return found
        return None, False
    if origin is list:
        inner, _ = submodel(typing.get_args(annotation)[0])
        return inner, inner is not None
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        return annotation, False
    return None, False


def carry(ctx: Context, value: Any, model: type[ApiModel], in_path: Path, out_path: Path
          ) -> Any:
    """``value`` with the fields ``model`` knows; the others are left out and noted."""
    ctx.origin[out_path] = in_path
    if not isinstance(value, dict):
        return value  # the wrong type: validation says so, with the line
    fields = {f.alias or name: f for name, f in model.model_fields.items()}
    out: dict[str, Any] = {}
    for key, item in value.items():
        here = ctx.moved.get((*in_path, key), (*in_path, key))
        if item is DROP:
            continue
        target = fields.get(key)
        if target is None:
            _leave_out(ctx, here, item)
            continue
        sub, many = submodel(target.annotation)
        there = (*out_path, key)
        ctx.origin[there] = here
        if sub is not None and many and isinstance(item, list):
            kept: list[Any] = []
            for index, element in enumerate(item):
                if element is DROP:
                    continue
                kept.append(carry(ctx, element, sub, (*here, index), (*there, len(kept))))
            out[key] = kept
        elif sub is not None:
            out[key] = carry(ctx, item, sub, here, there)
        else:
            out[key] = item
    return out


def _leave_out(ctx: Context, here: Path, item: Any) -> None:
    """Note a field canary has no counterpart for, unless Flagger left it unset or canary
    implies it."""
    named = pattern(here).replace("spec.canaryAnalysis", "spec.analysis")
    if not empty(item) and named not in SILENT:
        why = UNSUPPORTED.get(named, "canary has no such field")
        ctx.note(here, f"not carried over: {why}")


def validate(ctx: Context, model: type[ApiModel], converted: dict[str, Any]) -> bool:
    """Whether ``converted`` is a valid ``model``; each field's problems are an error."""
    try:
        model.model_validate_json(json.dumps(converted), strict=True)
    except ValidationError as exc:
        problems: dict[Path, list[ErrorDetails]] = {}
        for problem in exc.errors():
            problems.setdefault(_existing(converted, tuple(problem["loc"])), []).append(problem)
        for path, found in problems.items():
            ctx.error(ctx.input_path(path), describe(found, every=True, explained=True,
                                                     named=False))
        return False
    return True


def _existing(data: Any, loc: Path) -> Path:
    """The part of a validation error's location that is a path in ``data``."""
    found: list[str | int] = []
    for part in loc:
        inside = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data))
        if inside:
            data = data[part]
        elif isinstance(data, dict) and isinstance(part, str) and \
                not part.startswith(("function-", "literal[")) and \
                part not in ("int", "str", "float", "bool"):
            found.append(part)  # a required field that is missing
            break
        else:
            break
        found.append(part)
    return tuple(found)
