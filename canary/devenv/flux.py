"""Flux's objects for a repository on the local Git server: a GitRepository following its
branch, and a Kustomization applying one of its directories (``prune: true``,
``wait: true``), as the demo and the GitOps tests declare them."""

from __future__ import annotations

from typing import Any

from canary.devenv.components import GIT_BRANCH
from canary.kube import resources as r

GIT_REPOSITORIES = r.Resource("source.toolkit.fluxcd.io", "v1", "gitrepositories",
                              "GitRepository")
KUSTOMIZATIONS = r.Resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations",
                            "Kustomization")


def flux_objects(name: str, namespace: str, url: str, path: str, interval: str,
                 timeout: str = "2m") -> list[tuple[r.Resource, dict[str, Any]]]:
    """The GitRepository ``name`` of ``url`` and the Kustomization ``name`` applying its
    ``path`` every ``interval`` (also its retry interval), each with its resource."""
    meta = {"name": name, "namespace": namespace}
    return [
        (GIT_REPOSITORIES, {
            "apiVersion": GIT_REPOSITORIES.api_version, "kind": "GitRepository",
            "metadata": meta, "spec": {"interval": interval, "url": url,
                                       "ref": {"branch": GIT_BRANCH}}}),
        (KUSTOMIZATIONS, {
            "apiVersion": KUSTOMIZATIONS.api_version, "kind": "Kustomization",
            "metadata": meta, "spec": {
                "interval": interval, "retryInterval": interval, "path": path,
                "prune": True, "wait": True, "timeout": timeout,
                "sourceRef": {"kind": "GitRepository", "name": name}}}),
    ]
