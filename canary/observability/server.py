"""The HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz``.

They are served from threads of their own, not from the controller's event loop: a
liveness probe must be answered precisely when the loop is stuck, and a scrape must not
wait behind a reconcile. Each :class:`ObservabilityServer` serves what it is given, so
the metrics and the probes can share one address or have one each (as kubebuilder's
``--metrics-bind-address`` and ``--health-probe-bind-address`` do).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast
from urllib.parse import urlsplit

import structlog

from canary.observability.health import Check, Health
from canary.observability.metrics import ControllerMetrics

log = structlog.get_logger("canary.observability")

#: Seconds the serving thread may take to notice :meth:`ObservabilityServer.stop`.
POLL_INTERVAL = 0.1


def parse_address(address: str) -> tuple[str, int]:
    """``host:port``, ``[v6-host]:port`` or ``:port`` (every interface) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bind address {address!r} is not host:port (e.g. :8080, "
                         "127.0.0.1:8080, [::1]:8080)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, metrics: ControllerMetrics | None,
                 health: Health | None) -> None:
        self.metrics, self.health = metrics, health
        self.dual_stack = not host and socket.has_dualstack_ipv6()
        if self.dual_stack:
            host = "::"
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host or "0.0.0.0", port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look the host up in DNS (getfqdn), which can hang.
        if self.dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        path = urlsplit(self.path).path
        try:
            if path == "/metrics" and server.metrics is not None:
                body, content_type = server.metrics.exposition(self.headers.get("Accept"))
                self._reply(200, body, content_type)
            elif path == "/healthz" and server.health is not None:
                self._probe(server.health.liveness(), failure=500)
            elif path == "/readyz" and server.health is not None:
                self._probe(server.health.readiness(), failure=503)
            else:
                self._reply(404, b"not found\n")
        except Exception as exc:  # answer, whatever went wrong: a probe must not hang
            log.exception("observability endpoint failed", path=path)
            self._reply(500, f"{path} failed: {exc}\n".encode())

    def _probe(self, check: Check, failure: int) -> None:
        self._reply(200 if check.ok else failure, f"{check}\n".encode())

    def _reply(self, status: int, body: bytes,
               content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: kubelet probes and scrapes every few seconds would flood the log."""


class ObservabilityServer:
    """``/metrics`` (when given metrics) and ``/healthz``, ``/readyz`` (when given health)
    on one address, served by a daemon thread."""

    def __init__(self, address: str, *, metrics: ControllerMetrics | None = None,
                 health: Health | None = None) -> None:
        if metrics is None and health is None:
            raise ValueError("give the server metrics, health or both to serve")
        self.address = address
        self._host, self._port = parse_address(address)
        self._metrics, self._health = metrics, health
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (raising OSError if the address is taken) and serve in the background."""
        if self._server is not None:
            raise RuntimeError(f"the server on {self.address} is already running")
        server = _Server(self._host, self._port, self._metrics, self._health)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,),
                                        name=f"observability {self.address}", daemon=True)
        self._thread.start()
        log.info("serving", address=self.address, port=self.port,
                 endpoints=self.endpoints)

    def stop(self) -> None:
        """Stop serving and release the port; blocks up to POLL_INTERVAL (from a
        coroutine, ``await asyncio.to_thread(server.stop)``). Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    @property
    def endpoints(self) -> list[str]:
        return ((["/metrics"] if self._metrics is not None else [])
                + (["/healthz", "/readyz"] if self._health is not None else []))

    @property
    def port(self) -> int:
        """The port bound: the one asked for, or the one the OS chose for port 0."""
        if self._server is None:
            raise RuntimeError("the server is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """A base URL to reach the server from this machine (loopback for wildcards)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self._host,
                                                                          self._host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def __enter__(self) -> ObservabilityServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
