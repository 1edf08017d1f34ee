"""The rules of a Gateway API route for one route state: the weighted split on a rule's
backendRefs, the mirror filter, and the rules canary puts before it (A/B testing, session
affinity), whether the rule is canary's own or one of the user's.

The Gateway API picks among the rules a request matches by specificity (path, method,
headers, query parameters), then by their order in the route: canary's rules carry the
rule's own matches narrowed by their extra condition, so they are always at least as
specific as the rule they precede, and come first in the list to win ties.
"""

from __future__ import annotations

import copy

from canary.core.actions import Route
from canary.router.gatewayapi.matches import JSON, UnsupportedRoute, escape

#: The names of the rules canary adds to a route start with this; no other rule's should.
RULE_PREFIX = "canary-dev-"
_MAX_MATCHES = 64


#: The request header canary's per-backend filter sets to the version serving a request.
BACKEND_HEADER = "X-Canary-Backend"


def split(name: str, port: int, weight: int, filters: list[JSON] | None = None,
          *, label_backends: bool = False) -> list[JSON]:
    """backendRefs sending ``weight`` percent to ``<name>-canary`` and the rest to
    ``<name>-primary``, in that order (the primary first), each with a copy of the user's
    backendRef ``filters``; with ``label_backends``, each also sets :data:`BACKEND_HEADER`
    (see :func:`label_backend`)."""
    refs = [{"name": f"{name}-primary", "port": port, "weight": 100 - weight},
            {"name": f"{name}-canary", "port": port, "weight": weight}]
    for ref, version in zip(refs, ("primary", "canary"), strict=True):
        if filters:
            ref["filters"] = copy.deepcopy(filters)
        if label_backends:
            label_backend(ref, version)
    return refs


