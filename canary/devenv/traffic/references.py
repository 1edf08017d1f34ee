"""Whether a Gateway API route's backendRef can be followed, and why not (pure).

A backendRef names a core ``Service`` (``group`` "" and ``kind`` Service by default); any
other kind is ``InvalidKind``. A Service of another namespace needs a ReferenceGrant in
that namespace allowing routes of the route's kind and namespace to refer to it
(``RefNotPermitted``). A Service that does not exist is ``BackendNotFound``. Traffic to a
backend that cannot be followed is answered 500 by the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from canary.devenv.traffic.attachment import GROUP
from canary.devenv.traffic.routing import CLUSTER_DOMAIN

INVALID_KIND = "InvalidKind"
REF_NOT_PERMITTED = "RefNotPermitted"
BACKEND_NOT_FOUND = "BackendNotFound"

#: Whether a ReferenceGrant lets (route kind, route namespace) refer to (namespace, name).
Permits = Callable[[str, str, str, str], bool]


def is_service(ref: Mapping[str, Any]) -> bool:
    return bool(ref.get("group", "") == "" and ref.get("kind", "Service") == "Service")


def target(ref: Mapping[str, Any], namespace: str) -> tuple[str, str]:
    """(namespace, name) of the object a backendRef of a route in ``namespace`` names."""
    return str(ref.get("namespace") or namespace), str(ref.get("name"))


def service_host(ref: Mapping[str, Any], namespace: str) -> str:
    """The Service FQDN a backendRef names, as the mesh metrics name a destination."""
    ref_namespace, name = target(ref, namespace)
    return f"{name}.{ref_namespace}.svc.{CLUSTER_DOMAIN}"


def grants_allow(grants: Iterable[Mapping[str, Any]], kind: str, namespace: str,
                 to_namespace: str, to_name: str) -> bool:
    """Whether a ReferenceGrant of ``to_namespace`` lets routes of ``kind`` in ``namespace``
    refer to the Service ``to_name`` there."""
    for grant in grants:
        if str((grant.get("metadata") or {}).get("namespace")) != to_namespace:
            continue
        spec = grant.get("spec") or {}
        sources = any(f.get("group") == GROUP and f.get("kind") == kind
                      and f.get("namespace") == namespace for f in spec.get("from") or [])
        targets = any(t.get("group", "") == "" and t.get("kind") == "Service"
                      and t.get("name") in (None, "", to_name) for t in spec.get("to") or [])
        if sources and targets:
            return True
    return False


def followable(ref: Mapping[str, Any], kind: str, namespace: str, permits: Permits) -> bool:
    """Whether traffic can be forwarded to a backendRef (existence aside)."""
    if not is_service(ref):
        return False
    to_namespace, name = target(ref, namespace)
    return to_namespace == namespace or permits(kind, namespace, to_namespace, name)


def problem(ref: Mapping[str, Any], kind: str, namespace: str, permits: Permits,
            service_exists: Callable[[str, str], bool]) -> str | None:
    """Why a backendRef cannot be followed (a ``ResolvedRefs`` reason), or None."""
    if not is_service(ref):
        return INVALID_KIND
    to_namespace, name = target(ref, namespace)
    if to_namespace != namespace and not permits(kind, namespace, to_namespace, name):
        return REF_NOT_PERMITTED
    if not service_exists(to_namespace, name):
        return BACKEND_NOT_FOUND
    return None


def backend_refs(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every backendRef a rule names: its backends and the mirrors of its filters and its
    backends' filters."""
    refs: list[Mapping[str, Any]] = []
    filters = list(rule.get("filters") or [])
    for backend in rule.get("backendRefs") or []:
        refs.append(backend)
        filters += backend.get("filters") or []
    for spec in filters:
        mirror = spec.get("requestMirror") or {}
        if spec.get("type") == "RequestMirror" and mirror.get("backendRef"):
            refs.append(mirror["backendRef"])
    return refs
