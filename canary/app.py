"""``canary run``: the composition root. Builds the client and the controller from the
settings, takes the leader Lease when asked to, and runs until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path
from typing import Any

import structlog

from canary.controller import Controller
from canary.errors import ConfigError
from canary.kube import KubeClient, LeaderElector, LeaseSettings
from canary.logging import configure_logging
from canary.models.base import parse_duration
from canary.observability import ControllerMetrics, Health, ObservabilityServer, parse_address
from canary.settings import (
    AlertSettings,
    AnalysisSettings,
    KubeSettings,
    LeaderElectionSettings,
    LogSettings,
    ServingSettings,
    Settings,
    WorkloadSettings,
)

log = structlog.get_logger("canary")

#: Where Kubernetes tells a pod its namespace.
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MESH_PROVIDERS = ("istio",)
#: Exit status when the leader Lease is lost: the process stops all work and exits, and
#: its supervisor (the kubelet) starts it again as a follower.
EXIT_LEASE_LOST = 3


def _env(flag: str) -> str | None:
    return os.environ.get("CANARY_" + flag.upper().replace("-", "_"))


def add_parser(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run", help="run the controller",
        description="Run the canary controller. Every flag can also be set with "
        "CANARY_<FLAG> (e.g. CANARY_METRICS_SERVER for --metrics-server).")
    cluster = run.add_argument_group("cluster")
    cluster.add_argument("--kubeconfig", type=Path, default=_env("kubeconfig"),
                         help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config, "
                         "then the pod's service account)")
    cluster.add_argument("--namespace", default=_env("namespace"),
                         help="watch only these namespaces, comma-separated; a Role in each "
                         "is then enough (default: all namespaces)")
    cluster.add_argument("--canary-selector", default=_env("canary-selector"),
                         help="handle only Canaries matching this label selector, to split "
                         "a cluster between controllers (e.g. shard=a)")
    cluster.add_argument("--mesh-provider", default=_env("mesh-provider") or "istio",
                         help="service mesh whose routing canary drives (default: istio, "
                         "the only one supported)")
    cluster.add_argument("--selector-labels", default=_env("selector-labels")
                         or "app,name,app.kubernetes.io/name",
                         help="label keys renamed for the primary, comma-separated "
                         "(default: app,name,app.kubernetes.io/name)")
    analysis = run.add_argument_group("analysis")
    analysis.add_argument("--metrics-server", default=_env("metrics-server"),
                          help="Prometheus URL for built-in metrics")
    analysis.add_argument("--min-interval", default=_env("min-interval") or "10s",
                          help="shortest analysis interval honoured (default 10s; lower it "
                          "only to compress time in tests and demos)")
    analysis.add_argument("--default-progress-deadline",
                          default=_env("default-progress-deadline") or "10m",
                          help="readiness deadline when a Canary sets none (default 10m)")
    election = run.add_argument_group("leader election")
    election.add_argument("--leader-elect", action=argparse.BooleanOptionalAction,
                          default=None,
                          help="run several replicas; only the holder of a Lease works "
                          "(default: off)")
    election.add_argument("--leader-election-namespace",
                          default=_env("leader-election-namespace"),
                          help="namespace of the Lease (default: the pod's own, else "
                          "default)")
    election.add_argument("--leader-election-id", default=_env("leader-election-id")
                          or "canary-leader", help="name of the Lease (default: canary-leader)")
    election.add_argument("--leader-election-identity", default=_env("leader-election-identity"),
                          help="this replica's name in the Lease (default: hostname_pid)")
    election.add_argument("--lease-duration", default=_env("lease-duration") or "15s",
                          help="followers take over this long after the last renewal "
                          "(default 15s)")
    election.add_argument("--renew-deadline", default=_env("renew-deadline") or "10s",
                          help="the leader stops working when it cannot renew for this long "
                          "(default 10s)")
    election.add_argument("--retry-period", default=_env("retry-period") or "2s",
                          help="time between attempts to take or renew (default 2s)")
    serving = run.add_argument_group("metrics, probes and alerts")
    serving.add_argument("--metrics-bind-address", default=_env("metrics-bind-address")
                         or ":8080", help="host:port of /metrics; 0 turns it off "
                         "(default :8080)")
    serving.add_argument("--health-probe-bind-address",
                         default=_env("health-probe-bind-address") or ":8081",
                         help="host:port of /healthz and /readyz; 0 turns them off "
                         "(default :8081)")
    serving.add_argument("--flagger-metrics", action=argparse.BooleanOptionalAction,
                         default=None, help="also export Flagger's metric names and labels, "
                         "so its dashboards and alerts keep working (default: off)")
    serving.add_argument("--dashboard-url", default=_env("dashboard-url"),
                         help="Grafana dashboard linked from alerts")
    process = run.add_argument_group("process")
    process.add_argument("--shutdown-timeout", default=_env("shutdown-timeout") or "10s",
                         help="on SIGTERM, how long in-flight reconciles may finish "
                         "(default 10s)")
    process.add_argument("--log-level", default=_env("log-level") or "info",
                         choices=["debug", "info", "warning", "error"])
    process.add_argument("--log-format", default=_env("log-format") or "json",
                         choices=["json", "console"])


def _flag(name: str, given: bool | None) -> bool:
    """A boolean flag, else its environment variable, else off."""
    if given is not None:
        return given
    text = _env(name)
    if text is None or text == "":
        return False
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    env = "CANARY_" + name.upper().replace("-", "_")
    raise ConfigError(f"{env}: {text!r} is not true or false")


def _bind_address(flag: str, text: str) -> str:
    if text == "0":
        return text
    try:
        parse_address(text)
    except ValueError as exc:
        raise ConfigError(f"--{flag}: {exc}") from None
    return text


def _list(text: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def settings_from(args: argparse.Namespace) -> Settings:
    def duration(flag: str, text: str) -> float:
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"--{flag}: {exc}") from None

    labels = _list(args.selector_labels)
    if not labels:
        raise ConfigError("--selector-labels: give at least one label key")
    if args.mesh_provider not in MESH_PROVIDERS:
        raise ConfigError(f"--mesh-provider: {args.mesh_provider!r} is not supported "
                          f"(supported: {', '.join(MESH_PROVIDERS)})")
    namespaces = _list(args.namespace) or None
    election = LeaderElectionSettings(
        enabled=_flag("leader-elect", args.leader_elect),
        namespace=args.leader_election_namespace or _pod_namespace() or "default",
        name=args.leader_election_id,
        identity=args.leader_election_identity or f"{socket.gethostname()}_{os.getpid()}",
        lease_duration_seconds=duration("lease-duration", args.lease_duration),
        renew_deadline_seconds=duration("renew-deadline", args.renew_deadline),
        retry_period_seconds=duration("retry-period", args.retry_period))
    if election.enabled and not (election.lease_duration_seconds
                                 > election.renew_deadline_seconds
                                 > election.retry_period_seconds):
        raise ConfigError("--lease-duration must exceed --renew-deadline, which must exceed "
                          "--retry-period")
    return Settings(
        kube=KubeSettings(kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
                          namespaces=namespaces, canary_selector=args.canary_selector or None),
        analysis=AnalysisSettings(
            metrics_server=args.metrics_server or None,
            min_interval_seconds=duration("min-interval", args.min_interval),
            default_progress_deadline_seconds=duration("default-progress-deadline",
                                                       args.default_progress_deadline)),
        workloads=WorkloadSettings(selector_labels=labels),
        logging=LogSettings(level=args.log_level, format=args.log_format),
        leader_election=election,
        serving=ServingSettings(
            metrics_bind_address=_bind_address("metrics-bind-address",
                                               args.metrics_bind_address),
            health_probe_bind_address=_bind_address("health-probe-bind-address",
                                                    args.health_probe_bind_address),
            shutdown_timeout_seconds=duration("shutdown-timeout", args.shutdown_timeout),
            flagger_metrics=_flag("flagger-metrics", args.flagger_metrics)),
        alerts=AlertSettings(dashboard_url=args.dashboard_url or None),
        mesh_provider=args.mesh_provider,
    )


def _pod_namespace() -> str | None:
    with contextlib.suppress(OSError):
        return POD_NAMESPACE_FILE.read_text().strip() or None
    return None


async def serve(settings: Settings) -> int:
    """Run until a signal (exit 0) or the loss of the leader Lease (EXIT_LEASE_LOST)."""
    metrics = ControllerMetrics(flagger_compatible=settings.serving.flagger_metrics,
                                mesh_provider=settings.mesh_provider)
    health = Health()
    servers = _servers(settings.serving, metrics, health)
    heartbeat = asyncio.create_task(health.heartbeat(), name="heartbeat")
    try:
        return await _serve(settings, metrics, health)
    finally:
        heartbeat.cancel()
        for server in servers:
            await asyncio.to_thread(server.stop)


def _servers(serving: ServingSettings, metrics: ControllerMetrics, health: Health
             ) -> list[ObservabilityServer]:
    """Start /metrics and the probes (one server when both share an address). They answer
    on a standby replica too: it is alive and ready to take over."""
    wanted: dict[str, dict[str, Any]] = {}
    if serving.metrics_bind_address != "0":
        wanted.setdefault(serving.metrics_bind_address, {})["metrics"] = metrics
    if serving.health_probe_bind_address != "0":
        wanted.setdefault(serving.health_probe_bind_address, {})["health"] = health
    servers: list[ObservabilityServer] = []
    for address, parts in wanted.items():
        server = ObservabilityServer(address, **parts)
        try:
            server.start()
        except OSError as exc:
            for started in servers:
                started.stop()
            raise ConfigError(f"cannot listen on {address}: {exc.strerror or exc}") from None
        log.info("serving", address=address, endpoints=server.endpoints)
        servers.append(server)
    return servers


async def _serve(settings: Settings, metrics: ControllerMetrics, health: Health) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with await KubeClient.connect(settings.kube.kubeconfig) as client:
        client.on_response = metrics.record_kube_request
        elector = _elector(client, settings.leader_election)
        if elector is not None:
            acquiring = asyncio.create_task(elector.acquire())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not acquiring.done():
                acquiring.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquiring
                await elector.release()  # in case the cancelled attempt had just won
                log.info("controller stopping before it became leader")
                return 0
            acquiring.result()  # an unexpected failure to acquire is raised, not ignored
        controller = Controller(client, settings, metrics=metrics, health=health)
        log.info("controller starting", api_server=client.host,
                 namespaces=",".join(settings.kube.namespaces or ()) or "(all)",
                 canary_selector=settings.kube.canary_selector,
                 metrics_server=settings.analysis.metrics_server,
                 leader_election=settings.leader_election.enabled)
        work = asyncio.create_task(controller.run(), name="controller")
        signalled = asyncio.create_task(stop.wait(), name="signal")
        keeper = asyncio.create_task(elector.hold(), name="lease") if elector else None
        watched = {work, signalled} | ({keeper} if keeper else set())
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        lost = keeper is not None and keeper in done
        if not lost:
            log.info("controller stopping")
            graceful = asyncio.create_task(
                controller.stop(grace=settings.serving.shutdown_timeout_seconds))
            if keeper is not None:
                # Losing the Lease during the grace period ends the grace at once.
                await asyncio.wait({graceful, keeper}, return_when=asyncio.FIRST_COMPLETED)
                lost = keeper.done() and not graceful.done()
                if lost:
                    graceful.cancel()
            if not lost:
                await graceful
        if lost:
            # Another replica may take over at any moment: stop at once, write nothing more.
            await controller.stop(grace=0)
        for task in (work, signalled, keeper):
            if task is not None and not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        if lost:
            return EXIT_LEASE_LOST
        if work in done and work.exception() is not None:
            raise work.exception()  # type: ignore[misc]
        if elector is not None:
            await elector.release()
        log.info("controller stopped")
        return 0


def _elector(client: KubeClient, election: LeaderElectionSettings) -> LeaderElector | None:
    if not election.enabled:
        return None
    return LeaderElector(client, LeaseSettings(
        namespace=election.namespace, identity=election.identity, name=election.name,
        lease_duration=election.lease_duration_seconds,
        renew_deadline=election.renew_deadline_seconds,
        retry_period=election.retry_period_seconds))


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configure_logging(settings.logging.level, settings.logging.format)
    return asyncio.run(serve(settings))
