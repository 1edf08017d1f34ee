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
from typing import Any, cast

import structlog

from canary import heap
from canary.controller import Controller
from canary.errors import ConfigError
from canary.flags import Flags, Values, named
from canary.kube import KubeClient, LeaderElector, LeaseSettings
from canary.kube.client import missing_kubeconfig
from canary.kube.lease import check_timing
from canary.kube.selectors import check_label_key, check_label_selector
from canary.logging import LOG_FORMATS, LOG_LEVELS, configure_logging
from canary.notify import SEVERITIES, Severity
from canary.observability import ControllerMetrics, Health, ObservabilityServer, parse_address
from canary.router import supported
from canary.settings import (
    AlertSettings,
    AnalysisSettings,
    KubeSettings,
    LeaderElectionSettings,
    LogSettings,
    RolloutSettings,
    ServingSettings,
    Settings,
    WorkloadSettings,
    check_http_url,
    check_namespace,
    check_object_name,
    check_provider_ref,
    shown_url,
)

log = structlog.get_logger("canary")

#: Where Kubernetes tells a pod its namespace.
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
#: The providers ``--mesh-provider`` accepts: those canary routes with.
MESH_PROVIDERS = supported()
#: Exit status when the leader Lease is lost: the process stops all work and exits, and
#: its supervisor (the kubelet) starts it again as a follower.
EXIT_LEASE_LOST = 3


#: What a flag means when neither it nor its environment variable is set.
DEFAULTS = {
    "mesh-provider": "istio", "selector-labels": "app,name,app.kubernetes.io/name",
    "min-interval": "10s", "default-progress-deadline": "10m", "max-concurrent-rollouts": "0",
    "max-concurrent-initializations": "16", "kube-max-connections": "64",
    "leader-election-id": "canary-leader", "lease-duration": "15s", "renew-deadline": "10s",
    "retry-period": "2s", "metrics-bind-address": ":8080",
    "health-probe-bind-address": ":8081", "shutdown-timeout": "10s", "log-level": "info",
    "log-format": "json", "default-alert-severity": "info",
}


FLAGS = Flags("CANARY_", DEFAULTS)
#: The environment variable of a ``canary run`` flag, e.g. CANARY_METRICS_SERVER.
env_var = FLAGS.env_var
_option = FLAGS.option
_switch = FLAGS.switch


#: The flags of ``canary run``, by group: (flag, metavar, help); a metavar of None makes
#: an on/off switch.
_FLAG_GROUPS: tuple[tuple[str, tuple[tuple[str, str | None, str], ...]], ...] = (
    ("cluster", (
        ("kubeconfig", "PATH", "kubeconfig path (default: $KUBECONFIG, ~/.kube/config, "
         "then the pod's service account)"),
        ("namespace", "NS[,NS...]", "watch only these namespaces, comma-separated; a Role "
         "in each is then enough (default: all namespaces)"),
        ("canary-selector", "SELECTOR", "handle only Canaries matching this label "
         "selector, to split a cluster between controllers (e.g. shard=a)"),
        ("mesh-provider", "MESH", "what routes the traffic of a Canary without "
         f"spec.provider (default: istio; supported: {', '.join(supported())})"),
        ("selector-labels", "KEY[,KEY...]", "label keys renamed for the primary, "
         "comma-separated (default: app,name,app.kubernetes.io/name)"),
        ("kube-max-connections", "N", "connections open at most to the API server for "
         "requests; watches have their own, one each, the leader Lease two (default 64)"))),
    ("analysis", (
        ("metrics-server", "URL", "Prometheus URL for built-in metrics, http(s)"),
        ("min-interval", "DURATION", "shortest analysis interval honoured (default 10s; "
         "lower it only to compress time in tests and demos)"),
        ("default-progress-deadline", "DURATION", "readiness deadline when a Canary sets "
         "none (default 10m)"),
        ("max-concurrent-rollouts", "N", "rollouts under way at most; new revisions "
         "beyond it wait in phase Queued and start first come, first served (default 0: "
         "no limit)"),
        ("max-concurrent-initializations", "N", "Canaries creating their primary at once; "
         "the others wait their turn without a request (default 16; 0: no limit)"))),
    ("leader election", (
        ("leader-elect", None, "run several replicas; only the holder of a Lease works "
         "(default: off)"),
        ("leader-election-namespace", "NS", "namespace of the Lease (default: the pod's "
         "own, else default)"),
        ("leader-election-id", "NAME", "name of the Lease (default: canary-leader)"),
        ("leader-election-identity", "NAME", "this replica's name in the Lease (default: "
         "hostname_pid)"),
        ("lease-duration", "DURATION", "followers take over this long after the last "
         "renewal; at least 1s (default 15s)"),
        ("renew-deadline", "DURATION", "the leader stops working when it cannot renew for "
         "this long; less than --lease-duration (default 10s)"),
        ("retry-period", "DURATION", "time between attempts to take or renew; less than "
         "--renew-deadline (default 2s)"))),
    ("metrics, probes and alerts", (
        ("metrics-bind-address", "ADDRESS", "host:port of /metrics; 0 turns it off "
         "(default :8080)"),
        ("health-probe-bind-address", "ADDRESS", "host:port of /healthz and /readyz; 0 "
         "turns them off (default :8081)"),
        ("flagger-metrics", None, "also export Flagger's metric names and labels, so its "
         "dashboards and alerts keep working (default: off)"),
        ("dashboard-url", "URL", "Grafana dashboard linked from alerts, http(s)"),
        ("default-alert-provider", "NS/NAME", "AlertProvider that hears the alerts of "
         "every Canary without analysis.alerts of its own (default: none)"),
        ("default-alert-severity", "SEVERITY", "least severity sent to the default "
         "AlertProvider: info, warn or error (default info)"))),
    ("process", (
        ("shutdown-timeout", "DURATION", "on SIGTERM, how long in-flight reconciles may "
         "finish (default 10s)"),
        ("log-level", "LEVEL", f"least severe level logged: {', '.join(LOG_LEVELS)} "
         "(default info)"),
        ("log-format", "FORMAT", "json (one object a line, for log pipelines) or console "
         "(for people) (default json)"))),
)


