"""The start-up sequence of the local environment, one step a component.

In order: a fresh PKI, etcd, kube-apiserver (RBAC on), then kube-controller-manager,
kube-scheduler and kwok with a fake Node, the Istio, Gateway API and any extra CRDs
(waiting until Established), the traffic simulator (and its GatewayClass
``traffic-simulator``, waited on until the simulator accepts it), Prometheus and, if asked,
Flux's source-controller and kustomize-controller (with their CRDs) and canary's
controller. Each step waits until its component is ready; a failure stops everything
started so far.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from canary.devenv import components, kubeconfig, process, readiness
from canary.devenv import pki as pki_module
from canary.devenv.environment import (
    AUDIT_LOG,
    LOGS_DIR,
    EnvironmentSettings,
    LocalEnvironment,
)
from canary.devenv.errors import ComponentFailed
from canary.devenv.install import Binaries, locate
from canary.devenv.traffic.gatewaystatus import CONTROLLER_NAME, GATEWAY_CLASS
from canary.kube import KubeClient, KubeError
from canary.kube import resources as r
from canary.models.crds import definitions as crd_definitions

FIELD_MANAGER = "canary-devenv"
#: Where Flux's controllers run, as in a cluster bootstrapped by Flux.
FLUX_NAMESPACE = "flux-system"
NODE_NAME = "kwok-node-0"


async def start(run_dir: Path | None = None, settings: EnvironmentSettings | None = None,
                binaries: Binaries | None = None,
                progress: Callable[[str], None] | None = None) -> LocalEnvironment:
    """Start every component and return once all are ready (see
    :meth:`LocalEnvironment.start`)."""
    settings = settings or EnvironmentSettings()
    binaries = binaries or locate()
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="canary-devenv-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    starter = Starter(run_dir, settings, binaries, progress or (lambda _: None))
    try:
        return await starter.run()
    except BaseException:
        started = starter.env.processes if starter.env else starter.started
        # Stopping waits for each process: off the event loop.
        await asyncio.to_thread(_stop_all, started)
        raise


def _stop_all(records: list[process.ProcessRecord]) -> None:
    """Stop ``records``, last started first."""
    for record in reversed(records):
        process.stop(record, timeout=5)


class Starter:
    """The start-up sequence; remembers what it started so a failure can stop it."""

    def __init__(self, run_dir: Path, settings: EnvironmentSettings, binaries: Binaries,
                 progress: Callable[[str], None]) -> None:
        self.run_dir, self.settings, self.binaries = run_dir, settings, binaries
        self.progress = progress
        self.started: list[process.ProcessRecord] = []
        self.env: LocalEnvironment | None = None
        self.logs = run_dir / LOGS_DIR
        #: Chosen with the state file, as the state file records Prometheus's URL.
        self.prometheus_port = 0

    def launch(self, name: str, argv: list[str], env: Mapping[str, str] | None = None
               ) -> process.ProcessRecord:
        record = process.start(name, argv, self.logs / f"{name}.log", env=env, cwd=self.run_dir)
        self.started.append(record)
        if self.env is not None:
            self.env.processes.append(record)
            self.env.save()
        return record

    async def wait(self, record: process.ProcessRecord, what: str,
                   check: readiness.Check) -> None:
        """Poll ``check`` until it is true; fail fast if the process dies meanwhile."""
        started = time.monotonic()
        deadline = started + self.settings.startup_timeout_seconds
        last_error = ""
        while True:
            if not record.alive():
                raise ComponentFailed(record.name, f"exited while waiting for {what}",
                                      record.log, record.log_tail())
            try:
                if await check():
                    self.progress(f"{record.name} ready ({time.monotonic() - started:.1f}s)")
                    return
            except (httpx.HTTPError, KubeError, OSError) as exc:
                last_error = f"{exc.__class__.__name__}: {exc}"
            if time.monotonic() > deadline:
                reason = f"not ready after {self.settings.startup_timeout_seconds:.0f}s: {what}"
                if last_error:
                    reason += f" (last error: {last_error})"
                raise ComponentFailed(record.name, reason, record.log, record.log_tail())
            await asyncio.sleep(0.1)

    async def run(self) -> LocalEnvironment:
        pki = pki_module.create(self.run_dir / "pki")
        etcd_port = await self._start_etcd()
        apiserver, api_server = await self._start_apiserver(etcd_port, pki)
        env = self._record_environment(api_server, pki)
        await self._start_cluster(apiserver, env.kubeconfig, pki)
        # The traffic simulator starts first, so that Prometheus scrapes it from its first
        # configuration: a target added by reload is picked up only after Prometheus's
        # service discovery throttle (about five seconds).
        if self.settings.simulator:
            await self._start_simulator(env)
        await self._start_prometheus(env)
        if self.settings.flux:
            await self.start_flux(env)
        if self.settings.controller:
            await self._start_controller(env)
        env.save()
        return env

    async def _start_etcd(self) -> int:
        """Start etcd; returns its client port."""
        client_port, peer_port = process.free_port(), process.free_port()
        etcd = self.launch("etcd", components.etcd(
            self.binaries["etcd"], self.run_dir / "etcd", client_port, peer_port))
        await self.wait(etcd, "/health",
                        readiness.etcd_healthy(components.url("http", client_port)))
        return client_port

    async def _start_apiserver(self, etcd_port: int, pki: pki_module.Pki
                               ) -> tuple[process.ProcessRecord, str]:
        """Start the API server; returns its process and its URL."""
        audit_policy = self.run_dir / "audit-policy.yaml"
        audit_policy.write_text(components.AUDIT_POLICY)
        port = process.free_port()
        url = components.url("https", port)
        apiserver = self.launch("kube-apiserver", components.apiserver(
            self.binaries["kube-apiserver"], etcd_port, port, pki, self.run_dir / "pki",
            audit_policy, self.run_dir / LOGS_DIR / AUDIT_LOG))
        await self.wait(apiserver, f"{url}/readyz", readiness.https_ok(f"{url}/readyz",
                                                                       pki.ca_cert))
        return apiserver, url

    def _record_environment(self, api_server: str, pki: pki_module.Pki) -> LocalEnvironment:
        """Write the kubeconfig and the state file: from here on, ``canary devenv down``
        can find and stop every process."""
        path = self.run_dir / "kubeconfig"
        kubeconfig.write(path, api_server, pki)
        self.prometheus_port = process.free_port()
        self.env = LocalEnvironment(
            run_dir=self.run_dir, api_server=api_server, kubeconfig=path, ca_file=pki.ca_cert,
            prometheus_url=components.url("http", self.prometheus_port),
            simulator_url=None, processes=list(self.started),
            scrape_interval_seconds=self.settings.scrape_interval_seconds,
        )
        self.env.save()
        return self.env

    async def _start_cluster(self, apiserver: process.ProcessRecord, config: Path,
                             pki: pki_module.Pki) -> None:
        """Start the controller manager, the scheduler and kwok; then wait for the Node,
        the default ServiceAccount and every CRD."""
        b, run_dir = self.binaries, self.run_dir
        kcm_port, scheduler_port, kwok_port = (process.free_port() for _ in range(3))
        kcm = self.launch("kube-controller-manager", components.controller_manager(
            b["kube-controller-manager"], config, kcm_port, run_dir / "kcm-certs", pki))
        scheduler = self.launch("kube-scheduler", components.scheduler(
            b["kube-scheduler"], config, scheduler_port, run_dir / "scheduler-certs"))
        kwok = self.launch("kwok", components.kwok(b["kwok"], config, kwok_port),
                           env=dict(os.environ, KWOK_WORKDIR=str(run_dir / "kwok")))
        async with await KubeClient.connect(config) as client:
            await asyncio.gather(
                self.wait(kcm, "/healthz",
                          readiness.https_ok(components.url("https", kcm_port, "/healthz"))),
                self.wait(scheduler, "/healthz",
                          readiness.https_ok(components.url("https", scheduler_port, "/healthz"))),
                self.wait(kwok, "/healthz",
                          readiness.http_ok(components.url("http", kwok_port, "/healthz"))),
            )
            await client.apply(_node_manifest(), field_manager=FIELD_MANAGER)
            await asyncio.gather(
                self.wait(kwok, f"Node {NODE_NAME} Ready",
                          lambda: readiness.node_ready(client, NODE_NAME)),
                self.wait(kcm, "ServiceAccount default/default",
                          lambda: readiness.exists(client, r.SERVICE_ACCOUNTS, "default",
                                                   "default")),
                self._apply_crds(apiserver, client),
            )

    async def _apply_crds(self, apiserver: process.ProcessRecord, client: KubeClient) -> None:
        """Apply canary's own CRDs (generated from its models), the installed ones (Istio,
        Gateway API) and any extra ones; wait until all are Established."""
        await self._apply_crd_documents(apiserver, client, [
            *crd_definitions().values(),
            *_crds_in([*self.binaries.crd_files, *self.settings.extra_crd_files])])

    async def _apply_crd_documents(self, apiserver: process.ProcessRecord, client: KubeClient,
                                   documents: list[dict[str, Any]]) -> None:
        names = []
        for document in documents:
            await client.apply(document, field_manager=FIELD_MANAGER, force=True)
            names.append(document["metadata"]["name"])
        await self.wait(apiserver, f"{len(names)} CRDs Established",
                        readiness.crds_established(client, names))

    async def _start_simulator(self, env: LocalEnvironment) -> None:
        port = process.free_port()
        sim = self.launch("traffic-simulator", components.traffic_simulator(
            env.kubeconfig, port, self.settings.seed, self.run_dir / "traffic.json"))
        env.simulator_url = components.url("http", port)
        await self.wait(sim, "/readyz", readiness.http_ok(f"{env.simulator_url}/readyz"))
        env.scrape_targets["traffic-simulator"] = components.address(port)
        async with await KubeClient.connect(env.kubeconfig) as client:
            await client.apply(_gateway_class_manifest(), field_manager=FIELD_MANAGER)
            await self.wait(sim, f"GatewayClass {GATEWAY_CLASS} Accepted",
                            lambda: readiness.accepted(client, r.GATEWAY_CLASSES, GATEWAY_CLASS))

    async def _start_prometheus(self, env: LocalEnvironment) -> None:
        """Start Prometheus and wait until it has scraped every target once."""
        env.write_prometheus_config()
        prom = self.launch("prometheus", components.prometheus(
            self.binaries["prometheus"], self.run_dir / "prometheus.yml",
            self.run_dir / "prometheus-data", self.prometheus_port))
        await self.wait(prom, "/-/ready", readiness.http_ok(f"{env.prometheus_url}/-/ready"))
        await self.wait(prom, "a first successful scrape of every target",
                        lambda: env.targets_up(set(env.scrape_targets)))

    async def start_flux(self, env: LocalEnvironment) -> None:
        """Start Flux's source-controller and kustomize-controller (namespace
        :data:`FLUX_NAMESPACE`) once their CRDs are Established, and the Git server they
        clone from; ready when both answer ``/readyz`` and the server listens."""
        apiserver = next(p for p in env.processes if p.name == "kube-apiserver")
        async with await KubeClient.connect(env.kubeconfig) as client:
            await client.apply({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": FLUX_NAMESPACE}},
                               field_manager=FIELD_MANAGER)
            await self._apply_crd_documents(apiserver, client,
                                            _crds_in(self.binaries.flux_crd_files))
        flux_env = dict(os.environ, KUBECONFIG=str(env.kubeconfig),
                        RUNTIME_NAMESPACE=FLUX_NAMESPACE)
        metrics, health, storage = (process.free_port() for _ in range(3))
        artifacts = self.run_dir / "flux-artifacts"
        artifacts.mkdir(exist_ok=True)  # source-controller refuses a missing directory
        source = self.launch("source-controller", components.source_controller(
            self.binaries["source-controller"], metrics, health, storage, artifacts),
            env=flux_env)
        kustomize_metrics, kustomize_health = process.free_port(), process.free_port()
        kustomize = self.launch("kustomize-controller", components.kustomize_controller(
            self.binaries["kustomize-controller"], kustomize_metrics, kustomize_health),
            env=flux_env)
        git_port = process.free_port()
        git = self.launch("git-server", components.git_server(self.run_dir / "git", git_port))
        await asyncio.gather(
            self.wait(source, "/readyz",
                      readiness.http_ok(components.url("http", health, "/readyz"))),
            self.wait(kustomize, "/readyz",
                      readiness.http_ok(components.url("http", kustomize_health, "/readyz"))),
            self.wait(git, "serving", readiness.log_contains(Path(git.log), "serving")),
        )
        env.git_url = components.url("http", git_port)
        env.save()

    async def _start_controller(self, env: LocalEnvironment) -> None:
        """Start canary's controller and have Prometheus scrape its metrics."""
        metrics_port, probe_port = process.free_port(), process.free_port()
        controller = self.launch("controller", components.controller(
            env.kubeconfig, env.prometheus_url, metrics_port, probe_port))
        await self.wait(controller, "its watch caches to sync",
                        readiness.log_contains(Path(controller.log), "caches synced"))
        await env.add_scrape_target("canary-controller", components.address(metrics_port))


