"""One Flagger object into canary's: checked, fixed up (:mod:`.fixups`), carried over
(:mod:`.carrying`), validated, and kept for checking template variables across documents
(:mod:`.variables`)."""

from __future__ import annotations

import copy
from typing import Any

from canary.convert import fixups, variables
from canary.convert.carrying import carry, submodel, validate
from canary.convert.context import Context, document_name
from canary.models.base import ApiModel
from canary.models.canary import Canary
from canary.models.problems import field_path, kind_of
from canary.models.templates import AlertProvider, MetricTemplate

FLAGGER_API_VERSION = "flagger.app/v1beta1"
API_VERSION = "canary.dev/v1beta1"
MODELS: dict[str, type[ApiModel]] = {
    "Canary": Canary, "MetricTemplate": MetricTemplate, "AlertProvider": AlertProvider}

_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp",
                    "managedFields", "selfLink", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "ownerReferences", "finalizers")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def convert(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The canary objects for one Flagger object: none, one, or (for an AlertProvider
    with an inline address) a Secret and the AlertProvider."""
    kind = str(data["kind"])
    ctx.name = document_name(kind, data.get("metadata"))
    found = _checked(ctx, data)
    if found is None:
        return []
    metadata, spec = found
    errors_before = len(ctx.result.errors)
    extra: list[dict[str, Any]] = []
    if kind == "Canary":
        keep = fixups.canary(ctx, spec)
    elif kind == "MetricTemplate":
        keep = fixups.metric_template(ctx, spec)
    else:
        keep, extra = fixups.alert_provider(ctx, spec, metadata)
    if not keep:
        return []
    model = MODELS[kind]
    spec_model = submodel(model.model_fields["spec"].annotation)[0]
    assert spec_model is not None
    converted = {
        "apiVersion": API_VERSION, "kind": kind, "metadata": _metadata(metadata),
        "spec": carry(ctx, spec, spec_model, ("spec",), ("spec",)),
    }
    refused = len(ctx.result.errors) > errors_before  # by a fixup
    if not validate(ctx, model, converted) or refused:
        return []
    ctx.result.converted += 1
    _record(ctx, converted)
    return [*extra, converted]


def _checked(ctx: Context, data: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The object's metadata and a copy of its spec, None when it is refused."""
    kind, api_version = str(data["kind"]), str(data["apiVersion"])
    metadata = data.get("metadata")
    if kind not in MODELS:
        ctx.error(("kind",), f"{api_version} {kind} is not a Flagger kind canary "
                  f"converts (Canary, MetricTemplate, AlertProvider)")
        return None
    if api_version != FLAGGER_API_VERSION:
        ctx.error(("apiVersion",), f"{api_version} is not supported: only "
                  f"{FLAGGER_API_VERSION} manifests are converted")
        return None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) \
            or not metadata.get("name"):
        ctx.error(("metadata", "name") if isinstance(metadata, dict) else ("metadata",),
                  "metadata.name is required")
        return None
    spec = data.get("spec")
    if not isinstance(spec, dict):
        ctx.error(("spec",), "spec is required and must be a mapping"
                  if spec is None else f"expected a mapping, got {kind_of(spec)}")
        return None
    return metadata, copy.deepcopy(spec)


def _record(ctx: Context, converted: dict[str, Any]) -> None:
    """Keep what checking template variables across documents needs."""
    metadata, spec = converted["metadata"], converted["spec"]
    namespace = _namespace(metadata)
    if converted["kind"] == "MetricTemplate":
        ctx.result.templates[(namespace, metadata["name"])] = variables.Template(
            ctx.name, spec["query"])
        return
    if converted["kind"] != "Canary":
        return
    for index, metric in enumerate((spec.get("analysis") or {}).get("metrics") or []):
        ref = metric.get("templateRef")
        if ref is None:
            continue
        out = ("spec", "analysis", "metrics", index, "templateVariables")
        here = ctx.input_path(out)
        values = metric.get("templateVariables") or {}
        ctx.result.uses.append(variables.TemplateUse(
            ctx.source, ctx.name, (ref.get("namespace") or namespace, ref["name"]),
            values, field_path(here), ctx.line(here),
            {key: ctx.line(ctx.input_path((*out, key))) for key in values}))


def _metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata a user writes: without what the API server sets, and without
    ``kubectl apply``'s record of the Flagger object."""
    kept = {k: copy.deepcopy(v) for k, v in metadata.items() if k not in _SERVER_METADATA}
    annotations = kept.get("annotations")
    if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
        annotations = {k: v for k, v in annotations.items() if k != _LAST_APPLIED}
        if annotations:
            kept["annotations"] = annotations
        else:
            del kept["annotations"]
    return kept


def _namespace(metadata: dict[str, Any]) -> str | None:
    """An object's namespace, None when the manifest leaves it to ``kubectl apply -n``."""
    namespace = metadata.get("namespace")
    return namespace if isinstance(namespace, str) and namespace else None
