"""Which objects a Canary manages, and which Canary keeps an object two of them want.

Two Canaries on one Deployment, or on one Service or VirtualService name, would rewrite
each other's objects without end. Each object canary writes is claimed by exactly one
Canary: the one that already owns it (its controller ownerReference), else the oldest.
The others are told so and write nothing. Pure functions over the objects as the watch
caches hold them (plain dicts: a Canary that fails validation still claims its names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from canary.router import managed

JSON = dict[str, Any]
#: (kind, name) of an object in the Canary's namespace.
Claim = tuple[str, str]
#: Finds an object canary writes in the watch caches: (kind, name) -> object or None.
Lookup = Callable[[str, str], JSON | None]


def claims(canary: JSON, mesh_provider: str) -> set[Claim]:
    """The objects ``canary`` writes: its target, the primary, the routing objects of its
    provider (``mesh_provider`` without ``spec.provider``) and the primary's autoscaler."""
    spec = canary.get("spec") or {}
    target = str((spec.get("targetRef") or {}).get("name") or "")
    if not target:
        return set()
    service = str((spec.get("service") or {}).get("name") or target)
    provider = str(spec.get("provider") or mesh_provider)
    owned = {("Deployment", target), ("Deployment", f"{target}-primary"),
             *managed(provider, service)}
    autoscaler = (spec.get("autoscalerRef") or {}).get("name")
    if autoscaler:
        owned.add(("HorizontalPodAutoscaler", f"{autoscaler}-primary"))
    return owned


def controller_of(obj: JSON | None) -> JSON | None:
    """The ownerReference marked as the object's controller, if any."""
    for owner in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return dict(owner)
    return None


def own(generated: JSON | None, canary: JSON) -> JSON | None:
    """``generated`` (an object canary generates, such as the primary), unless another
    Canary controls it: a Canary taking over from a deleted one must not count the
    other's primary, which the garbage collector is about to delete, as its own."""
    owner = controller_of(generated)
    if owner is not None and owner.get("kind") == "Canary" and \
            owner.get("uid") != canary["metadata"].get("uid"):
        return None
    return generated


def _uid(obj: JSON) -> str:
    return str(obj["metadata"].get("uid", ""))


def _age(obj: JSON) -> tuple[str, str]:
    """Older first: creation time (RFC 3339 in UTC sorts as text), then name."""
    meta = obj["metadata"]
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name"))


def _owns_any(canary: JSON, shared: Iterable[Claim], lookup: Lookup) -> bool:
    for kind, name in shared:
        owner = controller_of(lookup(kind, name))
        if owner is not None and owner.get("kind") == "Canary" and owner.get("uid") == _uid(canary):
            return True
    return False


def _describe(shared: Iterable[Claim]) -> str:
    ordered = sorted(shared, key=lambda claim: (claim[0] != "Deployment", claim))
    listed = ", ".join(f"{kind} {name}" for kind, name in ordered[:3])
    return listed + (f" and {len(ordered) - 3} more" if len(ordered) > 3 else "")


def conflict(canary: JSON, others: Iterable[JSON], lookup: Lookup, mesh_provider: str
             ) -> str | None:
    """Why another Canary of the namespace keeps objects ``canary`` would write; None when
    none does. The owner of a shared object keeps it; when neither owns one, the oldest.
    ``mesh_provider`` routes the Canaries without ``spec.provider``."""
    mine = claims(canary, mesh_provider)
    for other in sorted(others, key=_age):
        if _uid(other) == _uid(canary):
            continue
        shared = mine & claims(other, mesh_provider)
        if not shared:
            continue
        if _owns_any(other, shared, lookup):
            why = "it manages them"
        elif _owns_any(canary, shared, lookup) or _age(canary) < _age(other):
            continue
        else:
            why = "it is older"
        name = other["metadata"]["name"]
        return (f"Canary {name} already claims {_describe(shared)} ({why}): this Canary "
                f"changes nothing until {name} is deleted or they no longer share objects "
                "(a target, spec.service.name)")
    return None


def managed_target(target: JSON | None) -> str | None:
    """Why the target is not the user's Deployment but one canary itself manages (another
    Canary's primary, say); None when it is the user's."""
    if target is None:
        return None
    meta = target.get("metadata") or {}
    owner = controller_of(target)
    labels = meta.get("labels") or {}
    if owner is not None and owner.get("kind") == "Canary":
        return (f"Deployment {meta.get('name')} is managed by Canary {owner.get('name')} (it is "
                "that Canary's primary): spec.targetRef must name the Deployment you deploy, "
                "not one canary generates")
    if labels.get("app.kubernetes.io/managed-by") == "canary":
        return (f"Deployment {meta.get('name')} is generated by canary (labelled "
                "app.kubernetes.io/managed-by=canary): spec.targetRef must name the "
                "Deployment you deploy")
    return None
