"""How ``canary demo`` releases: applied directly, or (``--gitops``) committed to the local
environment's Git server and applied by Flux, as the gitops-istio workflow does.

Either way the demo's story is the same; with Git, each release is a commit and the
narration adds what Flux says of it (``flux get kustomizations``' READY and MESSAGE).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import yaml

from canary.devenv import LocalEnvironment
from canary.devenv.errors import DevenvError
from canary.devenv.flux import KUSTOMIZATIONS, flux_objects
from canary.devenv.startup import FLUX_NAMESPACE
from canary.kube import KubeClient

#: The repository, and the Flux objects that apply it.
REPOSITORY = "demo"
#: How often Flux looks at the repository and re-applies it: short, for a demo.
FLUX_INTERVAL = "5s"
#: Seconds Flux may take to report on a release once canary has decided it.
FLUX_TIMEOUT = 120.0


class Publisher(Protocol):
    """Puts a version of the application where the cluster takes it from."""

    #: The target's replicas as published: none under GitOps (docs/gitops.md: a count in
    #: Git would be set back at every reconcile), so canary sizes the target.
    replicas: int | None

    async def publish(self, documents: list[dict[str, Any]], message: str) -> str:
        """Publish ``documents``; a line saying how."""

    async def reported(self, promoted: bool) -> tuple[bool, str]:
        """What the GitOps controller says of the last release once canary has promoted it
        (``promoted``) or rolled it back: whether that is as expected, and its words."""


class Applier:
    """Releases with a server-side apply, as ``kubectl apply --server-side`` would."""

    replicas: int | None = 2

    def __init__(self, kube: KubeClient, field_manager: str) -> None:
        self.kube, self.field_manager = kube, field_manager

    async def publish(self, documents: list[dict[str, Any]], message: str) -> str:
        for document in documents:
            await self.kube.apply(document, field_manager=self.field_manager)
        return f"applied: {message}"

    async def reported(self, promoted: bool) -> tuple[bool, str]:
        return True, ""


class GitOps:
    """Releases with commits to the local Git server, applied by Flux's kustomize-controller
    (``prune: true``, ``wait: true``): Flux reports the Canary's outcome."""

    replicas: int | None = None

    def __init__(self, kube: KubeClient, env: LocalEnvironment) -> None:
        if env.git_url is None:
            raise DevenvError("the environment runs no Git server: start it with Flux")
        # The Git client (dulwich) is a development dependency: imported here, so that the
        # image's `canary`, which has no dev extra, starts without it.
        from canary.devenv.gitserver import create_repository

        self.kube = kube
        self.repository = create_repository(env.run_dir / "git", env.git_url, REPOSITORY)
        self.last_commit = ""
        self._flux_applied = False

    async def publish(self, documents: list[dict[str, Any]], message: str) -> str:
        files = {f"apps/{_file_name(d)}.yaml": yaml.safe_dump(d, sort_keys=False)
                 for d in documents}
        self.last_commit = await asyncio.to_thread(self.repository.commit, files, message)
        if not self._flux_applied:
            for resource, document in flux_objects(REPOSITORY, FLUX_NAMESPACE,
                                                   self.repository.url, "./apps",
                                                   FLUX_INTERVAL):
                await self.kube.apply(document, field_manager="canary-demo", resource=resource)
            self._flux_applied = True
        return f"commit {self.last_commit[:7]} pushed to {self.repository.url}: {message}"

    async def reported(self, promoted: bool) -> tuple[bool, str]:
        """Wait until Flux has applied the last commit and is Ready (after a promotion), or
        has failed on it (after a rollback)."""
        deadline = time.monotonic() + FLUX_TIMEOUT
        while time.monotonic() < deadline:
            status = (await self.kube.get(KUSTOMIZATIONS, REPOSITORY, FLUX_NAMESPACE)
                      ).get("status") or {}
            ready: dict[str, Any] = next((c for c in status.get("conditions") or []
                                          if c.get("type") == "Ready"), {})
            attempted = str(status.get("lastAttemptedRevision") or "")
            if attempted.endswith(self.last_commit) and ready.get("status") in ("True", "False"):
                said = (f"Flux: Kustomization {REPOSITORY} Ready={ready['status']} at "
                        f"{attempted}: {ready.get('message', '')}")
                if (ready["status"] == "True") == promoted:
                    return True, said
            await asyncio.sleep(1.0)
        return False, f"Flux said nothing of commit {self.last_commit[:7]} in {FLUX_TIMEOUT:.0f}s"


def _file_name(document: dict[str, Any]) -> str:
    return f"{document['kind'].lower()}-{document['metadata']['name']}"
