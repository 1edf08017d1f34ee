"""The user's own HTTPRoute or GRPCRoute (``spec.service.routeRef``), edited in place.

Every list of a route is atomic in the official CRDs, so neither server-side apply nor a
merge patch can change one rule without writing all of them. canary therefore reads the
route and writes ``spec.rules`` back with a JSON patch that first tests the route's
``resourceVersion``: if anyone changed the route since canary read it, the patch fails
and canary reads it again, so no edit of the user's is ever overwritten.

What canary changes in the rules it writes back:

- a rule whose backendRefs all name the apex Service ``<svc>`` (or, once canary has split
  it, ``<svc>-primary`` and ``<svc>-canary``) gets the weighted split on its backendRefs,
  each carrying the filters the user put on the ``<svc>`` backendRef, and a RequestMirror
  to the canary while mirroring; its matches, filters, timeouts and name stay;
- before each such rule, while A/B testing or with session affinity, a rule named
  ``canary-dev-...`` with the same matches narrowed by ``analysis.match`` (or the
  canary's cookie) sending everything to the canary.

Every other rule, the hostnames and the parentRefs are left as they are. Released (the
Canary deleted), the rules send the apex Service's traffic to ``<svc>`` again. Should the
user's tooling write its version of the route back, the rules point at ``<svc>``, the
Service that selects the primary's pods: traffic goes to the primary until canary splits
it again.
"""

from __future__ import annotations

import copy
from typing import Any

from canary.core.actions import Route
from canary.models.canary import Canary
from canary.router.gatewayapi.matches import JSON, UnsupportedRoute
from canary.router.gatewayapi.routes import ab_matches, measured_per_backend
from canary.router.gatewayapi.rules import RULE_PREFIX, is_canary_mirror, routed, unlabelled
from canary.router.port import service_name

_MAX_RULES = 16
#: The values the API server fills in for fields a route leaves out (HTTPRoute and
#: GRPCRoute CRDs): a backendRef's group, kind and weight, a match's type, a rule's
#: catch-all match. canary writes its own parts without them.
_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("group", ""), ("kind", "Service"), ("weight", 1), ("type", "Exact"),
    ("type", "PathPrefix"), ("matches", [{"path": {"type": "PathPrefix", "value": "/"}}]))


def _refuse_route_options(canary: Canary) -> None:
    """With the user's route, its rules carry the route options: spec.service's would be
    ignored, so they are refused."""
    service = canary.spec.service
    for field, value in (("match", service.match), ("timeout", service.timeout),
                         ("retries", service.retries), ("headers", service.headers),
                         ("hosts", service.hosts), ("gateways", service.gateways),
                         ("corsPolicy", service.cors_policy), ("rewrite", service.rewrite)):
        if value:
            raise UnsupportedRoute(f"spec.service.{field}: with routeRef, set it on the "
                                   "route's rules")


def _names_apex(ref: JSON, canary: Canary, name: str) -> bool:
    """Whether a backendRef names the apex Service or one of canary's two."""
    return (ref.get("group", "") == "" and ref.get("kind", "Service") == "Service"
            and ref.get("namespace", canary.namespace) == canary.namespace
            and ref.get("name") in (name, f"{name}-primary", f"{name}-canary"))


def _unsplit(rule: JSON, canary: Canary, where: str) -> tuple[JSON, list[JSON], int] | None:
    """A rule routing the apex Service as the user wrote it: (the rule without
    backendRefs or canary's mirror, the user's backendRef filters, the port); None for a
    rule routing elsewhere."""
    name = service_name(canary)
    refs = rule.get("backendRefs") or []
    ours = [ref for ref in refs if _names_apex(ref, canary, name)]
    if not ours:
        return None
    if len(ours) != len(refs):
        raise UnsupportedRoute(f"spec.service.routeRef: {where} sends traffic to Service "
                               f"{name} and to other backends; canary splits only rules "
                               f"whose every backendRef is {name}")
    source = next((r for r in ours if r["name"] != f"{name}-canary"), ours[0])
    base = {k: copy.deepcopy(v) for k, v in rule.items() if k != "backendRefs"}
    filters = [f for f in base.get("filters", []) if not is_canary_mirror(f, name)]
    base.pop("filters", None)
    if filters:
        base["filters"] = filters
    port = int(source.get("port") or canary.spec.service.port)
    return base, unlabelled(source.get("filters") or []), port


def _user_rules(canary: Canary, user_route: JSON) -> list[tuple[JSON, tuple[JSON, list[JSON],
                                                                          int] | None]]:
    """The user's rules (canary's own left out), each with its unsplit form if it routes
    the apex Service."""
    kind, name = user_route.get("kind", "route"), user_route["metadata"]["name"]
    rules = [rule for rule in user_route.get("spec", {}).get("rules") or []
             if not str(rule.get("name", "")).startswith(RULE_PREFIX)]
    result = [(rule, _unsplit(rule, canary, f"{kind} {name} rule {i}"))
              for i, rule in enumerate(rules)]
    if not any(unsplit for _, unsplit in result):
        raise UnsupportedRoute(f"spec.service.routeRef: no rule of {kind} {name} sends "
                               f"traffic to Service {service_name(canary)}")
    return result


def adopted_rules(canary: Canary, route: Route, user_route: JSON) -> list[JSON]:
    """The rules of the user's route with canary's routing for ``route``."""
    _refuse_route_options(canary)
    grpc = user_route.get("kind") == "GRPCRoute"
    matches = ab_matches(canary, grpc=grpc)
    rules: list[JSON] = []
    for rule, unsplit in _user_rules(canary, user_route):
        if unsplit is None:
            rules.append(copy.deepcopy(rule))
            continue
        base, filters, port = unsplit
        rules.extend(routed(base, service_name(canary), port, route, backend_filters=filters,
                            ab_matches=matches, label=f"-{len(rules)}",
                            label_backends=measured_per_backend(canary)))
    if len(rules) > _MAX_RULES:
        raise UnsupportedRoute(f"spec.service.routeRef: canary's routing needs {len(rules)} "
                               f"rules, a route holds at most {_MAX_RULES}")
    return rules


def released_rules(canary: Canary, user_route: JSON) -> list[JSON]:
    """The rules of the user's route as they were before canary: canary's own rules gone,
    the apex Service's traffic to ``<svc>`` again, with the user's backendRef filters."""
    rules = []
    for rule, unsplit in _user_rules(canary, user_route):
        if unsplit is None:
            rules.append(copy.deepcopy(rule))
            continue
        base, filters, port = unsplit
        ref: JSON = {"name": service_name(canary), "port": port}
        if filters:
            ref["filters"] = filters
        rules.append({**base, "backendRefs": [ref]})
    return rules


def rules_patch(user_route: JSON, rules: list[JSON]) -> list[JSON]:
    """A JSON patch writing ``rules`` into the user's route only if it is still the version
    canary read (its resourceVersion), so that no concurrent edit is lost."""
    return [{"op": "test", "path": "/metadata/resourceVersion",
             "value": user_route["metadata"]["resourceVersion"]},
            {"op": "replace", "path": "/spec/rules", "value": rules}]


def undefaulted(value: Any) -> Any:
    """``value`` (rules as the API server stores them) without the fields holding what the
    server fills in by default, for comparing with rules canary built."""
    if isinstance(value, dict):
        return {k: undefaulted(v) for k, v in value.items() if (k, v) not in _DEFAULTS}
    if isinstance(value, list):
        return [undefaulted(v) for v in value]
    return value
