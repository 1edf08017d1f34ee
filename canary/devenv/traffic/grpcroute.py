"""How one GRPCRoute match applies to a request, and its precedence (pure; no I/O).

A gRPC request is a ``POST`` of ``/package.Service/Method`` with a ``content-type`` of
``application/grpc``. A match's ``method`` names the ``service`` and/or ``method``,
``Exact`` (the default) or ``RegularExpression``; its ``headers`` are as for HTTPRoute.
Precedence, as the spec says: more characters in the matching service, then in the
matching method, then more header matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.devenv.traffic.httproute import value_matches
from canary.devenv.traffic.routing import Request


def is_grpc(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/grpc")


def service_and_method(request: Request) -> tuple[str, str] | None:
    parts = request.uri.split("/")
    if len(parts) != 3 or parts[0] or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _part_matches(kind: str, expected: Any, actual: str) -> bool:
    if expected is None:
        return True
    return value_matches({"type": kind, "value": str(expected)}, actual)


def match_applies(match: Mapping[str, Any], request: Request) -> bool:
    """Whether one GRPCRouteMatch holds for a gRPC ``request``."""
    called = service_and_method(request)
    if not is_grpc(request) or called is None:
        return False
    method = match.get("method") or {}
    kind = str(method.get("type", "Exact"))
    if not (_part_matches(kind, method.get("service"), called[0])
            and _part_matches(kind, method.get("method"), called[1])):
        return False
    return all(value_matches(header, request.headers.get(str(header.get("name")).lower()))
               for header in match.get("headers") or [])


def match_rank(match: Mapping[str, Any]) -> tuple[int, ...]:
    """A match's precedence; lower wins."""
    method = match.get("method") or {}
    return (-len(str(method.get("service") or "")), -len(str(method.get("method") or "")),
            -len(match.get("headers") or []))
