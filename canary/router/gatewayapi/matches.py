"""Istio HTTPMatchRequests (``analysis.match``, ``service.match``), as Flagger's users write
them, translated into Gateway API HTTPRoute and GRPCRoute matches.

Every condition is either translated into one that selects the same requests or refused
with :class:`UnsupportedRoute` naming the field: a dropped condition would send requests
the user meant to keep on the primary to the canary. Istio's regexes are RE2, matched
against the whole value; the Gateway API leaves the dialect of ``RegularExpression`` to
the implementation, and the Envoy-based ones (Istio, Envoy Gateway, Contour) match RE2
against the whole value too.
"""

from __future__ import annotations

import re
from typing import Any

from canary.errors import CanaryError

JSON = dict[str, Any]

#: An HTTP header (or query parameter) name, as the Gateway API's CRDs accept it.
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$")
#: The characters the CRDs allow in an Exact or PathPrefix path.
_PATH = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$")
_PATH_FORBIDDEN = ("//", "/./", "/../", "%2f", "%2F", "#")
_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
#: A gRPC service and method name, as GRPCRoute's Exact matches accept them.
_GRPC_SERVICE = re.compile(r"^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$", re.IGNORECASE)
_GRPC_METHOD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")
#: Keys of an HTTPMatchRequest that select nothing: a match's name only labels it.
_IGNORED = frozenset({"name"})


class UnsupportedRoute(CanaryError):
    """The Gateway API cannot express part of the Canary's routing; the message names the
    field, so the user can rewrite it rather than have it silently dropped."""


def escape(literal: str) -> str:
    """``literal`` as a regex matching itself, escaping only the characters every dialect
    (RE2, PCRE, POSIX ERE) treats as special."""
    return "".join(f"\\{c}" if c in _REGEX_SPECIAL else c for c in literal)


def header_name(name: Any, field: str) -> str:
    """``name`` if the Gateway API accepts it as a header or query parameter name."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise UnsupportedRoute(f"{field}: the Gateway API does not accept {name!r} as a name")
    return name


def _string_match(value: Any, field: str) -> tuple[str, str]:
    """An Istio StringMatch as (Exact or RegularExpression, value); an empty StringMatch
    (presence) is the regex ``.*``."""
    if not isinstance(value, dict) or len(value) > 1:
        raise UnsupportedRoute(f"{field}: expected one of exact, prefix or regex")
    if not value:
        return "RegularExpression", ".*"
    [(kind, text)] = value.items()
    if kind not in ("exact", "prefix", "regex") or not isinstance(text, str):
        raise UnsupportedRoute(f"{field}: expected one of exact, prefix or regex")
    if kind == "exact":
        if not text:
            raise UnsupportedRoute(f"{field}.exact: the Gateway API cannot match an empty "
                                   "value")
        return "Exact", text
    if kind == "prefix":
        return "RegularExpression", f"{escape(text)}.*"
    return "RegularExpression", text or ".*"


def _named_matches(value: Any, field: str) -> list[JSON]:
    """Istio's ``{name: StringMatch}`` (headers, queryParams) as Gateway API name/value
    matches."""
    if not isinstance(value, dict):
        raise UnsupportedRoute(f"{field}: expected a map of names to matches")
    if len(value) > 16:
        raise UnsupportedRoute(f"{field}: the Gateway API allows at most 16 per match")
    matches = []
    for name, condition in value.items():
        header_name(name, f"{field}.{name}")
        kind, text = _string_match(condition, f"{field}.{name}")
        matches.append({"name": name, "type": kind, "value": text})
    return matches


def _valid_path(path: str) -> bool:
    """Whether the CRD's rules accept ``path`` as an Exact or PathPrefix value."""
    return (path.startswith("/") and bool(_PATH.fullmatch(path))
            and not any(bad in path for bad in _PATH_FORBIDDEN)
            and not path.endswith(("/.", "/..")))


