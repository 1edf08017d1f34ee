"""What a Gateway API route rule does with a request it matched (pure; no I/O).

A backend is picked by relative ``weight`` (1 when unset; 0 never gets traffic); a rule
whose backends all weigh 0, or that has none, answers 500, as does a pick that cannot be
followed (see :mod:`.references`). Filters of the rule, then of the picked backend, apply
in order: ``RequestHeaderModifier`` (``set``, ``add``, ``remove``) changes the forwarded
request's headers; ``ResponseHeaderModifier`` ``set``/``add`` of ``Set-Cookie`` gives the
cookies the response sets (how session affinity is emulated); ``RequestMirror`` copies the
request to its backend, for ``percent`` of requests or ``fraction``
(numerator/denominator), all of them when neither is given. Other filters
(``RequestRedirect``, ``URLRewrite``, ``CORS``, ``ExtensionRef``) are not applied.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canary.devenv.traffic.references import Permits, followable, service_host
from canary.devenv.traffic.routing import Destination, RouteDecision, pick_weighted

#: What the gateway answers when a rule has nowhere valid to send a request.
NO_BACKEND_STATUS = 500


def weight_of(backend: Mapping[str, Any]) -> int:
    return max(0, int(backend.get("weight", 1)))


def pick_backend(backends: Sequence[Mapping[str, Any]], rng: random.Random
                 ) -> Mapping[str, Any] | None:
    """One backend by relative weight; None when none has a weight above 0."""
    return pick_weighted(backends, [weight_of(b) for b in backends], rng)


def mirror_share(mirror: Mapping[str, Any]) -> float:
    """The fraction of requests a RequestMirror filter copies."""
    if "percent" in mirror:
        return float(mirror["percent"]) / 100.0
    fraction = mirror.get("fraction")
    if fraction:
        return float(fraction.get("numerator", 0)) / float(fraction.get("denominator") or 100)
    return 1.0


@dataclass
class _Effects:
    """What the filters applied so far did."""

    headers: dict[str, str]
    mirrors: list[Destination] = field(default_factory=list)
    set_cookies: list[str] = field(default_factory=list)


def _modify_request(effects: _Effects, spec: Mapping[str, Any]) -> None:
    for header in spec.get("set") or []:
        effects.headers[str(header["name"]).lower()] = str(header["value"])
    for header in spec.get("add") or []:
        name = str(header["name"]).lower()
        old = effects.headers.get(name)
        effects.headers[name] = f"{old},{header['value']}" if old else str(header["value"])
    for name in spec.get("remove") or []:
        effects.headers.pop(str(name).lower(), None)


def _modify_response(effects: _Effects, spec: Mapping[str, Any]) -> None:
    for operation in ("set", "add"):
        for header in spec.get(operation) or []:
            if str(header.get("name", "")).lower() == "set-cookie":
                effects.set_cookies.append(str(header["value"]))


def _apply(effects: _Effects, filters: Sequence[Mapping[str, Any]], kind: str,
           namespace: str, permits: Permits, rng: random.Random) -> None:
    for spec in filters:
        kind_of_filter = spec.get("type")
        if kind_of_filter == "RequestHeaderModifier":
            _modify_request(effects, spec.get("requestHeaderModifier") or {})
        elif kind_of_filter == "ResponseHeaderModifier":
            _modify_response(effects, spec.get("responseHeaderModifier") or {})
        elif kind_of_filter == "RequestMirror":
            mirror = spec.get("requestMirror") or {}
            ref = mirror.get("backendRef") or {}
            if followable(ref, kind, namespace, permits) and rng.random() < mirror_share(mirror):
                effects.mirrors.append(Destination(service_host(ref, namespace)))


def backend_cluster(cluster: str, backends: Sequence[Mapping[str, Any]],
                    backend: Mapping[str, Any]) -> str:
    """The Envoy Gateway cluster of ``backend`` in a rule whose cluster is ``cluster``: the
    rule's, unless a backendRef of the rule has filters (:mod:`.envoy`)."""
    if not any(b.get("filters") for b in backends):
        return cluster
    index = next(i for i, b in enumerate(backends) if b is backend)
    return f"{cluster}/backend/{index}"


def forward(rule: Mapping[str, Any], kind: str, namespace: str, headers: Mapping[str, str],
            permits: Permits, rng: random.Random, name: str | None = None,
            cluster: str | None = None) -> RouteDecision:
    """Send a request matched by ``rule`` (of a route of ``kind`` in ``namespace``, whose
    Envoy Gateway cluster is ``cluster``) on."""
    effects = _Effects(dict(headers))
    _apply(effects, rule.get("filters") or [], kind, namespace, permits, rng)
    backends = rule.get("backendRefs") or []
    backend = pick_backend(backends, rng)
    if backend is None or not followable(backend, kind, namespace, permits):
        return RouteDecision(None, status=NO_BACKEND_STATUS, route_name=name)
    _apply(effects, backend.get("filters") or [], kind, namespace, permits, rng)
    return RouteDecision(
        destination=Destination(service_host(backend, namespace)),
        mirrors=tuple(effects.mirrors), set_cookies=tuple(effects.set_cookies),
        route_name=name, headers=effects.headers,
        cluster=None if cluster is None else backend_cluster(cluster, backends, backend),
    )
