"""How a Gateway API Gateway routes one request through its HTTPRoutes and GRPCRoutes
(pure; no I/O).

The request reaches the Gateway's address (``NAME.NAMESPACE.gateway``) with a ``Host``
header (port ignored). The listeners whose hostname matches it most specifically (exact,
then the longest wildcard, then none) take it; of the routes attached to them (see
:mod:`.attachment`) those with a hostname matching it (the route's hostnames under the
listener's) are candidates, and across all their rules the best match wins, by the spec's
precedence: the most characters in a matching exact hostname, then in a matching hostname;
then the match's own precedence (:func:`.httproute.match_rank`,
:func:`.grpcroute.match_rank`); then the oldest route; then ``namespace/name`` in
alphabetical order; then the first rule and match in order. A gRPC request prefers
GRPCRoutes, then falls back to HTTPRoutes. No listener or match: 404.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canary.devenv.traffic import grpcroute, httproute
from canary.devenv.traffic.attachment import (
    GRPC_ROUTE,
    Attachment,
    Listener,
    attach,
    effective_hostnames,
    hostname_matches,
    parent_gateway,
)
from canary.devenv.traffic.envoy import cluster_name
from canary.devenv.traffic.forwarding import forward
from canary.devenv.traffic.references import Permits
from canary.devenv.traffic.routing import Request, RouteDecision

#: The DNS suffix of the address the simulator gives each Gateway it serves.
ADDRESS_SUFFIX = "gateway"

JSON = dict[str, Any]


def address_of(namespace: str, name: str) -> str:
    """Where clients send a Gateway's traffic (its ``status.addresses``)."""
    return f"{name}.{namespace}.{ADDRESS_SUFFIX}"


def gateway_at(host: str) -> tuple[str, str] | None:
    """(namespace, name) of the Gateway an address is; None for any other host."""
    parts = host.split(".")
    return (parts[1], parts[0]) if len(parts) == 3 and parts[2] == ADDRESS_SUFFIX else None


@dataclass(frozen=True)
class AttachedRoute:
    """A route of ``kind`` attached to some listeners of one Gateway."""

    kind: str
    route: Mapping[str, Any]
    listeners: tuple[Listener, ...]

    @property
    def key(self) -> tuple[str, str]:
        """(creation time, ``namespace/name``): the ties' order among routes."""
        meta = self.route.get("metadata") or {}
        return (str(meta.get("creationTimestamp", "")),
                f"{meta.get('namespace')}/{meta.get('name')}")


def attachments(route: Mapping[str, Any], kind: str, gateways: Mapping[str, list[Listener]],
                namespace_labels: Callable[[str], Mapping[str, str]]) -> list[Attachment]:
    """How each parentRef of ``route`` naming one of ``gateways`` (``namespace/name`` ->
    listeners) attaches; parentRefs naming other parents are left out."""
    meta = route.get("metadata") or {}
    namespace = str(meta.get("namespace"))
    found = []
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        gateway = parent_gateway(ref, namespace)
        if gateway is not None and gateway in gateways:
            found.append(attach(route, kind, ref, gateways[gateway], namespace_labels(namespace)))
    return found


def attached_to(gateway: str, routes: Iterable[tuple[str, Mapping[str, Any], list[Attachment]]]
                ) -> list[AttachedRoute]:
    """The routes (kind, object, attachments) attached to ``gateway``, with its listeners
    that took each."""
    attached = []
    for kind, route, found in routes:
        listeners = tuple(dict.fromkeys(
            listener for a in found if a.gateway == gateway for listener in a.listeners))
        if listeners:
            attached.append(AttachedRoute(kind, route, listeners))
    return attached


def listener_rank(listener: Listener, host: str) -> tuple[int, int] | None:
    if listener.hostname is None:
        return (2, 0)
    if not hostname_matches(listener.hostname, host):
        return None
    return (1, -len(listener.hostname)) if listener.hostname.startswith("*.") else (0, 0)


def host_rank(attached: AttachedRoute, listeners: Sequence[Listener], host: str
              ) -> tuple[int, int] | None:
    """How specifically a route's hostnames match ``host`` on ``listeners``; lower wins."""
    ranks = []
    hostnames = [str(h) for h in (attached.route.get("spec") or {}).get("hostnames") or []]
    for listener in attached.listeners:
        if listener not in listeners:
            continue
        for name in effective_hostnames(listener, hostnames) or []:
            if name == "*" or hostname_matches(name, host):
                exact = 0 if name.startswith("*") else len(name)
                ranks.append((-exact, -len(name.lstrip("*"))))
    return min(ranks) if ranks else None


def _candidates(routes: Sequence[AttachedRoute], listeners: Sequence[Listener],
                request: Request) -> list[tuple[tuple[Any, ...], AttachedRoute, JSON]]:
    found = []
    grpc = grpcroute.is_grpc(request)
    for attached in routes:
        rank = host_rank(attached, listeners, request.host)
        if rank is None or (attached.kind == GRPC_ROUTE and not grpc):
            continue
        module: Any = grpcroute if attached.kind == GRPC_ROUTE else httproute
        kind_rank = 0 if attached.kind == GRPC_ROUTE else 1
        for i, rule in enumerate((attached.route.get("spec") or {}).get("rules") or []):
            for j, match in enumerate(rule.get("matches") or [{}]):
                if module.match_applies(match, request):
                    key = (kind_rank, rank, module.match_rank(match), *attached.key, i, j)
                    found.append((key, attached, rule))
    return found


def route_through(listeners: Sequence[Listener], routes: Sequence[AttachedRoute],
                  request: Request, permits: Permits, rng: random.Random) -> RouteDecision:
    """Route ``request`` through a Gateway with ``listeners`` and the ``routes`` attached."""
    ranked = [(rank, listener) for listener in listeners
              if (rank := listener_rank(listener, request.host)) is not None]
    if not ranked:
        return RouteDecision(None)
    best = min(rank for rank, _ in ranked)
    taking = [listener for rank, listener in ranked if rank == best]
    candidates = _candidates(routes, taking, request)
    if not candidates:
        return RouteDecision(None)
    key, attached, rule = min(candidates, key=lambda c: c[0])
    meta = attached.route.get("metadata") or {}
    namespace = str(meta.get("namespace"))
    cluster = cluster_name(attached.kind, namespace, str(meta.get("name")), key[-2])
    return forward(rule, attached.kind, namespace, request.headers, permits, rng,
                   name=rule.get("name"), cluster=cluster)
