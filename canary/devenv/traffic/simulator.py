"""The traffic simulator: the local environment's stand-in for a mesh data plane.

For every host it is asked to drive, it sends requests at the configured rate, routes each
one through the cluster's VirtualServices and DestinationRules as Istio would (or, sent to
a Gateway API Gateway's address, through the HTTPRoutes and GRPCRoutes attached to it, the
simulator being the controller of its GatewayClass), lets the
chosen pod answer as its annotations say, and counts the result in Istio's standard
metrics and, for requests through a Gateway API Gateway, in Envoy Gateway's cluster stats
(:mod:`.envoy`), which Prometheus scrapes from ``/metrics``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from canary.devenv.traffic.cluster import ClusterView, Endpoint, split_service_host
from canary.devenv.traffic.envoy import EnvoyMetrics
from canary.devenv.traffic.gatewayapi import gateway_at, route_through
from canary.devenv.traffic.gatewaycontroller import GatewayStatusWriter
from canary.devenv.traffic.grpcroute import is_grpc
from canary.devenv.traffic.grpcstatus import response_labels
from canary.devenv.traffic.metrics import IstioMetrics, Labels
from canary.devenv.traffic.mix import HostTraffic, Population
from canary.devenv.traffic.proxy import Delivery, forward_proxy
from canary.devenv.traffic.routing import (
    Destination,
    Request,
    RouteDecision,
    Source,
    normalize_host,
    route_request,
)
from canary.errors import ConfigError
from canary.kube import KubeClient

log = structlog.get_logger("canary.devenv.traffic")

#: Seconds between batches of requests.
TICK_SECONDS = 0.05


class Simulator:
    """Generates, routes and answers requests; owns the metrics."""

    def __init__(self, view: ClusterView, seed: int, state_file: Path | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.view = view
        #: Seconds since the epoch, as the API server's creation timestamps count: a pod's
        #: age, which its error-rate ramp follows, is measured against it.
        self.wall_clock = wall_clock
        self.rng = random.Random(seed)
        self.metrics = IstioMetrics()
        self.envoy = EnvoyMetrics()
        self.state_file = state_file
        self.hosts: dict[str, HostTraffic] = {}
        self._populations: dict[str, Population] = {}
        #: Per host: how often a user was answered by one workload right after another.
        self.switches: dict[str, Counter[tuple[str, str]]] = {}
        self._carry: dict[str, float] = {}
        self._clock = 0.0
        if state_file and state_file.exists():
            for host, config in json.loads(state_file.read_text()).items():
                self.hosts[host] = HostTraffic.model_validate(config)

    # -- configuration ------------------------------------------------------------------

    def set_host(self, host: str, traffic: HostTraffic) -> str:
        host = normalize_host(host)
        self.hosts[host] = traffic
        self._populations.pop(host, None)
        self._save()
        return host

    def forget_namespace(self, namespace: str) -> None:
        """A deleted namespace's request series go, as its proxies' would."""
        dropped = self.metrics.forget(namespace) + self.envoy.forget(namespace)
        if dropped:
            log.info("series of a deleted namespace dropped", namespace=namespace,
                     series=dropped)

    def users(self, host: str) -> dict[str, Any]:
        """Who answered the host's users: per workload the users it answered last, and how
        often a user went from one workload to another (what session affinity prevents)."""
        host = normalize_host(host)
        population = self._populations.get(host)
        last: Counter[str] = Counter(u.last_workload for u in population.users
                                     if u.last_workload) if population else Counter()
        return {"host": host, "users": len(population.users) if population else 0,
                "lastAnsweredBy": dict(last),
                "switches": {f"{a} -> {b}": n
                             for (a, b), n in self.switches.get(host, Counter()).items()}}

    def remove_host(self, host: str) -> bool:
        host = normalize_host(host)
        found = self.hosts.pop(host, None) is not None
        self._populations.pop(host, None)
        self._save()
        return found

    def _save(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({h: t.model_dump() for h, t in self.hosts.items()}, indent=2))
        tmp.replace(self.state_file)

    # -- the request loop ---------------------------------------------------------------

    async def run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            if self.view.synced():
                self.tick(now - last)
            last = now

    def tick(self, seconds: float) -> None:
        """Send every request due in the last ``seconds``, at each host's rate."""
        self._clock += seconds
        for host, traffic in list(self.hosts.items()):
            due = self._carry.get(host, 0.0) + traffic.rps * seconds
            count = int(due)
            self._carry[host] = due - count
            if count == 0:
                continue
            population = self._populations.get(host)
            if population is None:
                population = self._populations[host] = Population(host, traffic.mix, self.rng)
            for _ in range(count):
                self.send(population)

    def send(self, population: Population) -> None:
        user, request = population.next_request(self.rng, self._clock)
        delivery = self.deliver(request)
        endpoint = delivery.endpoint
        if endpoint is None:
            return
        if user.last_workload is not None and user.last_workload != endpoint.workload:
            self.switches.setdefault(population.host, Counter())[
                (user.last_workload, endpoint.workload)] += 1
        user.last_workload = endpoint.workload
        for cookie in delivery.set_cookies:
            user.receive(cookie, self._clock)

    def route(self, request: Request) -> tuple[Request, RouteDecision]:
        """Where the mesh sends a request to its Service FQDN (``request.authority``). To a
        gateway Service it enters through the gateway: routed by the gateway's
        VirtualServices on its Host header, and from then on its source is the gateway.
        To a Gateway API Gateway's address, it is routed by the routes attached to it."""
        gateway = gateway_at(request.authority)
        if gateway is not None:
            return self.route_gateway(request, *gateway)
        ingress = self.view.ingress_for(request.authority)
        if ingress is None:
            spec, namespace = self.view.virtual_service_for(request.authority)
            return request, route_request(spec, namespace, request, self.rng)
        request = replace(request, gateways=ingress.gateways, source=ingress.source)
        found = self.view.gateway_route_for(ingress.gateways, request.host)
        if found is None:
            return request, RouteDecision(None)
        return request, route_request(found[0], found[1], request, self.rng)

    def route_gateway(self, request: Request, namespace: str, name: str
                      ) -> tuple[Request, RouteDecision]:
        """Route a request sent to a served Gateway API Gateway (404 for another), which
        from then on is its source."""
        request = replace(request, source=Source(name, namespace, {"app": name}))
        api = self.view.gateway_api
        listeners = api.listeners(namespace, name)
        if listeners is None:
            return request, RouteDecision(None)
        return request, route_through(listeners, api.attached(f"{namespace}/{name}"), request,
                                      api.permits, self.rng)

    def deliver(self, request: Request) -> Delivery:
        """Route one request as the mesh would (:meth:`route`), let the chosen pod answer,
        and count it in the metrics, from ``request.source`` or the gateway it entered by."""
        request, decision = self.route(request)
        if decision.destination is None:
            flag = "NR" if decision.status == 404 else "-"
            self._record_source(request, Destination(request.authority), None, decision.status,
                                flag, 0.5)
            return Delivery(decision.status, 0.5, flag)
        endpoints = self.view.endpoints(decision.destination)
        if endpoints is None and gateway_at(request.authority) is not None:
            # A Gateway answers 500 for a backend that does not exist, as the spec says.
            self._record_source(request, decision.destination, None, 500, "-", 0.5)
            return Delivery(500, 0.5, "-")
        if not endpoints:
            # No healthy upstream: the client-side proxy answers 503 itself.
            flag = "UH" if endpoints is not None else "NC"
            self._record_source(request, decision.destination, None, 503, flag, 0.5)
            self._record_cluster(decision, 503, 0.5)
            return Delivery(503, 0.5, flag)
        endpoint = endpoints[self.rng.randrange(len(endpoints))]
        now = self.wall_clock()
        status, latency = endpoint.behaviour.sample(self.rng, endpoint.age(now))
        self._record_destination(request, decision.destination, endpoint, status, latency)
        self._record_source(request, decision.destination, endpoint, status, "-", latency)
        self._record_cluster(decision, status, latency)
        for mirror in decision.mirrors:
            mirrored = self.view.endpoints(mirror)
            if mirrored:
                target = mirrored[self.rng.randrange(len(mirrored))]
                mirror_status, mirror_latency = target.behaviour.sample(self.rng,
                                                                        target.age(now))
                self._record_destination(request, mirror, target, mirror_status, mirror_latency)
        return Delivery(status, latency, "-", endpoint, decision.set_cookies)

    def _labels(self, reporter: str, request: Request, destination: Destination,
                endpoint: Endpoint | None, status: int, flags: str) -> Labels:
        """The labels of one answer to ``request`` (from its source): a gRPC call's
        failure is HTTP 200 with a non-zero ``grpc_response_status``, as Istio reports it."""
        source = request.source
        answer = response_labels(status, grpc=is_grpc(request))
        service = split_service_host(destination.host)
        service_name, service_namespace = service if service else (
            destination.host.split(".")[0], "unknown")
        return Labels(
            reporter=reporter, source_workload=source.workload,
            source_workload_namespace=source.namespace, source_app=source.app,
            destination_workload=endpoint.workload if endpoint else "unknown",
            destination_workload_namespace=endpoint.namespace if endpoint else "unknown",
            destination_app=endpoint.app if endpoint else "unknown",
            destination_version=endpoint.version if endpoint else "unknown",
            destination_service=destination.host, destination_service_name=service_name,
            destination_service_namespace=service_namespace,
            destination_canonical_service=endpoint.canonical_service if endpoint else "unknown",
            request_protocol=answer.request_protocol, response_code=answer.response_code,
            grpc_response_status=answer.grpc_response_status, response_flags=flags,
            connection_security_policy="mutual_tls" if reporter == "destination" else "unknown",
        )

    def _record_destination(self, request: Request, destination: Destination,
                            endpoint: Endpoint, status: int, latency: float) -> None:
        self.metrics.record(
            self._labels("destination", request, destination, endpoint, status, "-"), latency)

    def _record_cluster(self, decision: RouteDecision, status: int, latency: float) -> None:
        """Count a request a Gateway sent through a cluster, as Envoy Gateway's stats do."""
        if decision.cluster is not None:
            self.envoy.record(decision.cluster, status, latency)

    def _record_source(self, request: Request, destination: Destination,
                       endpoint: Endpoint | None, status: int, flags: str, latency: float
                       ) -> None:
        self.metrics.record(
            self._labels("source", request, destination, endpoint, status, flags), latency)