def label_backend(ref: JSON, version: str) -> None:
    """Set :data:`BACKEND_HEADER` to ``version`` on the requests ``ref`` receives, in its
    RequestHeaderModifier if it has one (the Gateway API allows one per backendRef).

    A filter on a backendRef is what makes Envoy Gateway give each backendRef of a rule a
    cluster (and so stats) of its own, instead of one cluster for the rule whose stats
    cannot tell the canary's requests from the primary's (:mod:`canary.metrics.builtins`);
    the header also tells the application which version it is serving as."""
    header = {"name": BACKEND_HEADER, "value": version}
    filters = ref.setdefault("filters", [])
    for f in filters:
        if f.get("type") == "RequestHeaderModifier":
            modifier = f.setdefault("requestHeaderModifier", {})
            kept = [h for h in modifier.get("set", [])
                    if h["name"].lower() != BACKEND_HEADER.lower()]
            modifier["set"] = [*kept, header]
            return
    filters.append({"type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"set": [header]}})


def unlabelled(filters: list[JSON]) -> list[JSON]:
    """A backendRef's ``filters`` without :func:`label_backend`'s header (and without its
    RequestHeaderModifier when that header was all it did): the user's filters."""
    kept = []
    for f in copy.deepcopy(filters):
        if f.get("type") == "RequestHeaderModifier":
            modifier = f.get("requestHeaderModifier") or {}
            modifier["set"] = [h for h in modifier.get("set", [])
                               if h["name"].lower() != BACKEND_HEADER.lower()]
            if not modifier["set"]:
                del modifier["set"]
            if not modifier:
                continue
        kept.append(f)
    return kept


def _set_cookie(ref: JSON, cookie: str, max_age: int) -> None:
    """Add ``Set-Cookie`` to the answers of ``ref``, in its ResponseHeaderModifier if it has
    one (the Gateway API allows one per backendRef)."""
    header = {"name": "Set-Cookie", "value": f"{cookie}; Max-Age={max_age}"}
    filters = ref.setdefault("filters", [])
    for f in filters:
        if f.get("type") == "ResponseHeaderModifier":
            modifier = f.setdefault("responseHeaderModifier", {})
            names = {h["name"].lower() for h in modifier.get("add", [])}
            if "set-cookie" in names:
                raise UnsupportedRoute("the backendRef already adds a Set-Cookie header: "
                                       "session affinity needs its own")
            modifier.setdefault("add", []).append(header)
            return
    filters.append({"type": "ResponseHeaderModifier",
                    "responseHeaderModifier": {"add": [header]}})


def mirror_filter(name: str, port: int, percent: float) -> JSON:
    """A RequestMirror to ``<name>-canary``: a whole percent as ``percent``, any other as a
    ``fraction`` of 100000."""
    mirror: JSON = {"backendRef": {"name": f"{name}-canary", "port": port}}
    if percent == int(percent):
        mirror["percent"] = int(percent)
    else:
        mirror["fraction"] = {"numerator": round(percent * 1000), "denominator": 100_000}
    return {"type": "RequestMirror", "requestMirror": mirror}


def is_canary_mirror(f: JSON, name: str) -> bool:
    return f.get("type") == "RequestMirror" and \
        f.get("requestMirror", {}).get("backendRef", {}).get("name") == f"{name}-canary"


def _path_within(outer: JSON | None, inner: JSON) -> bool:
    """Whether every path ``inner`` matches is one ``outer`` (a rule's path) matches."""
    if outer is None or outer == {"type": "PathPrefix", "value": "/"} or outer == inner:
        return True
    if outer.get("type") != "PathPrefix" or inner.get("type") not in ("Exact", "PathPrefix"):
        return False
    base = outer["value"].rstrip("/")
    return bool(inner["value"] == base or inner["value"].startswith(base + "/"))


def _merge(base: JSON, extra: JSON, field: str) -> JSON:
    """The conditions of both matches together (a request must meet all of them)."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if key in ("headers", "queryParams"):
            taken = {m["name"].lower() for m in merged.get(key, [])}
            clash = [m["name"] for m in value if m["name"].lower() in taken]
            if clash:
                raise UnsupportedRoute(f"{field}: the route's rule already matches "
                                       f"{key} {clash[0]}; the Gateway API cannot match it "
                                       "twice")
            merged[key] = [*merged.get(key, []), *value]
        elif key == "path" and _path_within(merged.get("path"), value):
            merged["path"] = value
        elif merged.get(key, value) != value:
            raise UnsupportedRoute(f"{field}: the route's rule matches another {key} "
                                   f"({merged[key]}); the Gateway API cannot match both")
        else:
            merged[key] = value
    return merged


def narrowed(base: list[JSON] | None, extra: list[JSON], field: str) -> list[JSON]:
    """Matches selecting the requests ``base`` selects that also meet one of ``extra``."""
    matches = [_merge(b, e, field) for b in (base or [{}]) for e in extra]
    if len(matches) > _MAX_MATCHES:
        raise UnsupportedRoute(f"{field}: {len(matches)} matches in one rule, the Gateway "
                               f"API allows {_MAX_MATCHES}")
    return matches


def sticky_match(cookie: str) -> JSON:
    """Requests carrying ``cookie`` among their cookies."""
    return {"headers": [{"name": "Cookie", "type": "RegularExpression",
                         "value": f"^(.*?;\\s*)?({escape(cookie)})(;.*)?$"}]}


def routed(rule: JSON, name: str, port: int, route: Route, *, backend_filters: list[JSON],
           ab_matches: list[JSON] | None, label: str = "",
           label_backends: bool = False) -> list[JSON]:
    """``rule`` (its backendRefs aside) routed for ``route``, preceded by canary's rules:
    the A/B rule (``ab_matches`` to the canary) and the sticky rule (the canary's cookie
    to the canary). ``backend_filters`` are the user's filters of the backendRef being
    split; ``label`` makes the names of canary's rules unique in the route;
    ``label_backends`` gives each backendRef canary's header filter (:func:`split`)."""
    user_filters = backend_filters
    main = copy.deepcopy(rule)
    main["backendRefs"] = split(name, port, route.canary_weight, user_filters,
                                label_backends=label_backends)
    if route.mirror_percent is not None:
        main["filters"] = [*main.get("filters", []),
                           mirror_filter(name, port, route.mirror_percent)]
    rules = [main]
    companion = {k: v for k, v in copy.deepcopy(rule).items() if k != "name"}
    companion["backendRefs"] = split(name, port, 100, user_filters,
                                     label_backends=label_backends)
    if route.sticky_cookie is not None:
        _set_cookie(main["backendRefs"][1], route.sticky_cookie, route.sticky_max_age)
        sticky = {"name": f"{RULE_PREFIX}sticky{label}", **companion,
                  "matches": narrowed(rule.get("matches"), [sticky_match(route.sticky_cookie)],
                                      "spec.analysis.sessionAffinity")}
        rules.insert(0, sticky)
    if route.match_to_canary and ab_matches:
        rules.insert(0, {"name": f"{RULE_PREFIX}ab{label}", **copy.deepcopy(companion),
                         "matches": narrowed(rule.get("matches"), ab_matches,
                                             "spec.analysis.match")})
    return rules

