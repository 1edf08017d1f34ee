"""Traffic entering the mesh through an Istio ingress gateway (pure; no I/O).

A request to a Service that fronts gateway pods is routed as the gateway's Envoy routes
it: by the VirtualServices bound to the Gateways selecting those pods (``gateways`` names
``namespace/name``, or a bare name of the VirtualService's namespace) whose ``hosts`` match
the request's Host header, the most specific host first (exact, then the longest
``*.suffix`` wildcard, then ``*``), the oldest VirtualService among equals. The Service
fronts a Gateway when its selector includes every label of the Gateway's ``selector``;
only Gateways of the Service's own namespace count, as with Istio's
``PILOT_SCOPE_GATEWAY_TO_NAMESPACE``, so each namespace can have a gateway of its own.
The Gateway's ``servers`` (ports, TLS, hosts) are not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from canary.devenv.traffic.routing import Source, bound_to, host_matches, qualify

#: The workload Istio reports as the source of what its ingress gateway forwards.
GATEWAY_WORKLOAD = "istio-ingressgateway"

JSON = dict[str, Any]


@dataclass(frozen=True)
class Ingress:
    """How a request to a gateway Service enters the mesh: the Gateways it goes through
    and the gateway workload the metrics name as its source."""

    gateways: tuple[str, ...]
    source: Source


def _labels_include(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def ingress_of(service: JSON, gateways: Iterable[JSON]) -> Ingress | None:
    """The ingress a Service is, or None when it fronts no Gateway's pods."""
    meta = service.get("metadata") or {}
    namespace = str(meta.get("namespace"))
    selector = dict((service.get("spec") or {}).get("selector") or {})
    fronted = []
    for gateway in gateways:
        gateway_meta = gateway.get("metadata") or {}
        wanted = (gateway.get("spec") or {}).get("selector") or {}
        if selector and wanted and str(gateway_meta.get("namespace")) == namespace \
                and _labels_include(selector, wanted):
            fronted.append(f"{namespace}/{gateway_meta.get('name')}")
    if not fronted:
        return None
    labels = {"app": GATEWAY_WORKLOAD, **selector}
    return Ingress(tuple(sorted(fronted)), Source(GATEWAY_WORKLOAD, namespace, labels))


def host_rank(pattern: str, host: str) -> tuple[int, int] | None:
    """How specifically ``pattern`` matches ``host`` (lower is more specific), or None."""
    if not host_matches(pattern, host):
        return None
    if pattern == "*":
        return (2, 0)
    if pattern.startswith("*."):
        return (1, -len(pattern))
    return (0, 0)


def gateway_route(virtual_services: Iterable[JSON], through: tuple[str, ...], host: str
                  ) -> tuple[JSON, str] | None:
    """The VirtualService (spec, namespace) routing ``host`` at the Gateways ``through``;
    None when none does (the gateway answers 404)."""
    candidates = []
    for vs in virtual_services:
        meta, spec = vs.get("metadata") or {}, vs.get("spec") or {}
        namespace = str(meta.get("namespace"))
        if not spec.get("gateways") or not bound_to(spec["gateways"], namespace, through):
            continue
        ranks = [rank for h in spec.get("hosts") or []
                 if (rank := host_rank(qualify(str(h), namespace), host)) is not None]
        if ranks:
            candidates.append((min(ranks), str(meta.get("creationTimestamp", "")), namespace,
                               str(meta.get("name")), spec))
    if not candidates:
        return None
    *_, namespace, _, spec = min(candidates, key=lambda c: c[:4])
    return spec, namespace
