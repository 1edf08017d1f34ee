"""A real Kubernetes control plane and Prometheus on loopback, started from the cache.

:meth:`LocalEnvironment.start` brings up, in order: a fresh PKI, etcd, kube-apiserver
(RBAC on), kube-controller-manager, kube-scheduler, kwok with a fake Node, the Istio,
Gateway API and any extra CRDs (waiting until Established), Prometheus, and the traffic
simulator. Every process runs in its own session with its log in the run directory; the
state file records PIDs so that another process (``canary devenv down``) can stop them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from canary.devenv import pki as pki_module
from canary.devenv import process, prometheus
from canary.devenv.errors import ComponentFailed, DevenvError
from canary.devenv.install import Binaries, locate
from canary.kube import KubeClient, KubeError
from canary.kube import resources as r
from canary.models.crds import definitions as crd_definitions

STATE_FILE = "state.json"
FIELD_MANAGER = "canary-devenv"
NODE_NAME = "kwok-node-0"
STAGES_FILE = Path(__file__).parent / "kwok-stages.yaml"


#: What service accounts ask of the API server is recorded (request metadata, never
#: bodies), so tests can prove which permissions a component under its own identity used.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""
#: The run directory's folder of component logs.
LOGS_DIR = "logs"
AUDIT_LOG = "audit.log"


@dataclass(frozen=True)
class EnvironmentSettings:
    """How an environment is started. Times are in seconds."""

    #: How often Prometheus scrapes (and evaluates); short so tests see data quickly.
    scrape_interval_seconds: float = 1.0
    #: Seed of the traffic simulator's random choices.
    seed: int = 1
    #: How long each component may take to become ready.
    startup_timeout_seconds: float = 120.0
    #: CRD manifests applied in addition to canary's, Istio's and Gateway API's.
    extra_crd_files: tuple[Path, ...] = ()
    #: Start the traffic simulator.
    simulator: bool = True
    #: Also run canary's controller (``canary run``) against the environment, with
    #: intervals allowed down to a second.
    controller: bool = False


@dataclass
class ComponentStatus:
    name: str
    pid: int
    alive: bool
    rss_bytes: int
    log: str


def state_home() -> Path:
    """Where ``canary devenv up`` records which environment is the current one."""
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "canary-devenv"


@dataclass
class LocalEnvironment:
    """A running (or stopped) local environment, as recorded in its state file."""

    run_dir: Path
    api_server: str
    kubeconfig: Path
    ca_file: Path
    prometheus_url: str
    simulator_url: str | None
    processes: list[process.ProcessRecord] = field(default_factory=list)
    scrape_targets: dict[str, str] = field(default_factory=dict)
    scrape_interval_seconds: float = 1.0

    # -- persistence --------------------------------------------------------------------

    def save(self) -> None:
        data = {
            "run_dir": str(self.run_dir), "api_server": self.api_server,
            "kubeconfig": str(self.kubeconfig), "ca_file": str(self.ca_file),
            "prometheus_url": self.prometheus_url, "simulator_url": self.simulator_url,
            "processes": [p.to_json() for p in self.processes],
            "scrape_targets": self.scrape_targets,
            "scrape_interval_seconds": self.scrape_interval_seconds,
        }
        tmp = self.run_dir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.run_dir / STATE_FILE)

    @classmethod
    def attach(cls, run_dir: Path) -> LocalEnvironment:
        """The environment whose state file is in ``run_dir``."""
        try:
            data = json.loads((run_dir / STATE_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise DevenvError(f"no environment state in {run_dir}: {exc}") from exc
        return cls(
            run_dir=Path(data["run_dir"]), api_server=data["api_server"],
            kubeconfig=Path(data["kubeconfig"]), ca_file=Path(data["ca_file"]),
            prometheus_url=data["prometheus_url"], simulator_url=data.get("simulator_url"),
            processes=[process.ProcessRecord.from_json(p) for p in data["processes"]],
            scrape_targets=dict(data.get("scrape_targets") or {}),
            scrape_interval_seconds=float(data.get("scrape_interval_seconds", 1.0)),
        )

    # -- life cycle ---------------------------------------------------------------------

    @classmethod
    async def start(cls, run_dir: Path | None = None, settings: EnvironmentSettings | None = None,
                    binaries: Binaries | None = None,
                    progress: Callable[[str], None] | None = None) -> LocalEnvironment:
        """Start every component and return once all are ready.

        On failure everything started so far is stopped, the run directory (with every
        log) is kept, and :class:`ComponentFailed` names the component that failed.
        """
        settings = settings or EnvironmentSettings()
        binaries = binaries or locate()
        run_dir = run_dir or Path(tempfile.mkdtemp(prefix="canary-devenv-"))
        run_dir.mkdir(parents=True, exist_ok=True)
        starter = _Starter(run_dir, settings, binaries, progress or (lambda _: None))
        try:
            return await starter.run()
        except BaseException:
            started = starter.env.processes if starter.env else starter.started

            def stop_started() -> None:
                for record in reversed(started):
                    process.stop(record, timeout=5)

            # Stopping waits for each process: off the event loop.
            await asyncio.to_thread(stop_started)
            raise

    def stop(self, remove: bool = True) -> None:
        """Stop every process (last started first) and, if ``remove``, delete the run dir."""
        for record in reversed(self.processes):
            process.stop(record)
        if remove:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def status(self) -> list[ComponentStatus]:
        return [ComponentStatus(p.name, p.pid, p.alive(), process.rss_bytes(p.pid), p.log)
                for p in self.processes]

    def env_vars(self) -> dict[str, str]:
        """What a user exports to reach this environment."""
        out = {"KUBECONFIG": str(self.kubeconfig), "PROMETHEUS_URL": self.prometheus_url}
        if self.simulator_url:
            out["CANARY_SIMULATOR_URL"] = self.simulator_url
        return out

    @property
    def logs_dir(self) -> Path:
        """Where every component writes its log."""
        return self.run_dir / LOGS_DIR

    @property
    def audit_log(self) -> Path:
        """The API server's audit log: what service accounts asked of it."""
        return self.logs_dir / AUDIT_LOG

    async def client(self) -> KubeClient:
        """An admin client for this environment's API server."""
        return await KubeClient.connect(self.kubeconfig)

    # -- Prometheus targets -------------------------------------------------------------

    async def add_scrape_target(self, job: str, target: str, timeout: float = 30.0) -> None:
        """Scrape ``target`` (host:port) as ``job`` from now on; returns after its first
        successful scrape (a reloaded target takes up to about five seconds to start)."""
        self.scrape_targets[job] = target
        self._write_prometheus_config()
        self.save()
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(f"{self.prometheus_url}/-/reload")
            response.raise_for_status()
        deadline = time.monotonic() + timeout
        while not await self.targets_up({job}):
            if time.monotonic() > deadline:
                raise DevenvError(f"Prometheus did not scrape {job} ({target}) "
                                  f"within {timeout:.0f}s")
            await asyncio.sleep(0.2)

    async def targets_up(self, jobs: set[str]) -> bool:
        """Whether Prometheus has scraped every job in ``jobs`` successfully."""
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"{self.prometheus_url}/api/v1/targets",
                                      params={"state": "active"})
        healthy = {t["labels"].get("job") for t in response.json()["data"]["activeTargets"]
                   if t.get("health") == "up"}
        return jobs <= healthy

    def _write_prometheus_config(self) -> None:
        (self.run_dir / "prometheus.yml").write_text(
            prometheus.config(self.scrape_interval_seconds, self.scrape_targets))

    # -- traffic ------------------------------------------------------------------------

    async def set_traffic(self, host: str, rps: float,
                          mix: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Drive ``host`` (a Service's host name) at ``rps`` requests per second."""
        body: dict[str, Any] = {"rps": rps}
        if mix is not None:
            body["mix"] = dict(mix)
        return await self._simulator("PUT", f"/traffic/{host}", body)

    async def traffic(self) -> dict[str, Any]:
        return await self._simulator("GET", "/traffic")

    async def users(self, host: str) -> dict[str, Any]:
        """Which workloads answered ``host``'s simulated users, and how often users moved
        from one workload to another."""
        return await self._simulator("GET", f"/traffic/{host}/users")

    async def _simulator(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        if not self.simulator_url:
            raise DevenvError("this environment runs no traffic simulator")
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.request(method, self.simulator_url + path, json=body)
        if response.status_code >= 400:
            raise DevenvError(f"traffic simulator: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json()
        return result


class _Starter:
    """The start-up sequence; remembers what it started so a failure can stop it."""

    def __init__(self, run_dir: Path, settings: EnvironmentSettings, binaries: Binaries,
                 progress: Callable[[str], None]) -> None:
        self.run_dir, self.settings, self.binaries = run_dir, settings, binaries
        self.progress = progress
        self.started: list[process.ProcessRecord] = []
        self.env: LocalEnvironment | None = None
        self.logs = run_dir / LOGS_DIR

    def launch(self, name: str, argv: list[str], env: Mapping[str, str] | None = None
               ) -> process.ProcessRecord:
        record = process.start(name, argv, self.logs / f"{name}.log", env=env, cwd=self.run_dir)
        self.started.append(record)
        if self.env is not None:
            self.env.processes.append(record)
            self.env.save()
        return record

    async def wait(self, record: process.ProcessRecord, what: str,
                   check: Callable[[], Awaitable[bool]]) -> None:
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
        b, run_dir = self.binaries, self.run_dir
        pki = pki_module.create(run_dir / "pki")

        # etcd
        etcd_client, etcd_peer = process.free_port(), process.free_port()
        etcd = self.launch("etcd", [
            str(b["etcd"]), "--name", "devenv", "--data-dir", str(run_dir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"devenv=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ])

        async def etcd_healthy() -> bool:
            async with httpx.AsyncClient(timeout=2) as http:
                response = await http.get(f"http://127.0.0.1:{etcd_client}/health")
                healthy = response.status_code == 200 and response.json().get("health") == "true"
                return bool(healthy)

        await self.wait(etcd, "/health", etcd_healthy)

        # kube-apiserver
        audit_policy = run_dir / "audit-policy.yaml"
        audit_policy.write_text(AUDIT_POLICY)
        api_port = process.free_port()
        api_server = f"https://127.0.0.1:{api_port}"
        apiserver = self.launch("kube-apiserver", [
            str(b["kube-apiserver"]), "--etcd-servers", f"http://127.0.0.1:{etcd_client}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(api_port),
            "--tls-cert-file", str(pki.serving_cert),
            "--tls-private-key-file", str(pki.serving_key),
            "--client-ca-file", str(pki.ca_cert),
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", str(pki.service_account_pub),
            "--service-account-signing-key-file", str(pki.service_account_key),
            "--service-cluster-ip-range", pki_module.SERVICE_CLUSTER_IP_RANGE,
            "--authorization-mode", "Node,RBAC", "--endpoint-reconciler-type", "none",
            "--allow-privileged", "--profiling=false", "--cert-dir", str(run_dir / "pki"),
            "--enable-garbage-collector", "--watch-cache",
            "--audit-policy-file", str(audit_policy), "--audit-log-format", "json",
            "--audit-log-path", str(run_dir / LOGS_DIR / AUDIT_LOG), "--audit-log-maxbackup", "0",
        ])
        await self.wait(apiserver, f"{api_server}/readyz", _https_ok(f"{api_server}/readyz",
                                                                     pki.ca_cert))

        kubeconfig = run_dir / "kubeconfig"
        _write_kubeconfig(kubeconfig, api_server, pki)
        prometheus_port = process.free_port()
        self.env = LocalEnvironment(
            run_dir=run_dir, api_server=api_server, kubeconfig=kubeconfig, ca_file=pki.ca_cert,
            prometheus_url=f"http://127.0.0.1:{prometheus_port}", simulator_url=None,
            processes=list(self.started),
            scrape_interval_seconds=self.settings.scrape_interval_seconds,
        )
        self.env.save()

        # controller manager, scheduler, kwok
        kcm_port, scheduler_port, kwok_port = (process.free_port() for _ in range(3))
        kcm = self.launch("kube-controller-manager", [
            str(b["kube-controller-manager"]), "--kubeconfig", str(kubeconfig),
            "--authentication-kubeconfig", str(kubeconfig),
            "--authorization-kubeconfig", str(kubeconfig),
            "--leader-elect=false", "--bind-address", "127.0.0.1",
            "--secure-port", str(kcm_port), "--cert-dir", str(run_dir / "kcm-certs"),
            "--root-ca-file", str(pki.ca_cert),
            "--service-account-private-key-file", str(pki.service_account_key),
            "--use-service-account-credentials=false",
            "--concurrent-deployment-syncs", "10", "--concurrent-replicaset-syncs", "10",
            # Autoscalers act within seconds, so tests see them clamp replica counts.
            "--horizontal-pod-autoscaler-sync-period", "2s",
        ])
        scheduler = self.launch("kube-scheduler", [
            str(b["kube-scheduler"]), "--kubeconfig", str(kubeconfig),
            "--authentication-kubeconfig", str(kubeconfig),
            "--authorization-kubeconfig", str(kubeconfig),
            "--leader-elect=false", "--bind-address", "127.0.0.1",
            "--secure-port", str(scheduler_port), "--cert-dir", str(run_dir / "scheduler-certs"),
        ])
        kwok_env = dict(os.environ, KWOK_WORKDIR=str(run_dir / "kwok"))
        kwok = self.launch("kwok", [
            str(b["kwok"]), "--kubeconfig", str(kubeconfig), "--config", str(STAGES_FILE),
            "--manage-all-nodes=true", "--server-address", f"127.0.0.1:{kwok_port}",
            "--node-lease-duration-seconds", "40", "--cidr", "10.244.0.0/16",
            "--node-ip", "10.240.0.1",
        ], env=kwok_env)

        async with await KubeClient.connect(kubeconfig) as client:
            await asyncio.gather(
                self.wait(kcm, "/healthz", _https_ok(f"https://127.0.0.1:{kcm_port}/healthz")),
                self.wait(scheduler, "/healthz",
                          _https_ok(f"https://127.0.0.1:{scheduler_port}/healthz")),
                self.wait(kwok, "/healthz", _http_ok(f"http://127.0.0.1:{kwok_port}/healthz")),
            )
            await client.apply(_node_manifest(), field_manager=FIELD_MANAGER)
            crd_files = [*self.binaries.crd_files, *self.settings.extra_crd_files]
            canary_crds = list(crd_definitions().values())
            await asyncio.gather(
                self.wait(kwok, f"Node {NODE_NAME} Ready", lambda: _node_ready(client)),
                self.wait(kcm, "ServiceAccount default/default",
                          lambda: _exists(client, r.SERVICE_ACCOUNTS, "default", "default")),
                self._apply_crds(apiserver, client, crd_files, canary_crds),
            )

        # The traffic simulator starts first, so that Prometheus scrapes it from its first
        # configuration: a target added by reload is picked up only after Prometheus's
        # service discovery throttle (about five seconds).
        if self.settings.simulator:
            sim_port = process.free_port()
            sim = self.launch("traffic-simulator", [
                sys.executable, "-m", "canary.devenv.traffic", "--kubeconfig", str(kubeconfig),
                "--listen", f"127.0.0.1:{sim_port}", "--seed", str(self.settings.seed),
                "--state", str(run_dir / "traffic.json"),
            ])
            self.env.simulator_url = f"http://127.0.0.1:{sim_port}"
            await self.wait(sim, "/readyz", _http_ok(f"{self.env.simulator_url}/readyz"))
            self.env.scrape_targets["traffic-simulator"] = f"127.0.0.1:{sim_port}"

        self.env._write_prometheus_config()
        prom = self.launch("prometheus", [
            str(b["prometheus"]), f"--config.file={run_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={run_dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}", "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d", "--log.level=warn",
        ])
        await self.wait(prom, "/-/ready", _http_ok(f"{self.env.prometheus_url}/-/ready"))
        env = self.env
        await self.wait(prom, "a first successful scrape of every target",
                        lambda: env.targets_up(set(env.scrape_targets)))
        if self.settings.controller:
            metrics_port, probe_port = process.free_port(), process.free_port()
            controller = self.launch("controller", [
                sys.executable, "-m", "canary", "run", "--kubeconfig", str(kubeconfig),
                "--metrics-server", env.prometheus_url, "--min-interval", "1s",
                "--metrics-bind-address", f"127.0.0.1:{metrics_port}",
                "--health-probe-bind-address", f"127.0.0.1:{probe_port}",
                "--log-format", "console"])
            await self.wait(controller, "its watch caches to sync",
                            _log_contains(Path(controller.log), "caches synced"))
            await env.add_scrape_target("canary-controller", f"127.0.0.1:{metrics_port}")
        env.save()
        return env

    async def _apply_crds(self, apiserver: process.ProcessRecord, client: KubeClient,
                          files: list[Path], manifests: list[dict[str, Any]]) -> None:
        """Apply canary's own CRDs (generated from its models) and those in ``files``."""
        documents = list(manifests)
        for path in files:
            documents += [d for d in yaml.safe_load_all(path.read_text())
                          if d and d.get("kind") == "CustomResourceDefinition"]
        names = []
        for document in documents:
            await client.apply(document, field_manager=FIELD_MANAGER, force=True)
            names.append(document["metadata"]["name"])

        async def established() -> bool:
            for name in names:
                crd = await client.get(r.CUSTOM_RESOURCE_DEFINITIONS, name)
                conditions = (crd.get("status") or {}).get("conditions") or []
                if not any(c.get("type") == "Established" and c.get("status") == "True"
                           for c in conditions):
                    return False
            return True

        await self.wait(apiserver, f"{len(names)} CRDs Established", established)


def _https_ok(url: str, ca: Path | None = None) -> Callable[[], Awaitable[bool]]:
    """Checks that ``url`` answers 200; TLS verified against ``ca``, or not at all (the
    controller manager and scheduler serve self-signed certificates)."""
    return _http_ok(url, ssl.create_default_context(cafile=str(ca)) if ca else False)


def _log_contains(path: Path, text: str) -> Callable[[], Awaitable[bool]]:
    def read() -> str:
        return path.read_text(errors="replace")

    async def check() -> bool:
        return text in await asyncio.to_thread(read)
    return check


def _http_ok(url: str, verify: ssl.SSLContext | bool = True) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with httpx.AsyncClient(timeout=2, verify=verify) as http:
            return (await http.get(url)).status_code == 200
    return check


async def _exists(client: KubeClient, resource: r.Resource, name: str,
                  namespace: str | None = None) -> bool:
    try:
        await client.get(resource, name, namespace)
    except KubeError:
        return False
    return True


async def _node_ready(client: KubeClient) -> bool:
    node = await client.get(r.NODES, NODE_NAME)
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def _node_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {
            "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "type": "kwok"},
            "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {},
    }


def _write_kubeconfig(path: Path, server: str, pki: pki_module.Pki) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "canary-devenv",
        "clusters": [{"name": "canary-devenv", "cluster": {
            "server": server, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": "canary-devenv-admin", "user": {
            "client-certificate-data": b64(pki.admin_cert),
            "client-key-data": b64(pki.admin_key)}}],
        "contexts": [{"name": "canary-devenv", "context": {
            "cluster": "canary-devenv", "user": "canary-devenv-admin"}}],
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
