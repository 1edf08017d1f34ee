"""Deployments: the target (which runs the canary) and ``<target>-primary``.

The primary is the target's pod template with its selector labels renamed
(``app: web`` -> ``app: web-primary``), so the two never select each other's pods. It
carries the revision it runs in the ``canary.dev/revision`` annotation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from canary.core import Workload, template_hash
from canary.errors import CanaryError
from canary.models.labels import DEFAULT_SELECTOR_LABELS
from canary.targets import configs

REVISION_ANNOTATION = "canary.dev/revision"
#: The primary's replicas as canary sized it (absent while an autoscaler sizes it): what
#: canary puts back when someone scales the primary by hand, even to zero.
REPLICAS_ANNOTATION = "canary.dev/replicas"
MANAGED_BY = {"app.kubernetes.io/managed-by": "canary"}

JSON = dict[str, Any]


class UnsupportedTarget(CanaryError):
    """The target cannot be delivered as it is (e.g. no selector label canary knows)."""


def primary_name(target: str) -> str:
    return f"{target}-primary"


def selector_label(deployment: JSON, keys: Sequence[str] = DEFAULT_SELECTOR_LABELS
                   ) -> tuple[str, str]:
    """The (key, value) of the label that selects the target's pods."""
    match = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for key in keys:
        if key in match:
            return key, str(match[key])
    name = (deployment.get("metadata") or {}).get("name")
    raise UnsupportedTarget(
        f"Deployment {name} selects its pods by {sorted(match)}; canary needs one of "
        f"{', '.join(keys)} in spec.selector.matchLabels")


def selector_label_from_primary(primary: JSON, keys: Sequence[str] = DEFAULT_SELECTOR_LABELS
                                ) -> tuple[str, str]:
    """The target's selector label read from its primary, whose value is the target's
    renamed (see :func:`primary_name`): what routing needs once the target is deleted."""
    key, value = selector_label(primary, keys)
    return key, value.removesuffix(primary_name(""))


def revision_of(deployment: JSON, lookup: configs.Lookup | None = None) -> str:
    """The revision of the Deployment's pod template and (with ``lookup``) of the
    ConfigMaps and Secrets it references."""
    template = (deployment.get("spec") or {}).get("template") or {}
    return configs.revision(template, lookup) if lookup else template_hash(template)


def rollout_state(deployment: JSON | None, revision: str | None,
                  ready_percent: int = 100) -> Workload:
    """A Deployment as the decision sees it: ready means its rollout is complete, with at
    least ``ready_percent`` of its replicas updated and available (Flagger's
    primaryReadyThreshold / canaryReadyThreshold; 100 by default)."""
    if deployment is None:
        return Workload(exists=False, detail="not found")
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    required = max(1, math.ceil(replicas * ready_percent / 100))
    if replicas == 0:
        ready, detail = False, "scaled to zero"
    elif observed < generation:
        ready, detail = False, "waiting for the Deployment controller to observe the change"
    elif updated < required:
        ready, detail = False, f"{updated} of {replicas} replicas updated"
    elif ready_percent >= 100 and total > updated:
        ready, detail = False, f"{total - updated} old replicas pending termination"
    elif available < required:
        ready, detail = False, f"{available} of {replicas} replicas available"
    else:
        ready, detail = True, ""
    return Workload(exists=True, revision=revision, replicas=replicas, ready=ready,
                    detail=detail, available=available)


def _rename(labels: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    out = dict(labels)
    if out.get(key) == value:
        out[key] = primary_name(value)
    return out


def primary_manifest(target: JSON, owner: JSON, revision: str, replicas: int,
                     selector_keys: Sequence[str] = DEFAULT_SELECTOR_LABELS,
                     lookup: configs.Lookup | None = None, *,
                     autoscaled: bool = False) -> JSON:
    """The primary Deployment for the target's current template (referring to the primary
    copies of its configs when ``lookup`` finds them); ``autoscaled``: an autoscaler
    sizes it, so its replicas are not recorded as canary's."""
    key, value = selector_label(target, selector_keys)
    meta, spec = target["metadata"], copy.deepcopy(target["spec"])
    if lookup is not None:
        spec["template"] = configs.primary_template(spec["template"], lookup)
    template = spec["template"]
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = _rename(template_meta.get("labels") or {}, key, value)
    spec["selector"] = {"matchLabels": _rename(spec["selector"].get("matchLabels") or {},
                                               key, value)}
    spec["replicas"] = replicas
    for field in ("paused",):
        spec.pop(field, None)
    labels = _rename(dict(meta.get("labels") or {}), key, value) | MANAGED_BY
    annotations = {REVISION_ANNOTATION: revision}
    if not autoscaled:
        annotations[REPLICAS_ANNOTATION] = str(replicas)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": primary_name(meta["name"]), "namespace": meta["namespace"],
            "labels": labels, "annotations": annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": spec,
    }


def recorded_replicas(primary: JSON | None) -> int | None:
    """The replicas canary gave the primary (see :data:`REPLICAS_ANNOTATION`), if any."""
    value = (((primary or {}).get("metadata") or {}).get("annotations") or {}).get(
        REPLICAS_ANNOTATION)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def owner_reference(owner: JSON) -> JSON:
    meta = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion", "canary.dev/v1beta1"),
            "kind": owner.get("kind", "Canary"), "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}
