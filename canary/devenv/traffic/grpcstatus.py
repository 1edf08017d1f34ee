"""How a mesh counts a call's answer, gRPC or not (pure; no I/O).

A gRPC call is answered with HTTP status 200 whatever happens: its outcome travels in the
``grpc-status`` trailer, ``0`` for OK. Istio's standard metrics show that as
``response_code="200"`` with ``grpc_response_status`` the gRPC status and
``request_protocol="grpc"``; plain HTTP requests have an empty ``grpc_response_status``.
So a failed gRPC call is never a 5xx, which is why success rates on gRPC services read
``grpc_response_status``.

The simulator decides every answer as an HTTP status (a pod's error, no route, no healthy
upstream); for a gRPC call it becomes the gRPC status of gRPC's HTTP-to-gRPC mapping, as
Envoy's local replies to gRPC calls do: an application error (500) is ``UNKNOWN``, what
an unhandled server failure is in gRPC.
"""

from __future__ import annotations

from typing import NamedTuple

OK = 0
UNKNOWN = 2
PERMISSION_DENIED = 7
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16

#: gRPC's mapping of an HTTP status to a gRPC status (others: UNKNOWN).
_FROM_HTTP = {200: OK, 400: INTERNAL, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED,
              404: UNIMPLEMENTED, 429: UNAVAILABLE, 502: UNAVAILABLE, 503: UNAVAILABLE,
              504: UNAVAILABLE}


class ResponseLabels(NamedTuple):
    """The labels of Istio's metrics that say how a request was answered."""

    request_protocol: str
    response_code: str
    grpc_response_status: str


def grpc_status(http_status: int) -> int:
    """The gRPC status a call gets where an HTTP request would get ``http_status``."""
    return _FROM_HTTP.get(http_status, UNKNOWN)


def response_labels(http_status: int, *, grpc: bool) -> ResponseLabels:
    """How Istio labels an answer of ``http_status`` to a plain or a gRPC request."""
    if not grpc:
        return ResponseLabels("http", str(http_status), "")
    return ResponseLabels("grpc", "200", str(grpc_status(http_status)))