def build_app(simulator: Simulator) -> web.Application:
    """The simulator's HTTP interface: probes, metrics, the traffic settings, and the
    forward proxy into the simulated mesh (requests in absolute form)."""
    routes = web.RouteTableDef()
    _add_probes(routes, simulator)
    _add_traffic(routes, simulator)
    app = web.Application(middlewares=[forward_proxy(simulator.deliver)])
    app.add_routes(routes)
    return app


def _add_probes(routes: web.RouteTableDef, simulator: Simulator) -> None:
    """Health, readiness (once the watches have listed) and the Istio-style metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(simulator.metrics)
    registry.register(simulator.envoy)

    @routes.get("/healthz")
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    @routes.get("/readyz")
    async def readyz(_: web.Request) -> web.Response:
        if simulator.view.synced():
            return web.Response(text="ok")
        return web.Response(status=503, text="watches not synced yet")

    @routes.get("/metrics")
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _add_traffic(routes: web.RouteTableDef, simulator: Simulator) -> None:
    """Read and set each host's traffic; a refused setting answers 400 with the reason."""
    @routes.get("/traffic")
    async def list_traffic(_: web.Request) -> web.Response:
        return web.json_response({h: t.model_dump() for h, t in simulator.hosts.items()})

    @routes.put("/traffic/{host}")
    async def put_traffic(request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
            traffic = HostTraffic.model_validate(body)
            host = simulator.set_host(request.match_info["host"], traffic)
        except (ValueError, ValidationError, ConfigError) as exc:
            return _refused(exc)
        log.info("traffic set", host=host, rps=traffic.rps)
        return web.json_response({"host": host, **traffic.model_dump()})

    @routes.get("/traffic/{host}/users")
    async def users(request: web.Request) -> web.Response:
        try:
            return web.json_response(simulator.users(request.match_info["host"]))
        except ConfigError as exc:
            return _refused(exc)

    @routes.delete("/traffic/{host}")
    async def delete_traffic(request: web.Request) -> web.Response:
        try:
            found = simulator.remove_host(request.match_info["host"])
        except ConfigError as exc:
            return _refused(exc)
        return web.json_response({"removed": found}, status=200 if found else 404)


def _refused(exc: Exception) -> web.Response:
    return web.json_response({"error": str(exc)}, status=400)


async def serve(kubeconfig: Path | None, host: str, port: int, seed: int,
                state_file: Path | None) -> None:
    """Run the simulator until cancelled."""
    async with await KubeClient.connect(kubeconfig) as client:
        view = ClusterView(client)
        simulator = Simulator(view, seed, state_file)
        view.add_namespace_listener(simulator.forget_namespace)
        statuses = GatewayStatusWriter(client, view.gateway_api, view.synced)
        view.add_listener(statuses.changed)
        runner = web.AppRunner(build_app(simulator), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("traffic simulator listening", address=f"http://{host}:{port}")
        try:
            async with asyncio.TaskGroup() as tasks:
                for reflector in view.reflectors:
                    tasks.create_task(reflector.run())
                tasks.create_task(simulator.run())
                tasks.create_task(statuses.run())
        finally:
            await runner.cleanup()
