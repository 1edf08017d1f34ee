"""The Gateway API routes of a Canary, as manifests: pure, no I/O.

Two ways of routing, because every list of an HTTPRoute or GRPCRoute that canary would
share with the user is atomic in the official CRDs (v1.6.3, ``x-kubernetes-list-type:
atomic`` on ``spec.hostnames``, ``spec.parentRefs``, ``spec.rules`` and, inside a rule,
``matches``, ``filters`` and ``backendRefs``): with server-side apply the last applier
owns the whole list, so a route canary applies would replace every rule of the user's.

- **canary's own route** (no ``spec.service.routeRef``): :func:`http_route` or, with
  ``spec.service.appProtocol: grpc``, :func:`grpc_route` build the ``<svc>`` route that
  canary creates and server-side applies with its field manager. It owns every rule of it;
  labels and annotations other managers set survive, rules do not (they are one atomic
  list), so users who want rules of their own bring their own route.
- **the user's route** (``spec.service.routeRef``): canary never applies it. It reads it
  and edits only what routes the apex Service ``<svc>``: see
  :mod:`canary.router.gatewayapi.adopted`.

Session affinity copies Istio's cookie approach rather than ``sessionPersistence``: that
field is in the experimental channel only, its cookie is the implementation's (name,
lifetime and what it pins are implementation-specific), and it pins a user to a backend
for the weighted split only; canary needs a cookie it names (so a new revision gets new
users) and that keeps its bearer on the canary whatever the weights. So a first rule sends
requests whose Cookie header carries the canary's cookie to the canary, and a
ResponseHeaderModifier on the canary's backendRef sets that cookie.
"""

from __future__ import annotations

from canary.core.actions import Route
from canary.models.canary import Canary, GatewayImplementation
from canary.router.gatewayapi.matches import JSON, UnsupportedRoute, translate
from canary.router.gatewayapi.policy import header_filters, retry, timeouts
from canary.router.gatewayapi.rules import routed
from canary.router.port import service_name
from canary.targets.deployment import MANAGED_BY, owner_reference

API_VERSION = "gateway.networking.k8s.io/v1"


def _metadata(canary: Canary, owner: JSON, name: str) -> JSON:
    return {"name": name, "namespace": canary.namespace, "labels": dict(MANAGED_BY),
            "ownerReferences": [owner_reference(owner)]}


def _refuse_istio_only(canary: Canary) -> None:
    """Route options that have no Gateway API translation yet are refused, not dropped."""
    service = canary.spec.service
    for field, value in (("gateways", service.gateways), ("corsPolicy", service.cors_policy),
                         ("rewrite", service.rewrite)):
        if value:
            raise UnsupportedRoute(f"spec.service.{field}: an Istio option canary does not "
                                   "translate to the Gateway API"
                                   + (" (use gatewayRefs)" if field == "gateways" else ""))


def parent_refs(canary: Canary) -> list[JSON]:
    refs = canary.spec.service.gateway_refs
    if not refs:
        raise UnsupportedRoute("spec.service.gatewayRefs: a Gateway API route needs a "
                               "Gateway (or a Service, for mesh routing) to attach to")
    return [ref.to_api() for ref in refs]


def ab_matches(canary: Canary, *, grpc: bool) -> list[JSON] | None:
    """``analysis.match`` translated, or None without A/B testing."""
    match = canary.spec.analysis.match
    return translate(match, "spec.analysis.match", grpc=grpc) if match else None


def _base_rule(canary: Canary, *, grpc: bool, experimental: bool) -> JSON:
    """The rule of canary's own route, backendRefs aside: spec.service's matches, header
    operations, timeouts and retries."""
    service = canary.spec.service
    rule: JSON = {}
    if service.match:
        rule["matches"] = translate(service.match, "spec.service.match", grpc=grpc)
    if filters := header_filters(service.headers):
        rule["filters"] = filters
    if grpc and (service.timeout or service.retries):
        raise UnsupportedRoute("spec.service.timeout/retries: a GRPCRoute has neither "
                               "timeouts nor retries")
    if not grpc:
        if limits := timeouts(service.timeout, service.retries):
            rule["timeouts"] = limits
        if (policy := retry(service.retries, experimental=experimental)) is not None:
            rule["retry"] = policy
    return rule


def measured_per_backend(canary: Canary) -> bool:
    """Whether the implementation measures a backendRef on its own only when it has a
    filter: Envoy Gateway (see :func:`canary.router.gatewayapi.rules.label_backend`)."""
    return canary.spec.service.gateway_implementation == GatewayImplementation.ENVOY_GATEWAY


def _route(canary: Canary, owner: JSON, route: Route, *, grpc: bool,
           experimental: bool = False) -> JSON:
    _refuse_istio_only(canary)
    name = service_name(canary)
    rules = routed(_base_rule(canary, grpc=grpc, experimental=experimental), name,
                   canary.spec.service.port, route, backend_filters=[],
                   ab_matches=ab_matches(canary, grpc=grpc),
                   label_backends=measured_per_backend(canary))
    spec: JSON = {"parentRefs": parent_refs(canary), "rules": rules}
    if canary.spec.service.hosts:
        spec["hostnames"] = list(canary.spec.service.hosts)
    return {"apiVersion": API_VERSION, "kind": "GRPCRoute" if grpc else "HTTPRoute",
            "metadata": _metadata(canary, owner, name), "spec": spec}


def http_route(canary: Canary, owner: JSON, route: Route, *,
               experimental: bool = False) -> JSON:
    """canary's ``<svc>`` HTTPRoute for ``route``: the weighted split between
    ``<svc>-primary`` and ``<svc>-canary`` (and a mirror to the canary when mirroring),
    preceded by a rule sending ``analysis.match`` requests to the canary (A/B testing)
    and one honouring the canary's cookie (session affinity). ``experimental``: the
    cluster serves the experimental channel's HTTPRoute, so retries may use ``retry``."""
    return _route(canary, owner, route, grpc=False, experimental=experimental)


def grpc_route(canary: Canary, owner: JSON, route: Route) -> JSON:
    """canary's ``<svc>`` GRPCRoute for ``route``, for ``appProtocol: grpc``: the same
    rules as :func:`http_route`, with ``analysis.match`` as gRPC service/method and header
    matches."""
    return _route(canary, owner, route, grpc=True)


def route(canary: Canary, owner: JSON, state: Route, *, experimental: bool = False) -> JSON:
    """canary's own route: a GRPCRoute for ``appProtocol: grpc``, an HTTPRoute otherwise."""
    if (canary.spec.service.app_protocol or "").lower() == "grpc":
        return grpc_route(canary, owner, state)
    return http_route(canary, owner, state, experimental=experimental)
