"""The Istio route options of ``spec.service`` (timeout, retries, headers) as the fields
and filters of a Gateway API rule: translated where the Gateway API has the same meaning,
refused with :class:`UnsupportedRoute` naming the field otherwise.

HTTPRoute's ``retry`` (attempts, backoff, codes) is in the Gateway API's experimental
channel only (v1.6 included): a standard-channel API server prunes it, so retries that
need it are refused unless the caller knows the experimental CRD is installed
(:func:`serves_retry`).
"""

from __future__ import annotations

from typing import Any

from canary.models.base import parse_duration
from canary.router.gatewayapi.matches import JSON, UnsupportedRoute, header_name

#: Istio retryOn conditions about response statuses, as status codes.
_RETRY_CODES: dict[str, list[int]] = {
    "5xx": list(range(500, 600)), "gateway-error": [502, 503, 504], "retriable-4xx": [409],
}
#: Istio retryOn conditions about connections: HTTPRoute retry has no field for them,
#: whether a failed connection is retried is left to the implementation.
_CONNECTION_FAILURES = frozenset({"connect-failure", "refused-stream", "reset",
                                  "reset-before-request", "retriable-status-codes"})


def serves_retry(crd: JSON) -> bool:
    """Whether an HTTPRoute CustomResourceDefinition is the experimental channel's, the one
    with ``rules[].retry``."""
    annotations = crd.get("metadata", {}).get("annotations") or {}
    return annotations.get("gateway.networking.k8s.io/channel") == "experimental"


def duration(text: Any, field: str) -> str:
    """A Go or protobuf duration (``1.5s``) in the Gateway API's stricter form
    (``1s500ms``: at most four whole parts of up to five digits)."""
    try:
        seconds = parse_duration(str(text))
    except ValueError as exc:
        raise UnsupportedRoute(f"{field}: {exc}") from None
    millis = round(seconds * 1000)
    if millis == 0 and seconds > 0:
        raise UnsupportedRoute(f"{field}: the Gateway API counts whole milliseconds")
    hours, rest = divmod(millis, 3_600_000)
    if hours > 99_999:
        raise UnsupportedRoute(f"{field}: at most 99999h")
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (whole, "s"),
                                          (millis, "ms")) if n]
    return "".join(parts) or "0s"


def timeouts(timeout: str | None, retries: JSON | None) -> JSON:
    """``timeouts``: the route timeout is the whole request's, Istio's perTryTimeout each
    attempt's (``backendRequest``), which the Gateway API wants no longer than the
    request's."""
    result: JSON = {}
    if timeout:
        result["request"] = duration(timeout, "spec.service.timeout")
    if retries and "perTryTimeout" in retries:
        field = "spec.service.retries.perTryTimeout"
        result["backendRequest"] = duration(retries["perTryTimeout"], field)
        if timeout and 0 < parse_duration(timeout) < parse_duration(
                str(retries["perTryTimeout"])):
            raise UnsupportedRoute(f"{field}: the Gateway API wants it no longer than "
                                   "spec.service.timeout")
    return result


def _codes(retry_on: Any, field: str) -> list[int]:
    codes: list[int] = []
    for condition in str(retry_on).split(","):
        condition = condition.strip()
        if condition.isdigit() and 400 <= int(condition) <= 599:
            codes.append(int(condition))
        elif condition in _RETRY_CODES:
            codes.extend(_RETRY_CODES[condition])
        elif condition not in _CONNECTION_FAILURES:
            raise UnsupportedRoute(f"{field}: the Gateway API retries on status codes (and "
                                   f"connection failures), not on {condition!r}")
    return sorted(set(codes))


def retry(retries: JSON | None, *, experimental: bool) -> JSON | None:
    """HTTPRoute's ``retry`` from Istio's HTTPRetry (attempts and retryOn; perTryTimeout is
    in :func:`timeouts`), or None when there is nothing to retry."""
    retries = retries or {}
    for key in retries:
        if key not in ("attempts", "retryOn", "perTryTimeout"):
            raise UnsupportedRoute(f"spec.service.retries.{key}: the Gateway API has no "
                                   "such retry option")
    if "attempts" not in retries and "retryOn" not in retries:
        return None
    if not experimental:
        raise UnsupportedRoute("spec.service.retries: HTTPRoute retry is in the Gateway API's "
                               "experimental channel only, and this cluster serves the "
                               "standard one")
    result: JSON = {}
    if "attempts" in retries:
        attempts = retries["attempts"]
        if not isinstance(attempts, int) or attempts < 1:
            raise UnsupportedRoute("spec.service.retries.attempts: the Gateway API wants at "
                                   "least 1 (drop retries to turn them off)")
        result["attempts"] = attempts
    if "retryOn" in retries and (codes := _codes(retries["retryOn"],
                                                 "spec.service.retries.retryOn")):
        result["codes"] = codes
    return result


def _header_list(values: Any, field: str) -> list[JSON]:
    if not isinstance(values, dict):
        raise UnsupportedRoute(f"{field}: expected a map of header names to values")
    return [{"name": header_name(name, f"{field}.{name}"), "value": str(value)}
            for name, value in values.items()]


def header_filters(headers: JSON | None) -> list[JSON]:
    """Istio's header operations (``{request|response: {set, add, remove}}``) as
    RequestHeaderModifier and ResponseHeaderModifier filters."""
    filters = []
    for direction, kind in (("request", "RequestHeaderModifier"),
                            ("response", "ResponseHeaderModifier")):
        operations = (headers or {}).get(direction) or {}
        field = f"spec.service.headers.{direction}"
        modifier: JSON = {}
        for operation, value in operations.items():
            if operation in ("set", "add"):
                modifier[operation] = _header_list(value, f"{field}.{operation}")
            elif operation == "remove":
                modifier["remove"] = [header_name(name, f"{field}.remove") for name in value]
            else:
                raise UnsupportedRoute(f"{field}.{operation}: expected set, add or remove")
        if modifier:
            filters.append({"type": kind, kind[0].lower() + kind[1:]: modifier})
    for key in headers or {}:
        if key not in ("request", "response"):
            raise UnsupportedRoute(f"spec.service.headers.{key}: expected request or response")
    return filters
