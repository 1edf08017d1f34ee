"""A second API server over the environment's etcd, without a watch cache.

The environment's own API server serves watches from its watch cache, which keeps a
window of recent events (at least 75 seconds' worth) whatever etcd compacts: a watch
resumed from an old resourceVersion is replayed from the cache, never answered 410. This
one reads etcd directly, as an API server with ``--watch-cache=false`` does, so a watch
resumed from a resourceVersion etcd has compacted away is answered 410 Gone (the
``Expired`` status, "The resourceVersion for the provided watch is too old") — the case
a controller's reflector must handle by listing again. Two API servers over one etcd are
an ordinary highly available control plane; everything else in the environment keeps
using the first one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from canary.devenv import DevenvError, LocalEnvironment, process, readiness
from canary.devenv.components import url

NAME = "kube-apiserver-uncached"


@dataclass
class UncachedApiServer:
    #: Its process (a new one once restarted).
    record: process.ProcessRecord
    port: int
    #: The client URL of the environment's etcd, which both API servers use.
    etcd_url: str

    def stop(self) -> None:
        process.stop(self.record)


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def uncached_argv(argv: list[str], port: int, audit_log: Path) -> list[str]:
    """The first API server's command line, on ``port``, without a watch cache, with
    few seats, and auditing to ``audit_log``."""
    out = list(argv)
    out[out.index("--secure-port") + 1] = str(port)
    out[out.index("--audit-log-path") + 1] = str(audit_log)
    out[out.index("--watch-cache")] = "--watch-cache=false"
    # A small server: 30 seats in all, so API Priority and Fairness gives a one-share
    # priority level a single seat (fault 6). The administrator, who runs every other
    # fault's controller, is exempt from it.
    return [*out, "--max-requests-inflight=20", "--max-mutating-requests-inflight=10"]


async def start(env: LocalEnvironment, timeout: float = 120.0) -> UncachedApiServer:
    """Start the second API server; return once it answers /readyz."""
    [first] = [p for p in env.processes if p.name == "kube-apiserver"]
    port = process.free_port()
    record = process.start(NAME, uncached_argv(first.argv, port, env.logs_dir / f"{NAME}.audit"),
                           env.logs_dir / f"{NAME}.log", cwd=env.run_dir)
    # Recorded with the environment's processes, so `canary devenv down` stops it too.
    env.processes.append(record)
    env.save()
    ready = readiness.https_ok(url("https", port, "/readyz"), env.ca_file)
    deadline = time.monotonic() + timeout
    while True:
        if not record.alive():
            raise DevenvError(f"{NAME} exited:\n{record.log_tail()}")
        try:
            if await ready():
                return UncachedApiServer(record, port, _flag(first.argv, "--etcd-servers"))
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.stop(record)
            raise DevenvError(f"{NAME} not ready after {timeout:.0f}s:\n{record.log_tail()}")
        await asyncio.sleep(0.2)


def kubeconfig_through(env: LocalEnvironment, port: int, path: Path) -> Path:
    """The environment's kubeconfig, pointed at 127.0.0.1:``port`` (the serving
    certificate names 127.0.0.1, whatever the port)."""
    config = yaml.safe_load(env.kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = url("https", port)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
