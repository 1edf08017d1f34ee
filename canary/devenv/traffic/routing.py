"""How Istio routes one HTTP request through a VirtualService (pure; no I/O).

Implements the parts of Istio's routing that progressive delivery relies on: ``http``
routes tried in order, each matching when any of its ``match`` blocks matches (all
conditions of a block together; a route without ``match`` matches everything);
exact/prefix/regex string matches on the URI, method, authority, headers (cookies are the
``cookie`` header), query parameters and ``withoutHeaders``; weighted destinations;
mirroring with a percentage; and response headers (how session affinity sets its cookie).
Regular expressions match the whole value, as Envoy's RE2 matcher does. A request comes
either from the mesh or through ingress gateways (``Request.gateways``): a VirtualService
or a match block applies only to the traffic of the gateways it is bound to, ``mesh`` when
it names none.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from canary.errors import ConfigError

CLUSTER_DOMAIN = "cluster.local"

T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    """The workload a request comes from, as Istio knows it from the caller's identity:
    its metrics' ``source_*`` labels, and its pod labels for ``sourceLabels`` matches."""

    workload: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def app(self) -> str:
        return self.labels.get("app", self.workload)


#: The simulator's own generated traffic.
SIMULATOR = Source("traffic-simulator", "canary-devenv", {"app": "traffic-simulator"})
#: A caller outside the mesh, or one that did not say who it is.
UNKNOWN = Source("unknown", "unknown", {})


@dataclass(frozen=True)
class Request:
    """One simulated request. Header names are lower case; cookies travel in ``cookie``."""

    authority: str
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    source: Source = SIMULATOR
    #: The Gateways (``namespace/name``) it entered through; empty for mesh traffic.
    gateways: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        """The Host header without its port (what a gateway routes by); the authority
        when it was not sent."""
        host = (self.headers.get("host") or self.authority).strip().lower()
        name, _, port = host.rpartition(":")
        return name if name and port.isdigit() else host

    @property
    def uri(self) -> str:
        return self.path.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.path.split("?", 1)[1])) if "?" in self.path else {}


@dataclass(frozen=True)
class Destination:
    host: str
    subset: str | None = None


@dataclass(frozen=True)
class RouteDecision:
    """Where a request goes: ``destination`` None means the proxy answers ``status``
    itself (404: no route matched)."""

    destination: Destination | None
    mirrors: tuple[Destination, ...] = ()
    set_cookies: tuple[str, ...] = ()
    route_name: str | None = None
    status: int = 404
    #: The request headers as forwarded, when the route changed them.
    headers: Mapping[str, str] | None = None
    #: The Envoy Gateway cluster the request went through (Gateway API routes only).
    cluster: str | None = None


def qualify(host: str, namespace: str, domain: str = CLUSTER_DOMAIN) -> str:
    """A host as Istio resolves it in routing objects of ``namespace``: a name without a dot
    is a Service of that namespace; anything with a dot is taken as written."""
    host = host.strip().lower()
    if "." in host or host == "*":
        return host
    return f"{host}.{namespace}.svc.{domain}"


def normalize_host(host: str) -> str:
    """What a client dials -> the Service FQDN the mesh sees, as Kubernetes DNS search
    paths expand it: ``svc.namespace`` and ``svc.namespace.svc`` are completed; a bare
    name is refused because it has no namespace."""
    host = host.strip().lower().rstrip(".")
    parts = host.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"host {host!r} needs its namespace, e.g. 'podinfo.test'")
    if len(parts) == 2:
        return f"{host}.svc.{CLUSTER_DOMAIN}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.{CLUSTER_DOMAIN}"
    return host


def host_matches(pattern: str, host: str) -> bool:
    """Exact host equality, or a ``*.suffix`` wildcard (which needs a non-empty label
    before the suffix, as Envoy's domain matching does)."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


def qualify_gateway(gateway: str, namespace: str) -> str:
    """A gateway reference as Istio reads it in objects of ``namespace``: ``ns/name`` as
    written, a bare name in ``namespace``; ``mesh`` stays itself."""
    gateway = gateway.strip()
    if gateway == "mesh" or "/" in gateway:
        return gateway
    return f"{namespace}/{gateway}"


def bound_to(gateways: Sequence[str], namespace: str, through: Sequence[str]) -> bool:
    """Whether routing bound to ``gateways`` (written in ``namespace``) applies to traffic
    that came ``through`` those Gateways: mesh traffic (through none) needs ``mesh``,
    implied by no gateways at all; gateway traffic one of the gateways it came through."""
    named = {qualify_gateway(g, namespace) for g in gateways} or {"mesh"}
    if not through:
        return "mesh" in named
    return not named.isdisjoint(through)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def string_matches(spec: Mapping[str, Any] | None, value: str | None,
                   ignore_case: bool = False) -> bool:
    """Istio's StringMatch: ``exact``, ``prefix`` or ``regex``; an empty one means "present"."""
    if value is None:
        return False
    if not spec:
        return True
    if ignore_case:
        value = value.lower()
    if "exact" in spec:
        expected = str(spec["exact"])
        return value == (expected.lower() if ignore_case else expected)
    if "prefix" in spec:
        expected = str(spec["prefix"])
        return value.startswith(expected.lower() if ignore_case else expected)
    if "regex" in spec:
        return _regex(str(spec["regex"])).fullmatch(value) is not None
    return True