def _path(value: Any, field: str) -> JSON:
    """Istio's uri: exact stays Exact; a prefix ending in ``/`` becomes PathPrefix, which
    also matches that path without its slash (the Gateway API compares whole path
    segments); any other prefix a regex, since Istio's ``/api`` also matches ``/apix``."""
    _, text = _string_match(value, field)
    raw = str(next(iter(value.values()), ""))
    if "exact" in value:
        if _valid_path(raw):
            return {"type": "Exact", "value": raw}
        return {"type": "RegularExpression", "value": escape(raw)}
    if "prefix" in value and raw.endswith("/") and _valid_path(raw):
        return {"type": "PathPrefix", "value": raw}
    return {"type": "RegularExpression", "value": text}


def _method(value: Any, field: str) -> str:
    kind, text = _string_match(value, field)
    if kind != "Exact" or text.upper() not in _METHODS:
        raise UnsupportedRoute(f"{field}: the Gateway API matches one method exactly "
                               f"(one of {', '.join(_METHODS)})")
    return text.upper()


def _refuse_unknown(match: JSON, known: frozenset[str], field: str) -> None:
    for key, value in match.items():
        if key == "ignoreUriCase" and not value:
            continue
        if key not in known | _IGNORED:
            raise UnsupportedRoute(f"{field}.{key}: the Gateway API has no such match")


def http_match(match: JSON, field: str) -> JSON:
    """One Istio HTTPMatchRequest as an HTTPRouteMatch."""
    _refuse_unknown(match, frozenset({"uri", "headers", "queryParams", "method"}), field)
    result: JSON = {}
    if "uri" in match:
        result["path"] = _path(match["uri"], f"{field}.uri")
    if match.get("headers"):
        result["headers"] = _named_matches(match["headers"], f"{field}.headers")
    if match.get("queryParams"):
        result["queryParams"] = _named_matches(match["queryParams"], f"{field}.queryParams")
    if "method" in match:
        result["method"] = _method(match["method"], f"{field}.method")
    return result


def _grpc_method(value: Any, field: str) -> JSON:
    """Istio's uri on a gRPC path ``/package.Service/Method``: an exact path is a service
    and method, a prefix ``/package.Service/`` the whole service."""
    if isinstance(value, dict) and len(value) == 1:
        [(kind, text)] = value.items()
        parts = str(text).split("/")
        if kind == "exact" and len(parts) == 3 and not parts[0] \
                and _GRPC_SERVICE.fullmatch(parts[1]) and _GRPC_METHOD.fullmatch(parts[2]):
            return {"type": "Exact", "service": parts[1], "method": parts[2]}
        if kind == "prefix" and len(parts) == 3 and not parts[0] and not parts[2] \
                and _GRPC_SERVICE.fullmatch(parts[1]):
            return {"type": "Exact", "service": parts[1]}
    raise UnsupportedRoute(f"{field}: a GRPCRoute matches an exact /package.Service/Method "
                           "or a prefix /package.Service/")


def grpc_match(match: JSON, field: str) -> JSON:
    """One Istio HTTPMatchRequest as a GRPCRouteMatch: headers, and the uri of a gRPC
    call as its service and method. Every gRPC call is a POST, so a POST method matches
    them all."""
    _refuse_unknown(match, frozenset({"uri", "headers", "method"}), field)
    result: JSON = {}
    if "uri" in match:
        result["method"] = _grpc_method(match["uri"], f"{field}.uri")
    if match.get("headers"):
        result["headers"] = _named_matches(match["headers"], f"{field}.headers")
    if "method" in match and _method(match["method"], f"{field}.method") != "POST":
        raise UnsupportedRoute(f"{field}.method: every gRPC call is a POST")
    return result


def translate(matches: list[JSON], field: str, *, grpc: bool) -> list[JSON]:
    """Every match of ``matches`` (at ``field``) translated, or UnsupportedRoute."""
    one = grpc_match if grpc else http_match
    return [one(match, f"{field}[{i}]") for i, match in enumerate(matches)]
