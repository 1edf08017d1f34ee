"""The Services every router writes, as server-side apply manifests (pure).

``<svc>`` (the apex, which clients call), ``<svc>-primary`` and ``<svc>-canary``: each
router decides where the apex points. Only the fields listed here are owned by canary's
field manager, so fields other managers set (labels, annotations, ...) are preserved.
"""

from __future__ import annotations

from canary.models.canary import Canary
from canary.router.port import JSON, service_name
from canary.targets.deployment import MANAGED_BY, owner_reference, primary_name


def metadata(canary: Canary, owner: JSON | None, name: str) -> JSON:
    """Labelled as canary's; owned by ``owner`` (None: by no Canary)."""
    meta: JSON = {"name": name, "namespace": canary.namespace, "labels": dict(MANAGED_BY)}
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta


def service(canary: Canary, owner: JSON | None, name: str, selector: dict[str, str]) -> JSON:
    """A ClusterIP Service ``name`` on ``spec.service``'s port, selecting ``selector``."""
    spec = canary.spec.service
    port: JSON = {"name": spec.port_name or "http", "port": spec.port,
                  "targetPort": spec.target_port or spec.port, "protocol": "TCP"}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(canary, owner, name),
            "spec": {"type": "ClusterIP", "selector": selector, "ports": [port]}}


def services(canary: Canary, owner: JSON, label: tuple[str, str],
             apex_to_canary: bool = False) -> list[JSON]:
    """The apex, primary and canary Services; the apex selects the primary's pods, or the
    canary's with ``apex_to_canary``. ``label`` is the target's selector label."""
    key, value = label
    name = service_name(canary)
    primary, target = {key: primary_name(value)}, {key: value}
    return [
        service(canary, owner, name, target if apex_to_canary else primary),
        service(canary, owner, f"{name}-primary", primary),
        service(canary, owner, f"{name}-canary", target),
    ]


def managed_services(name: str) -> frozenset[tuple[str, str]]:
    """(kind, name) of the three Services of the apex Service ``name``."""
    return frozenset({("Service", name), ("Service", f"{name}-primary"),
                      ("Service", f"{name}-canary")})


def released_apex(canary: Canary, label: tuple[str, str]) -> JSON:
    """The apex Service selecting the target's pods (``label``), owned by no Canary:
    what gives a deleted Canary's traffic back to its target."""
    key, value = label
    return service(canary, None, service_name(canary), {key: value})