def request_matches(match: Mapping[str, Any], request: Request, namespace: str = "") -> bool:
    """Whether every condition of one HTTPMatchRequest (of a VirtualService in
    ``namespace``) holds for ``request``."""
    if "uri" in match and not string_matches(match["uri"], request.uri,
                                             bool(match.get("ignoreUriCase"))):
        return False
    if "method" in match and not string_matches(match["method"], request.method):
        return False
    if "authority" in match and not string_matches(match["authority"], request.authority):
        return False
    if "scheme" in match and not string_matches(match["scheme"], "http"):
        return False
    for name, spec in (match.get("headers") or {}).items():
        if not string_matches(spec, request.headers.get(name.lower())):
            return False
    for name, spec in (match.get("withoutHeaders") or {}).items():
        if string_matches(spec, request.headers.get(name.lower())):
            return False
    query = request.query
    for name, spec in (match.get("queryParams") or {}).items():
        if not string_matches(spec, query.get(name)):
            return False
    for key, value in (match.get("sourceLabels") or {}).items():
        if request.source.labels.get(key) != value:
            return False
    gateways = match.get("gateways")
    return not gateways or bound_to(gateways, namespace, request.gateways)


def route_matches(route: Mapping[str, Any], request: Request, namespace: str = "") -> bool:
    matches: Sequence[Mapping[str, Any]] = route.get("match") or []
    return not matches or any(request_matches(m, request, namespace) for m in matches)


def _destination(spec: Mapping[str, Any], namespace: str) -> Destination:
    return Destination(qualify(str(spec["host"]), namespace), spec.get("subset") or None)


def _response_cookies(headers: Mapping[str, Any] | None) -> list[str]:
    response = (headers or {}).get("response") or {}
    cookies = []
    for operation in ("set", "add"):
        for name, value in (response.get(operation) or {}).items():
            if name.lower() == "set-cookie":
                cookies.append(str(value))
    return cookies


def pick_weighted(items: Sequence[T], weights: Sequence[int], rng: random.Random) -> T | None:
    """One of ``items`` by relative weight (one draw of ``rng``); None when no weight is
    above 0."""
    total = sum(weights)
    if total <= 0:
        return None
    point = rng.random() * total
    for item, weight in zip(items, weights, strict=True):
        if point < weight:
            return item
        point -= weight
    return next(i for i, w in zip(reversed(items), reversed(weights), strict=True) if w > 0)


def _pick_weighted(route: Sequence[Mapping[str, Any]], rng: random.Random
                   ) -> Mapping[str, Any] | None:
    if len(route) == 1 and "weight" not in route[0]:
        return route[0]
    return pick_weighted(route, [max(0, int(d.get("weight") or 0)) for d in route], rng)


def _mirrors(route: Mapping[str, Any], namespace: str, rng: random.Random) -> list[Destination]:
    chosen = []
    if route.get("mirror"):
        percent = 100.0
        if "mirrorPercentage" in route:
            percent = float((route["mirrorPercentage"] or {}).get("value", 0.0))
        elif "mirrorPercent" in route:
            percent = float(route["mirrorPercent"])
        if rng.random() * 100.0 < percent:
            chosen.append(_destination(route["mirror"], namespace))
    for mirror in route.get("mirrors") or []:
        percent = float((mirror.get("percentage") or {}).get("value", 100.0))
        if rng.random() * 100.0 < percent:
            chosen.append(_destination(mirror["destination"], namespace))
    return chosen


def route_request(spec: Mapping[str, Any] | None, namespace: str, request: Request,
                  rng: random.Random) -> RouteDecision:
    """Route ``request`` by a VirtualService ``spec`` living in ``namespace``.

    With no VirtualService (``spec`` None) the request goes straight to the host dialled.
    """
    if spec is None:
        return RouteDecision(Destination(qualify(request.authority, namespace)))
    for http in spec.get("http") or []:
        if not route_matches(http, request, namespace):
            continue
        destinations = http.get("route") or []
        picked = _pick_weighted(destinations, rng) if destinations else None
        if picked is None:
            return RouteDecision(None, route_name=http.get("name"))
        cookies = _response_cookies(http.get("headers")) + _response_cookies(picked.get("headers"))
        return RouteDecision(
            destination=_destination(picked["destination"], namespace),
            mirrors=tuple(_mirrors(http, namespace, rng)),
            set_cookies=tuple(cookies),
            route_name=http.get("name"),
        )
    return RouteDecision(None)
