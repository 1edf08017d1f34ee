"""The status the simulator, as a Gateway API controller, gives what it serves (pure).

Its GatewayClasses (``spec.controllerName`` :data:`CONTROLLER_NAME`) are ``Accepted``.
Their Gateways are ``Accepted`` and ``Programmed``, with an address
(:func:`.gatewayapi.address_of`) and, per listener, the route kinds it carries, how many
routes it took and its conditions (a listener of a protocol other than HTTP or HTTPS is
not accepted: ``UnsupportedProtocol``). Each route gets, per parentRef naming one of
those Gateways, an entry in ``status.parents`` with this controller's name: ``Accepted``
(or why not, see :mod:`.attachment`) and ``ResolvedRefs`` (or the first backendRef's
problem, see :mod:`.references`); entries of other controllers are kept. Every condition
carries the object's generation; its ``lastTransitionTime`` moves only when its status
does, so an unchanged object yields an unchanged status and is not written again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from canary.devenv.traffic import references
from canary.devenv.traffic.attachment import (
    ACCEPTED,
    GROUP,
    KINDS_BY_PROTOCOL,
    Attachment,
    Listener,
)
from canary.devenv.traffic.gatewayapi import address_of
from canary.devenv.traffic.references import Permits

CONTROLLER_NAME = "canary.dev/traffic-simulator"
#: The GatewayClass the local environment creates for the simulator at start-up.
GATEWAY_CLASS = "traffic-simulator"

JSON = dict[str, Any]

_MESSAGES = {
    ACCEPTED: "attached to the Gateway",
    "NoMatchingParent": "no listener of the Gateway has this sectionName or port",
    "NotAllowedByListeners": "the listeners' allowedRoutes do not admit this route",
    "NoMatchingListenerHostname": "no hostname of the route matches a listener's hostname",
    "ResolvedRefs": "every backendRef resolved",
    references.INVALID_KIND: "a backendRef is not a Service",
    references.REF_NOT_PERMITTED: "a backendRef to another namespace has no ReferenceGrant",
    references.BACKEND_NOT_FOUND: "a backendRef names a Service that does not exist",
}


class Conditions:
    """Builds conditions of one object, keeping each unchanged one's transition time."""

    def __init__(self, obj: Mapping[str, Any], previous: Sequence[Mapping[str, Any]],
                 now: str) -> None:
        self.generation = int((obj.get("metadata") or {}).get("generation") or 0)
        self.previous = {str(c.get("type")): c for c in previous}
        self.now = now

    def __call__(self, kind: str, ok: bool, reason: str, message: str = "") -> JSON:
        status = "True" if ok else "False"
        old = self.previous.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        return {"type": kind, "status": status, "reason": reason,
                "message": message or _MESSAGES.get(reason, reason),
                "observedGeneration": self.generation, "lastTransitionTime": since or self.now}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def gateway_class_status(gateway_class: Mapping[str, Any], now: str) -> JSON:
    condition = Conditions(gateway_class, _status(gateway_class).get("conditions") or [], now)
    return {"conditions": [condition("Accepted", True, "Accepted", "served by the traffic "
                                     "simulator")]}


def _listener_status(listener: Listener, attached: int, previous: Mapping[str, Any],
                     gateway: Mapping[str, Any], now: str) -> JSON:
    condition = Conditions(gateway, previous.get("conditions") or [], now)
    supported = listener.protocol in KINDS_BY_PROTOCOL
    reason = "Accepted" if supported else "UnsupportedProtocol"
    return {
        "name": listener.name, "attachedRoutes": attached,
        "supportedKinds": [{"group": GROUP, "kind": kind} for kind in listener.kinds],
        "conditions": [
            condition("Accepted", supported, reason, f"protocol {listener.protocol}"),
            condition("Programmed", supported, "Programmed" if supported else "Invalid",
                      "routes requests" if supported else "not served"),
            condition("ResolvedRefs", True, "ResolvedRefs", "no references to resolve"),
            condition("Conflicted", False, "NoConflicts", "no conflicts"),
        ],
    }


def gateway_status(gateway: Mapping[str, Any], listeners: Sequence[Listener],
                   attached: Mapping[str, int], now: str) -> JSON:
    """A served Gateway's status; ``attached`` counts the routes each listener took."""
    meta = gateway.get("metadata") or {}
    previous = _status(gateway)
    condition = Conditions(gateway, previous.get("conditions") or [], now)
    old_listeners = {str(s.get("name")): s for s in previous.get("listeners") or []}
    valid = all(listener.protocol in KINDS_BY_PROTOCOL for listener in listeners)
    return {
        "addresses": [{"type": "Hostname",
                       "value": address_of(str(meta.get("namespace")), str(meta.get("name")))}],
        "conditions": [
            condition("Accepted", True, "Accepted" if valid else "ListenersNotValid",
                      "served by the traffic simulator"),
            condition("Programmed", True, "Programmed", "routes requests at its address"),
        ],
        "listeners": [_listener_status(listener, attached.get(listener.name, 0),
                                       old_listeners.get(listener.name) or {}, gateway, now)
                      for listener in listeners],
    }


def resolved_refs(route: Mapping[str, Any], kind: str, permits: Permits,
                  service_exists: Callable[[str, str], bool]) -> str:
    """``ResolvedRefs``, or the problem of the route's first backendRef that has one."""
    namespace = str((route.get("metadata") or {}).get("namespace"))
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in references.backend_refs(rule):
            problem = references.problem(ref, kind, namespace, permits, service_exists)
            if problem is not None:
                return problem
    return "ResolvedRefs"


def _same_parent(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return dict(a) == dict(b)


def route_parents(route: Mapping[str, Any], found: Sequence[Attachment], resolved: str,
                  now: str) -> list[JSON]:
    """``status.parents`` of a route: other controllers' entries, then one per parentRef
    naming a Gateway this controller serves."""
    previous = list(_status(route).get("parents") or [])
    others = [p for p in previous if p.get("controllerName") != CONTROLLER_NAME]
    ours = []
    for attachment in found:
        old: Mapping[str, Any] = next(
            (p for p in previous if p.get("controllerName") == CONTROLLER_NAME
             and _same_parent(p.get("parentRef") or {}, attachment.parent_ref)), {})
        condition = Conditions(route, old.get("conditions") or [], now)
        ours.append({
            "parentRef": dict(attachment.parent_ref), "controllerName": CONTROLLER_NAME,
            "conditions": [
                condition("Accepted", attachment.accepted, attachment.reason),
                condition("ResolvedRefs", resolved == "ResolvedRefs", resolved),
            ],
        })
    return others + ours