async def start_flux(env: LocalEnvironment, settings: EnvironmentSettings | None = None,
                     binaries: Binaries | None = None,
                     progress: Callable[[str], None] | None = None) -> None:
    """Start Flux's controllers in a running environment (recorded in its state file, so
    they stop with it); on failure, stop whatever of them was started."""
    starter = Starter(env.run_dir, settings or EnvironmentSettings(), binaries or locate(),
                      progress or (lambda _: None))
    starter.env = env
    try:
        await starter.start_flux(env)
    except BaseException:
        await asyncio.to_thread(_stop_all, starter.started)
        env.processes = [p for p in env.processes if p not in starter.started]
        env.save()
        raise


def _crds_in(paths: list[Path] | tuple[Path, ...]) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in the manifest files ``paths``."""
    return [d for path in paths for d in yaml.safe_load_all(path.read_text())
            if d and d.get("kind") == "CustomResourceDefinition"]


def _gateway_class_manifest() -> dict[str, Any]:
    """The GatewayClass whose Gateways the traffic simulator serves."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": GATEWAY_CLASS},
        "spec": {"controllerName": CONTROLLER_NAME,
                 "description": "Gateways served by the local environment's traffic simulator"},
    }


def _node_manifest() -> dict[str, Any]:
    """The one fake Node, which kwok manages."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {
            "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "type": "kwok"},
            "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {},
    }
