"""Flagger itself, for the benchmarks that run it beside canary on the local environment.

Flagger is built once from its Go module (``go install``) into the benchmarks' cache; its
CRDs and its ClusterRole come from the same module's source, so the version compared is
the one pinned here, whatever is installed elsewhere.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmarks.running import wait_http_ok
from canary.devenv import LocalEnvironment, process
from canary.kube import resources as r

FLAGGER_MODULE = "github.com/fluxcd/flagger"
FLAGGER_VERSION = "v1.36.1"
FLAGGER_CANARIES = r.Resource("flagger.app", "v1beta1", "canaries", "Canary")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "canary-benchmarks"


def to_flagger(manifest: dict[str, Any]) -> dict[str, Any]:
    """canary's Canary in Flagger's API: the same fields under ``flagger.app/v1beta1``.

    The reverse of ``canary convert``, for what the benchmarks use: a weighted canary with
    built-in metrics. A judge has no counterpart in Flagger and is refused.
    """
    if "judge" in manifest["spec"].get("analysis", {}):
        raise ValueError("Flagger has no statistical judge")
    converted = copy.deepcopy(manifest)
    converted["apiVersion"] = f"{FLAGGER_CANARIES.group}/{FLAGGER_CANARIES.version}"
    return converted


def flagger_module_dir() -> Path:
    """Flagger's module source (for its CRDs and RBAC), from the Go module cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["go", "mod", "download", "-json", f"{FLAGGER_MODULE}@{FLAGGER_VERSION}"],
                         capture_output=True, text=True, check=True, cwd=CACHE)
    return Path(json.loads(out.stdout)["Dir"])


def flagger_crds() -> Path:
    """The manifest of Flagger's CRDs (canaries, metric templates, alert providers)."""
    return flagger_module_dir() / "artifacts" / "flagger" / "crd.yaml"


def flagger_cluster_role(name: str) -> dict[str, Any]:
    """Flagger's own ClusterRole (from its kustomize base), renamed: what Flagger runs
    with when it is installed, so that it runs under no more and no less here."""
    path = flagger_module_dir() / "kustomize" / "base" / "flagger" / "rbac.yaml"
    for document in yaml.safe_load_all(path.read_text()):
        if document and document.get("kind") == "ClusterRole":
            role: dict[str, Any] = copy.deepcopy(document)
            role["metadata"] = {"name": name}
            return role
    raise RuntimeError(f"no ClusterRole in {path}")


def flagger_binary(given: Path | None) -> Path:
    """Flagger, built once into the cache with ``go install`` from its module."""
    binary = given or CACHE / f"flagger-{FLAGGER_VERSION}" / "bin" / "flagger"
    if not binary.exists():
        if given:
            raise SystemExit(f"{given}: no such file")
        print(f"building Flagger {FLAGGER_VERSION} into {binary.parent} (a few minutes)",
              flush=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GOBIN=str(binary.parent), CGO_ENABLED="0")
        subprocess.run(["go", "install", f"{FLAGGER_MODULE}/cmd/flagger@{FLAGGER_VERSION}"],
                       env=env, check=True, cwd=CACHE)
    version = subprocess.run([str(binary), "-version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    if FLAGGER_VERSION.lstrip("v") not in version:
        raise SystemExit(f"{binary} says {version!r}, expected {FLAGGER_VERSION}")
    return binary


async def start_flagger(env: LocalEnvironment, binary: Path, *, kubeconfig: Path | None = None,
                        extra_args: Sequence[str] = (), timeout: float = 60
                        ) -> process.ProcessRecord:
    """Flagger against the environment's API server (as ``kubeconfig``'s identity, by
    default the administrator) and Prometheus; returns once /healthz answers. It is
    recorded among the environment's processes, so it is stopped with the environment."""
    port = process.free_port()
    record = process.start("flagger", [
        str(binary), "-kubeconfig", str(kubeconfig or env.kubeconfig),
        "-mesh-provider", "istio", "-metrics-server", env.prometheus_url,
        "-log-level", "info", "-port", str(port), *extra_args,
    ], env.run_dir / "logs" / "flagger.log", cwd=env.run_dir)
    env.processes.append(record)
    env.save()
    await wait_http_ok(f"http://127.0.0.1:{port}/healthz", record, timeout)
    return record
