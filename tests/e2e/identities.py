"""Kubeconfigs for identities other than the environment's administrator, whose group
(``system:masters``) RBAC never restricts and API Priority and Fairness never queues."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import yaml

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r

FIELD_MANAGER = "canary-tests"


async def service_account_kubeconfig(kube: KubeClient, environment: LocalEnvironment,
                                     path: Path, namespace: str, account: str, *,
                                     server: str | None = None,
                                     expiration_seconds: int = 3600) -> Path:
    """A kubeconfig holding a token of ServiceAccount ``namespace/account`` (TokenRequest
    API), for the environment's API server or ``server``; the token expires after
    ``expiration_seconds`` (a benchmark runs longer than a test)."""
    request = await kube.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": expiration_seconds}})
    await asyncio.to_thread(path.write_text, yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "local", "cluster": {
            "server": server or environment.api_server,
            "certificate-authority-data": base64.b64encode(
                environment.ca_file.read_bytes()).decode()}}],
        "users": [{"name": "sa", "user": {"token": request["status"]["token"]}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": "sa"}}]}))
    await asyncio.to_thread(path.chmod, 0o600)
    return path


@contextlib.asynccontextmanager
async def admin_account(kube: KubeClient, namespace: str, account: str) -> AsyncIterator[str]:
    """A ServiceAccount in ``namespace`` bound to ``cluster-admin`` (its binding named
    after it, removed on leaving); yields its name."""
    await kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": account, "namespace": namespace}},
                     field_manager=FIELD_MANAGER)
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": f"{namespace}-{account}"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": account,
                             "namespace": namespace}]}
    await kube.apply(binding, field_manager=FIELD_MANAGER)
    try:
        yield account
    finally:
        with contextlib.suppress(NotFound):
            await kube.delete(r.CLUSTER_ROLE_BINDINGS, f"{namespace}-{account}")
