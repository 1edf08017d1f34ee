"""How one HTTPRoute match applies to a request, and its precedence (pure; no I/O).

Matches as the Gateway API defines them: ``path`` ``Exact``, ``PathPrefix`` (by whole
path elements: ``/foo`` matches ``/foo`` and ``/foo/bar``, not ``/foobar``) or
``RegularExpression``; ``headers`` (names case-insensitive; cookies are the ``cookie``
header) and ``queryParams`` (names exact), each ``Exact`` or ``RegularExpression``;
``method``. A match without ``path`` is ``PathPrefix /``; a rule without matches has that
one match. Regular expressions must match the whole value, as Envoy's do.

Precedence among matches (lower sorts first): ``Exact`` path, then ``PathPrefix`` by
length, longest first, then ``RegularExpression`` (its rank is left to implementations;
this is Istio's choice); then a method match; then more header matches; then more query
parameter matches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from canary.devenv.traffic.routing import Request

DEFAULT_PATH = {"type": "PathPrefix", "value": "/"}


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def value_matches(spec: Mapping[str, Any], value: str | None) -> bool:
    """A header or query parameter match (``Exact`` by default) against a value."""
    if value is None:
        return False
    if spec.get("type", "Exact") == "RegularExpression":
        return _regex(str(spec.get("value", ""))).fullmatch(value) is not None
    return value == str(spec.get("value", ""))


def path_matches(spec: Mapping[str, Any], path: str) -> bool:
    kind, value = spec.get("type", "PathPrefix"), str(spec.get("value", "/"))
    if kind == "Exact":
        return path == value
    if kind == "RegularExpression":
        return _regex(value).fullmatch(path) is not None
    prefix = value.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def match_applies(match: Mapping[str, Any], request: Request) -> bool:
    """Whether every condition of one HTTPRouteMatch holds for ``request``."""
    if not path_matches(match.get("path") or DEFAULT_PATH, request.uri):
        return False
    if match.get("method") and request.method.upper() != str(match["method"]).upper():
        return False
    for header in match.get("headers") or []:
        if not value_matches(header, request.headers.get(str(header.get("name")).lower())):
            return False
    query = request.query
    return all(value_matches(param, query.get(str(param.get("name"))))
               for param in match.get("queryParams") or [])


def match_rank(match: Mapping[str, Any]) -> tuple[int, ...]:
    """A match's precedence; lower wins."""
    path = match.get("path") or DEFAULT_PATH
    kind, value = path.get("type", "PathPrefix"), str(path.get("value", "/"))
    path_rank = {"Exact": 0, "PathPrefix": 1}.get(kind, 2)
    length = -len(value) if path_rank < 2 else 0
    return (path_rank, length, 0 if match.get("method") else 1,
            -len(match.get("headers") or []), -len(match.get("queryParams") or []))
