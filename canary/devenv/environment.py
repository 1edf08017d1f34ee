"""A real Kubernetes control plane and Prometheus on loopback, started from the cache.

:meth:`LocalEnvironment.start` brings every component up (the sequence is in
:mod:`canary.devenv.startup`). Every process runs in its own session with its log in the
run directory; the state file records PIDs so that another process (``canary devenv
down``) can stop them, and :meth:`LocalEnvironment.attach` finds the environment again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from canary.devenv import process, prometheus
from canary.devenv.errors import DevenvError
from canary.devenv.install import Binaries
from canary.devenv.traffic.gatewayapi import address_of
from canary.devenv.traffic.mix import with_host_header
from canary.kube import KubeClient

STATE_FILE = "state.json"
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
    #: Also run Flux's source-controller and kustomize-controller (GitOps), in namespace
    #: ``flux-system``, and a Git server for them to clone from.
    flux: bool = False


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
    #: The Git server Flux clones from (``http://127.0.0.1:PORT``; a repository NAME is
    #: at ``/NAME.git``), when Flux runs.
    git_url: str | None = None

    # -- persistence --------------------------------------------------------------------

    def save(self) -> None:
        data = {
            "run_dir": str(self.run_dir), "api_server": self.api_server,
            "kubeconfig": str(self.kubeconfig), "ca_file": str(self.ca_file),
            "prometheus_url": self.prometheus_url, "simulator_url": self.simulator_url,
            "processes": [p.to_json() for p in self.processes],
            "scrape_targets": self.scrape_targets,
            "scrape_interval_seconds": self.scrape_interval_seconds,
            "git_url": self.git_url,
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
            git_url=data.get("git_url"),
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
        # The start-up sequence builds a LocalEnvironment, so it is imported here.
        from canary.devenv import startup

        return await startup.start(run_dir, settings, binaries, progress)

    async def start_flux(self, binaries: Binaries | None = None,
                         progress: Callable[[str], None] | None = None) -> None:
        """Start Flux's controllers in this (running) environment; they stop with it."""
        from canary.devenv import startup

        await startup.start_flux(self, binaries=binaries, progress=progress)

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
        if self.git_url:
            out["CANARY_GIT_URL"] = self.git_url
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
        self.write_prometheus_config()
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
        """Whether Prometheus has scraped every job in ``jobs`` successfully (its answer
        is no JSON until it is ready: a ValueError)."""
        return jobs <= await self.healthy_jobs()

    async def healthy_jobs(self) -> set[str]:
        """The jobs whose last scrape succeeded."""
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"{self.prometheus_url}/api/v1/targets",
                                      params={"state": "active"})
        return {str(t["labels"].get("job")) for t in response.json()["data"]["activeTargets"]
                if t.get("health") == "up"}

    def write_prometheus_config(self) -> None:
        """Write ``prometheus.yml`` for the current scrape targets."""
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

    async def set_gateway_traffic(self, gateway: str, namespace: str, hostname: str,
                                  rps: float, mix: Mapping[str, Any] | None = None
                                  ) -> dict[str, Any]:
        """Drive a Gateway API Gateway served by the simulator at ``rps``, every request
        with ``Host: hostname`` (set in each profile of ``mix``)."""
        return await self.set_traffic(address_of(namespace, gateway), rps,
                                      with_host_header(mix, hostname))

    async def traffic(self) -> dict[str, Any]:
        return await self._simulator("GET", "/traffic")

    async def stop_traffic(self, namespace: str) -> list[str]:
        """Stop driving every host of ``namespace`` (Service FQDNs ``name.namespace.svc...``):
        traffic left to a deleted namespace would keep loading the simulator."""
        hosts = [host for host in await self.traffic() if host.split(".")[1:2] == [namespace]]
        for host in hosts:
            await self._simulator("DELETE", f"/traffic/{host}")
        return hosts

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
