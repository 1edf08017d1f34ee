"""Routing objects a Canary no longer routes with: those it controls that its current
provider and apex Service name do not manage (``spec.provider`` or
``spec.service.name`` changed on a live Canary).

Left in place, an old VirtualService would keep steering mesh traffic, or an old route
keep its Gateway's listener, beside the routing canary now keeps current. They are
deleted once the current routing is written, so that traffic is never without a route.
An object of a kind the current router manages but did not write this time (a Gateway
API route while its spec cannot be built) stays: that is a held rollout, not a change of
provider. Services stay too: they route nothing by themselves, and clients may still
call an old name; they go with the Canary.
"""

from __future__ import annotations

from collections.abc import Iterator

from canary.controller.caches import Caches
from canary.kube import JSON
from canary.router import Named, routed_kinds


def controlled_by(obj: JSON, uid: str) -> bool:
    """Whether ``obj``'s controller is the Canary with ``uid``."""
    return any(ref.get("controller") and ref.get("kind") == "Canary" and ref.get("uid") == uid
               for ref in obj["metadata"].get("ownerReferences") or [])


def retired(caches: Caches, namespace: str, uid: str, managed: frozenset[Named]
            ) -> Iterator[JSON]:
    """The cached routing objects of ``namespace`` (Services aside) the Canary ``uid``
    controls that are not among ``managed`` (kind, name)."""
    for kind in routed_kinds():
        if kind == "Service":
            continue
        for obj in caches.generated(kind).items(namespace):
            if controlled_by(obj, uid) and (kind, obj["metadata"]["name"]) not in managed:
                yield obj
