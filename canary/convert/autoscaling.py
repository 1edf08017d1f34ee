"""HorizontalPodAutoscalers of a removed ``autoscaling/v2beta*`` version into ``autoscaling/v2``.

Flagger's tutorials (and manifests written against them) use ``autoscaling/v2beta2``,
which Kubernetes 1.26 removed (``v2beta1`` went in 1.25): ``kubectl apply`` refuses them.
``v2beta2`` has v2's fields already, so only its apiVersion changes. ``v2beta1`` wrote each
metric's target flat (``targetAverageUtilization``, ``metricName``, ...), which v2 nests in
``metric`` and ``target``: those are rewritten as the API server's own conversion does.
"""

from __future__ import annotations

import copy
from typing import Any

from canary.convert.paths import Path

OLD_VERSIONS = ("autoscaling/v2beta1", "autoscaling/v2beta2")
API_VERSION = "autoscaling/v2"
REMOVED_IN = {"autoscaling/v2beta1": "1.25", "autoscaling/v2beta2": "1.26"}

#: v2beta1's flat target fields: (v2 target type, v2 target field).
TARGETS = {
    "targetAverageUtilization": ("Utilization", "averageUtilization"),
    "targetAverageValue": ("AverageValue", "averageValue"),
    "averageValue": ("AverageValue", "averageValue"),  # an Object metric's
    "targetValue": ("Value", "value"),
}
#: v2beta1 fields that move into v2's ``metric`` (a MetricIdentifier).
_IDENTIFIER = {"metricName": "name", "selector": "selector", "metricSelector": "selector"}




def is_old(data: dict[str, Any]) -> bool:
    """An HPA of a removed version, which this module rewrites."""
    return data.get("kind") == "HorizontalPodAutoscaler" and \
        data.get("apiVersion") in OLD_VERSIONS


def to_v2(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[Path, str]],
                                         dict[Path, Path]]:
    """``data`` as ``autoscaling/v2``, the notes (input path, message) and, for each moved
    field, its output path -> its input path. The status (the controller's) is left out."""
    old = str(data["apiVersion"])
    out = {k: copy.deepcopy(v) for k, v in data.items() if k != "status"}
    out["apiVersion"] = API_VERSION
    notes: list[tuple[Path, str]] = [(("apiVersion",), (
        f"{old} changed to {API_VERSION}: Kubernetes {REMOVED_IN[old]} removed {old}, so "
        "the API server refuses it" + (" (the fields are the same)"
                                       if old.endswith("v2beta2") else "")))]
    origin: dict[Path, Path] = {}
    spec = out.get("spec")
    metrics = spec.get("metrics") if isinstance(spec, dict) else None
    if old.endswith("v2beta1") and isinstance(metrics, list):
        for index, metric in enumerate(metrics):
            here: Path = ("spec", "metrics", index)
            moved = _metric_to_v2(metric, here, origin) if isinstance(metric, dict) else {}
            if moved:
                notes.append((here, "rewritten in v2's form: " + ", ".join(
                    f"{_dotted(old[len(here):])} -> {_dotted(new[len(here):])}"
                    for new, old in moved.items())))
    return out, notes, origin


def _dotted(path: Path) -> str:
    return ".".join(str(part) for part in path)


def _metric_to_v2(metric: dict[str, Any], here: Path, origin: dict[Path, Path]
                  ) -> dict[Path, Path]:
    """Rewrite one v2beta1 metric source in place; the fields moved (new path -> old),
    also added to ``origin``."""
    kind = metric.get("type")
    key = str(kind)[:1].lower() + str(kind)[1:] if isinstance(kind, str) else ""
    source = metric.get(key)
    if not isinstance(source, dict):
        return {}
    written: Path = (*here, key)
    moved: dict[Path, Path] = {}
    new: dict[str, Any] = {}
    identifier: dict[str, Any] = {}
    target: dict[str, Any] = {}
    for field, value in source.items():
        if field in TARGETS and "type" not in target:
            target_type, name = TARGETS[field]
            target.update(type=target_type, **{name: value})
            moved[(*written, "target", name)] = (*written, field)
        elif field in _IDENTIFIER and kind != "Resource" and kind != "ContainerResource":
            identifier[_IDENTIFIER[field]] = value
            moved[(*written, "metric", _IDENTIFIER[field])] = (*written, field)
        elif field == "target" and kind == "Object":
            new["describedObject"] = value
            moved[(*written, "describedObject")] = (*written, field)
        else:
            new[field] = value
    if not moved:
        return {}
    if identifier:
        new["metric"] = identifier
    if target:
        new["target"] = target
    metric[key] = new
    origin.update(moved)
    return moved
