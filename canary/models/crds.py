"""Generate the CustomResourceDefinitions from the pydantic models.

``canary crds --output crds/`` writes them; a test fails when the committed files drift.
The pydantic JSON schema is turned into a Kubernetes structural schema: references
inlined, optional fields unwrapped, titles and defaults dropped, exclusive bounds in OpenAPI
v3.0's form, descriptions on one line, free-form objects marked
``x-kubernetes-preserve-unknown-fields``, CEL rules kept as ``x-kubernetes-validations``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from canary.models.base import ApiObject
from canary.models.canary import GROUP, VERSION, Canary, CanarySpec, CanaryStatus
from canary.models.templates import (
    AlertProvider,
    AlertProviderSpec,
    MetricTemplate,
    MetricTemplateSpec,
)

#: `kubectl get canary-dev` lists every canary.dev object. Not "canary": kubectl expands a
#: category before resource names, so a category named like the singular would break
#: `kubectl get canary NAME` ("you must specify only one resource").
CATEGORY = "canary-dev"
_DROP = {"title", "default", "$defs"}


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model``."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(schema, schema.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("x-kubernetes-int-or-string"):
            return {k: v for k, v in rest.items() if k not in _DROP}
        if len(options) != 1:
            raise ValueError(f"cannot express {node} in a structural schema")
        return _convert({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "description":
            # kubectl explain wraps text itself: a docstring's line breaks would show.
            out[key] = " ".join(value.split())
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema's numeric form; OpenAPI v3.0 pairs a bound with a flag.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out["properties"] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _convert(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict) and value:
                out["additionalProperties"] = _convert(value, defs)
            else:
                out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
        out["type"] = "object"
    return out


def _crd(kind: str, plural: str, spec: type[BaseModel], status: type[BaseModel] | None,
         description: str, short_names: list[str] | None = None,
         columns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    envelope = ApiObject.model_fields
    properties: dict[str, Any] = {
        "apiVersion": {"description": envelope["api_version"].description, "type": "string"},
        "kind": {"description": envelope["kind"].description, "type": "string"},
        # The API server documents metadata (ObjectMeta) itself and refuses more than this.
        "metadata": {"type": "object"},
        "spec": structural(spec),
    }
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if status is not None:
        properties["status"] = structural(status)
        version["subresources"] = {"status": {}}
    version["schema"] = {"openAPIV3Schema": {
        "description": description, "type": "object", "properties": properties,
        "required": ["spec"]}}
    if columns:
        version["additionalPrinterColumns"] = columns
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                             "singular": kind.lower(), "categories": [CATEGORY]}
    if short_names:
        names["shortNames"] = short_names
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {"group": GROUP, "names": names, "scope": "Namespaced", "versions": [version]},
    }


def definitions() -> dict[str, dict[str, Any]]:
    """File name -> CRD manifest."""
    return {
        f"{GROUP}_canaries.yaml": _crd(
            "Canary", "canaries", CanarySpec, CanaryStatus,
            (Canary.__doc__ or "").strip(), ["cn"], [
                {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
                {"name": "FailedChecks", "type": "integer", "jsonPath": ".status.failedChecks"},
                {"name": "LastTransitionTime", "type": "date",
                 "jsonPath": ".status.lastTransitionTime"},
            ]),
        f"{GROUP}_metrictemplates.yaml": _crd(
            "MetricTemplate", "metrictemplates", MetricTemplateSpec, None,
            (MetricTemplate.__doc__ or "").strip(), ["mt"]),
        f"{GROUP}_alertproviders.yaml": _crd(
            "AlertProvider", "alertproviders", AlertProviderSpec, None,
            (AlertProvider.__doc__ or "").strip(), ["ap"]),
    }


def render(manifest: dict[str, Any]) -> str:
    header = "# Generated from canary/models by `canary crds`; do not edit.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, width=100)


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, manifest in definitions().items():
        path = directory / name
        path.write_text(render(manifest))
        written.append(path)
    return written
