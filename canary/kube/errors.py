"""Errors raised by :mod:`canary.kube`, mapped from HTTP status codes."""

from __future__ import annotations

from typing import Any

from canary.errors import CanaryError


class KubeError(CanaryError):
    """Anything that went wrong talking to the Kubernetes API."""


class NotLeader(KubeError):
    """A write refused before it was sent: this replica can no longer be sure it holds
    the leader Lease (its last renewal is older than the renew deadline, as after the
    process was paused), so another replica may hold it and be writing."""


class TransportError(KubeError):
    """The API server could not be reached or the connection broke."""


class WatchListRefused(KubeError):
    """The API server does not serve a watch-list (``sendInitialEvents``): it refused
    one (the WatchList feature gate off), or answered it as a plain watch (a server
    older than the feature). A cache then lists in pages."""


class ApiError(KubeError):
    """The API server answered with a non-2xx status.

    ``reason`` is the machine-readable ``Status.reason`` (e.g. ``AlreadyExists``) and
    ``message`` the human-readable text the API server wrote, which for validation
    errors names the offending field.
    """

    status: int = 0

    def __init__(self, status: int, reason: str, message: str, body: dict[str, Any] | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}


class Unauthorized(ApiError):
    """401: the credentials were not accepted."""


class Forbidden(ApiError):
    """403: authenticated, but RBAC does not allow the request."""


class NotFound(ApiError):
    """404: the object or resource type does not exist."""


class Conflict(ApiError):
    """409: the object exists already, or its resourceVersion changed underneath us."""


class Gone(ApiError):
    """410: the requested resourceVersion is too old; re-list."""


class Invalid(ApiError):
    """422: the object failed validation (schema, CEL rules or admission)."""


class TooManyRequests(ApiError):
    """429: throttled by API priority and fairness; retry after a pause."""


class ServerError(ApiError):
    """5xx: the API server failed; usually worth a retry."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def api_error(status: int, body: dict[str, Any] | None, fallback_text: str = "") -> ApiError:
    """Build the most specific :class:`ApiError` for a status and a ``Status`` body."""
    body = body or {}
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or fallback_text or "")
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(status, reason, message, body)