def add_parser(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run", help="run the controller",
        description="Run the canary controller. Every flag can also be set with its "
        "environment variable, CANARY_<FLAG> (e.g. CANARY_METRICS_SERVER for "
        "--metrics-server); a flag given on the command line wins.")
    for title, flags in _FLAG_GROUPS:
        group = run.add_argument_group(title)
        for flag, metavar, help_text in flags:
            if metavar is None:
                _switch(group, flag, help_text)
            else:
                _option(group, flag, help_text, metavar=metavar)


def _bind_address(text: str) -> None:
    if text != "0":
        parse_address(text)


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings ``canary run`` was given. Every value, from a flag or an environment
    variable, is checked here: ConfigError (one line, naming the flag or variable) at the
    first bad one."""
    value = FLAGS.values(args)
    labels = value.items("selector-labels", check_label_key)
    if not labels:
        raise ConfigError(f"{value('selector-labels')[1]}: give at least one label key")
    mesh_provider, source = value("mesh-provider")
    if mesh_provider not in MESH_PROVIDERS:
        raise ConfigError(f"{source}: {mesh_provider!r} is not supported "
                          f"(supported: {', '.join(MESH_PROVIDERS)})")
    namespaces = value.items("namespace", check_namespace) or None
    canary_selector = value.checked("canary-selector", check_label_selector)
    kubeconfig = value.checked("kubeconfig", str)
    missing = missing_kubeconfig(kubeconfig, value("kubeconfig")[1])
    if missing is not None:  # said before anything starts, not after the servers
        raise ConfigError(missing)
    election = _election(value)
    connections, source = value.count("kube-max-connections"), value("kube-max-connections")[1]
    if connections < 1:
        raise ConfigError(f"{source}: give at least 1 connection")
    return Settings(
        kube=KubeSettings(kubeconfig=Path(kubeconfig) if kubeconfig else None,
                          namespaces=namespaces, canary_selector=canary_selector,
                          max_connections=connections),
        analysis=AnalysisSettings(
            metrics_server=value.checked("metrics-server", check_http_url),
            min_interval_seconds=value.duration("min-interval"),
            default_progress_deadline_seconds=value.duration("default-progress-deadline")),
        rollouts=RolloutSettings(
            max_concurrent=value.count("max-concurrent-rollouts"),
            max_concurrent_initializations=value.count("max-concurrent-initializations")),
        workloads=WorkloadSettings(selector_labels=labels),
        logging=LogSettings(level=value.choice("log-level", LOG_LEVELS),
                            format=value.choice("log-format", LOG_FORMATS)),
        leader_election=election,
        serving=ServingSettings(
            metrics_bind_address=value.checked("metrics-bind-address", _bind_address)
            or DEFAULTS["metrics-bind-address"],
            health_probe_bind_address=value.checked("health-probe-bind-address",
                                                    _bind_address)
            or DEFAULTS["health-probe-bind-address"],
            shutdown_timeout_seconds=value.duration("shutdown-timeout"),
            flagger_metrics=value.switch("flagger-metrics")),
        alerts=_alerts(value, namespaces),
        mesh_provider=mesh_provider,
    )


def _alerts(value: Values, namespaces: tuple[str, ...] | None) -> AlertSettings:
    text, source = value("default-alert-provider")
    with named(source):
        provider = check_provider_ref(text) if text else None
    if provider is not None and namespaces is not None and provider[0] not in namespaces:
        raise ConfigError(f"{source}: namespace {provider[0]!r} is not watched "
                          "(--namespace): the controller could not read the AlertProvider")
    severity = value.choice("default-alert-severity", SEVERITIES)
    return AlertSettings(dashboard_url=value.checked("dashboard-url", check_http_url),
                         default_provider=provider,
                         default_severity=cast(Severity, severity))


def _election(value: Values) -> LeaderElectionSettings:
    enabled = value.switch("leader-elect")
    namespace = value.checked("leader-election-namespace", check_namespace)
    election = LeaderElectionSettings(
        enabled=enabled,
        namespace=namespace or _pod_namespace() or "default",
        name=value.checked("leader-election-id", check_object_name)
        or DEFAULTS["leader-election-id"],
        identity=value("leader-election-identity")[0]
        or f"{socket.gethostname()}_{os.getpid()}",
        lease_duration_seconds=value.duration("lease-duration"),
        renew_deadline_seconds=value.duration("renew-deadline"),
        retry_period_seconds=value.duration("retry-period"))
    if not enabled:
        return election
    lease, renew, retry = (f"{source} ({text})" for text, source in (
        value(flag) for flag in ("lease-duration", "renew-deadline", "retry-period")))
    with named(None):  # the message names each flag or variable with its value
        check_timing(election.lease_duration_seconds, election.renew_deadline_seconds,
                     election.retry_period_seconds, names=(lease, renew, retry))
    return election


def _pod_namespace() -> str | None:
    with contextlib.suppress(OSError):
        return POD_NAMESPACE_FILE.read_text().strip() or None
    return None


async def serve(settings: Settings) -> int:
    """Run until a signal (exit 0) or the loss of the leader Lease (EXIT_LEASE_LOST)."""
    metrics = ControllerMetrics(flagger_compatible=settings.serving.flagger_metrics,
                                mesh_provider=settings.mesh_provider)
    health = Health(starting=True)
    servers = _servers(settings.serving, metrics, health)
    heartbeat = asyncio.create_task(health.heartbeat(), name="heartbeat")
    trimming = asyncio.create_task(heap.giving_back(), name="give back memory")
    try:
        return await _serve(settings, metrics, health)
    finally:
        heartbeat.cancel()
        trimming.cancel()
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
        servers.append(server)
    return servers


async def _serve(settings: Settings, metrics: ControllerMetrics, health: Health) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with await KubeClient.connect(settings.kube.kubeconfig,
                                        max_connections=settings.kube.max_connections
                                        ) as client:
        client.on_response = metrics.record_kube_request
        async with client.with_own_connections() as lease_client:
            return await _serve_with(client, lease_client, settings, metrics, health, stop)


async def _serve_with(client: KubeClient, lease_client: KubeClient, settings: Settings,
                      metrics: ControllerMetrics, health: Health, stop: asyncio.Event) -> int:
    """Lead (the Lease over connections of its own), then run the controller until
    stopped or the Lease is lost."""
    elector = _elector(lease_client, settings.leader_election)
    if elector is not None:
        health.standby()
        if not await _lead(elector, stop):
            return 0
    # The controller writes only while this replica surely holds the Lease.
    working = client.fenced(elector.ensure_leading) if elector is not None else client
    # The caches are held for the process' life: kept out of the cycle collector's scans,
    # which stay off while the first lists fill them (and never once this returns).
    with heap.FirstLists() as first_lists:
        controller = Controller(working, settings, metrics=metrics, health=health,
                                on_listed=first_lists.listed, on_synced=first_lists.synced)
        log.info("controller starting", api_server=client.host,
                 namespaces=",".join(settings.kube.namespaces or ()) or "(all)",
                 canary_selector=settings.kube.canary_selector,
                 metrics_server=settings.analysis.metrics_server
                 and shown_url(settings.analysis.metrics_server),
                 leader_election=settings.leader_election.enabled)
        return await _run_controller(controller, elector, settings, stop)


async def _run_controller(controller: Controller, elector: LeaderElector | None,
                          settings: Settings, stop: asyncio.Event) -> int:
    """Run the controller until stopped or the Lease is lost."""
    work = asyncio.create_task(controller.run(), name="controller")
    signalled = asyncio.create_task(stop.wait(), name="signal")
    keeper = asyncio.create_task(elector.hold(), name="lease") if elector else None
    watched = {work, signalled} | ({keeper} if keeper else set())
    done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    lost = await _stop(controller, keeper, settings.serving.shutdown_timeout_seconds,
                       lost=keeper is not None and keeper in done)
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


async def _lead(elector: LeaderElector, stop: asyncio.Event) -> bool:
    """Wait to become the leader: True once it is, False when told to stop first."""
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
        return False
    acquiring.result()  # an unexpected failure to acquire is raised, not ignored
    return True


async def _stop(controller: Controller, keeper: asyncio.Task[None] | None, grace: float, *,
                lost: bool) -> bool:
    """Stop the controller: with ``grace`` seconds for its reconciles, unless the Lease
    is lost (before or during the grace), when it stops at once. Whether it was lost."""
    if not lost:
        log.info("controller stopping")
        graceful = asyncio.create_task(controller.stop(grace=grace))
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
    return lost


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
    heap.freeze_survivors()  # the imports, held for the process' life
    return asyncio.run(serve(settings))
