"""Which Gateway listeners a Gateway API route attaches to, as the spec defines it (pure).

A route's ``parentRef`` names a Gateway (``group`` gateway.networking.k8s.io, ``kind``
Gateway, ``namespace`` the route's own unless given) and optionally one of its listeners by
``sectionName`` or ``port``. Of the listeners it names, those whose ``allowedRoutes``
admit the route (its namespace: ``Same``, ``All`` or a ``Selector`` on the namespace's
labels; its kind, among the kinds the listener's protocol carries) and whose hostname
intersects the route's ``hostnames`` take it. When none does, the reason is the first step
that left no listener: ``NoMatchingParent`` (no listener of that name or port),
``NotAllowedByListeners``, ``NoMatchingListenerHostname``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

GROUP = "gateway.networking.k8s.io"
HTTP_ROUTE = "HTTPRoute"
GRPC_ROUTE = "GRPCRoute"
#: The route kinds a listener of each protocol carries here.
KINDS_BY_PROTOCOL = {"HTTP": (HTTP_ROUTE, GRPC_ROUTE), "HTTPS": (HTTP_ROUTE, GRPC_ROUTE)}

ACCEPTED = "Accepted"
NO_MATCHING_PARENT = "NoMatchingParent"
NOT_ALLOWED = "NotAllowedByListeners"
NO_MATCHING_HOSTNAME = "NoMatchingListenerHostname"

JSON = dict[str, Any]


@dataclass(frozen=True)
class Listener:
    """One listener of a Gateway, with what decides which routes it takes."""

    gateway: str
    name: str
    port: int
    protocol: str
    hostname: str | None = None
    allowed_from: str = "Same"
    selector: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    kinds: tuple[str, ...] = (HTTP_ROUTE, GRPC_ROUTE)

    @property
    def namespace(self) -> str:
        return self.gateway.partition("/")[0]


@dataclass(frozen=True)
class Attachment:
    """The outcome of one parentRef: the listeners taking the route, or why none does."""

    parent_ref: Mapping[str, Any]
    gateway: str
    listeners: tuple[Listener, ...]
    reason: str

    @property
    def accepted(self) -> bool:
        return bool(self.listeners)


def _allowed_kinds(protocol: str, allowed: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    carried = KINDS_BY_PROTOCOL.get(protocol, ())
    if not allowed:
        return carried
    named = {str(k.get("kind")) for k in allowed if k.get("group", GROUP) == GROUP}
    return tuple(kind for kind in carried if kind in named)


def listeners_of(gateway: Mapping[str, Any]) -> list[Listener]:
    """The listeners of a Gateway object, their defaults filled in as the API server would."""
    meta = gateway.get("metadata") or {}
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    listeners = []
    for spec in (gateway.get("spec") or {}).get("listeners") or []:
        allowed = spec.get("allowedRoutes") or {}
        namespaces = allowed.get("namespaces") or {}
        listeners.append(Listener(
            gateway=key, name=str(spec.get("name")), port=int(spec.get("port") or 0),
            protocol=str(spec.get("protocol", "")),
            hostname=str(spec["hostname"]).lower() if spec.get("hostname") else None,
            allowed_from=str(namespaces.get("from", "Same")),
            selector=dict(namespaces.get("selector") or {}),
            kinds=_allowed_kinds(str(spec.get("protocol", "")), allowed.get("kinds") or []),
        ))
    return listeners


def hostname_matches(pattern: str, host: str) -> bool:
    """A Gateway API hostname (``*.example.com`` is a suffix match over one label or more)
    against a concrete host."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def intersect(listener: str | None, route: str) -> str | None:
    """What a route hostname stands for under a listener hostname: the more specific of
    the two when they intersect, else None."""
    if listener is None or listener == route:
        return route
    listener_wild, route_wild = listener.startswith("*."), route.startswith("*.")
    if listener_wild and route_wild:
        if route.endswith(listener[1:]):
            return route
        return listener if listener.endswith(route[1:]) else None
    if listener_wild:
        return route if hostname_matches(listener, route) else None
    if route_wild:
        return listener if hostname_matches(route, listener) else None
    return None


def effective_hostnames(listener: Listener, hostnames: Sequence[str]) -> list[str] | None:
    """The route's hostnames that apply on ``listener`` (``["*"]`` standing for any host
    when neither names one); None when they do not intersect."""
    if not hostnames:
        return [listener.hostname] if listener.hostname else ["*"]
    found = [h for h in (intersect(listener.hostname, n.lower()) for n in hostnames) if h]
    return found or None


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (``matchLabels`` and ``matchExpressions``) against labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = str(expression.get("key")), str(expression.get("operator"))
        values = [str(v) for v in expression.get("values") or []]
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def admits(listener: Listener, kind: str, namespace: str,
           namespace_labels: Mapping[str, str]) -> bool:
    """Whether ``listener``'s ``allowedRoutes`` take a route of ``kind`` in ``namespace``."""
    if kind not in listener.kinds:
        return False
    if listener.allowed_from == "All":
        return True
    if listener.allowed_from == "Selector":
        return selector_matches(listener.selector, namespace_labels)
    return namespace == listener.namespace


def parent_gateway(parent_ref: Mapping[str, Any], namespace: str) -> str | None:
    """``namespace/name`` of the Gateway a parentRef names; None for another kind of parent."""
    if parent_ref.get("group", GROUP) != GROUP or parent_ref.get("kind", "Gateway") != "Gateway":
        return None
    return f"{parent_ref.get('namespace') or namespace}/{parent_ref.get('name')}"


def attach(route: Mapping[str, Any], kind: str, parent_ref: Mapping[str, Any],
           listeners: Iterable[Listener], namespace_labels: Mapping[str, str]) -> Attachment:
    """Attach a route to the listeners of the Gateway its ``parent_ref`` names (the caller
    gives that Gateway's listeners)."""
    meta, spec = route.get("metadata") or {}, route.get("spec") or {}
    namespace = str(meta.get("namespace"))
    gateway = parent_gateway(parent_ref, namespace) or ""
    named = [listener for listener in listeners
             if parent_ref.get("sectionName") in (None, listener.name)
             and parent_ref.get("port") in (None, listener.port)]
    if not named:
        return Attachment(parent_ref, gateway, (), NO_MATCHING_PARENT)
    allowed = [listener for listener in named
               if admits(listener, kind, namespace, namespace_labels)]
    if not allowed:
        return Attachment(parent_ref, gateway, (), NOT_ALLOWED)
    hostnames = [str(h) for h in spec.get("hostnames") or []]
    taking = tuple(listener for listener in allowed
                   if effective_hostnames(listener, hostnames) is not None)
    if not taking:
        return Attachment(parent_ref, gateway, (), NO_MATCHING_HOSTNAME)
    return Attachment(parent_ref, gateway, taking, ACCEPTED)
