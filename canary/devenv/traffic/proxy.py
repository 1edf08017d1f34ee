"""A forward proxy into the simulated mesh, for processes outside the cluster.

The local environment has no cluster DNS and no pod network, so a hook command such as
``curl http://backend-canary.prod:9898/token`` reaches nothing. A client that honours
``http_proxy`` (curl, and the load tester's built-in ``hey``) sends it to the simulator
instead, in absolute form (``GET http://backend-canary.prod:9898/token``). The simulator
routes it exactly as its own traffic (Service, VirtualService, DestinationRule, a Ready
pod), counts it in the Istio metrics and answers as the chosen pod's annotations say: the
status they give, after the latency they give, with a small JSON body naming the workload,
pod and version and echoing the method and path, and the cookies the route sets. It
imitates no application's API: a check such as ``| grep token`` on ``/token`` matches
because the path is echoed.

The caller names itself as the proxy URL's user, ``http://WORKLOAD.NAMESPACE@host:port``
(clients send it as ``Proxy-Authorization: Basic``), as Istio knows a caller from its
identity: the metrics' ``source_workload`` and ``source_workload_namespace`` say so, and a
bare host name resolves in the caller's namespace. Without it the source is ``unknown``.

A request to a Service fronting an ingress gateway (``http://istio-gateway.istio-system/``)
enters the mesh there: it is routed by the gateway's VirtualServices on its Host header,
and counted with the gateway as its source (see :mod:`.gateway`). A request to a Gateway
API Gateway's address (``http://public.shop.gateway/``) is routed by the routes attached to
that Gateway, also on its Host header (see :mod:`.gatewayapi`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from yarl import URL

from canary.devenv.traffic.cluster import Endpoint
from canary.devenv.traffic.routing import UNKNOWN, Request, Source, normalize_host
from canary.errors import ConfigError

#: Longest a proxied answer is held back for its simulated latency, in seconds.
MAX_DELAY_SECONDS = 30.0
#: Request headers that are the proxy's own, not the destination's.
_HOP_HEADERS = frozenset({"proxy-authorization", "proxy-connection", "connection",
                          "keep-alive", "content-length", "transfer-encoding"})


@dataclass(frozen=True)
class Delivery:
    """How one routed request was answered: its status, latency (ms) and response flags,
    the endpoint that answered (None when the mesh answered itself), and the cookies the
    route set."""

    status: int
    latency_ms: float
    flags: str
    endpoint: Endpoint | None = None
    set_cookies: tuple[str, ...] = ()


Deliver = Callable[[Request], Delivery]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def caller_from(authorization: str | None) -> Source:
    """The caller a ``Proxy-Authorization: Basic`` header names (``WORKLOAD.NAMESPACE`` as
    the user; the password is ignored); :data:`UNKNOWN` without one."""
    if not authorization:
        return UNKNOWN
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return UNKNOWN
    try:
        user = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        return UNKNOWN
    workload, _, namespace = user.partition(".")
    if not workload or not namespace:
        return UNKNOWN
    return Source(workload, namespace, {"app": workload})


def service_host(host: str, caller: Source) -> str:
    """The Service FQDN a client dialled; a bare name is in the caller's namespace, as
    the caller pod's DNS search path would complete it. ConfigError when it cannot be."""
    if "." not in host.strip(".") and caller is not UNKNOWN:
        host = f"{host}.{caller.namespace}"
    return normalize_host(host)


def answer(request: Request, delivery: Delivery) -> dict[str, Any]:
    """The body of a proxied answer: who answered, and what was asked."""
    endpoint = delivery.endpoint
    if endpoint is None:
        reason = {404: "no route", 500: "no valid backend"}.get(delivery.status,
                                                                "no healthy upstream")
        return {"error": reason, "host": request.authority, "flags": delivery.flags,
                "method": request.method, "path": request.path}
    return {"workload": endpoint.workload, "namespace": endpoint.namespace,
            "pod": endpoint.pod, "version": endpoint.version, "status": delivery.status,
            "host": request.authority, "method": request.method, "path": request.path}


def forward_proxy(deliver: Deliver) -> Any:
    """aiohttp middleware: requests in absolute form go into the mesh; the others (the
    simulator's own API, asked in origin form) go on to their handler."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "CONNECT":
            return web.json_response({"error": "only plain http:// is proxied"}, status=501)
        target = URL(request.raw_path, encoded=True)
        if not target.is_absolute():
            return await handler(request)
        return await _forward(deliver, request, target)

    return middleware


async def _forward(deliver: Deliver, request: web.Request, url: URL) -> web.Response:
    caller = caller_from(request.headers.get("Proxy-Authorization"))
    if url.scheme != "http":
        return web.json_response({"error": "only plain http:// is proxied"}, status=501)
    try:
        host = service_host(url.host or "", caller)
    except ConfigError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    await request.read()
    headers = {k.lower(): v for k, v in request.headers.items()
               if k.lower() not in _HOP_HEADERS}
    routed = Request(host, url.raw_path_qs, request.method, headers, caller)
    delivery = deliver(routed)
    await asyncio.sleep(min(delivery.latency_ms / 1000.0, MAX_DELAY_SECONDS))
    response = web.json_response(answer(routed, delivery), status=delivery.status)
    for cookie in delivery.set_cookies:
        response.headers.add("Set-Cookie", cookie)
    return response
