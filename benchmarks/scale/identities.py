"""Each controller runs under a ServiceAccount of its own, bound to the rules it is
installed with: canary to its chart's ClusterRole rules, Flagger to its own ClusterRole.
The API server audits ServiceAccounts, so each controller's requests are counted apart
from the benchmark's own (which it sends as the administrator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmarks.flagger import flagger_cluster_role
from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from tests.e2e.identities import service_account_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "canary" / "templates" / "_rules.tpl"
NAMESPACE = "scale-bench"
FIELD_MANAGER = "scale-benchmark"
#: A controller's phase at N = 3,000 with the full background outlasts an hour.
TOKEN_SECONDS = 6 * 3600


def chart_rules() -> list[dict[str, Any]]:
    """The rules of the chart's ClusterRole (the ``canary.rules`` template, plain YAML)."""
    text = RULES.read_text()
    start = text.index('{{- define "canary.rules" -}}') + len('{{- define "canary.rules" -}}')
    body = text[start:text.index("{{- end -}}", start)]
    if "{{" in body:
        raise RuntimeError(f"{RULES}: the rules are templated now; render them with helm")
    rules: list[dict[str, Any]] = yaml.safe_load(body)
    return rules


def user(account: str) -> str:
    """The user name the API server (and its audit log) gives the ServiceAccount."""
    return f"system:serviceaccount:{NAMESPACE}:{account}"


async def identity(kube: KubeClient, env: LocalEnvironment, controller: str) -> Path:
    """A ServiceAccount for ``controller`` bound to its ClusterRole; its kubeconfig."""
    await kube.apply({"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": NAMESPACE}}, field_manager=FIELD_MANAGER)
    await kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": controller, "namespace": NAMESPACE}},
                     field_manager=FIELD_MANAGER)
    role_name = f"{NAMESPACE}-{controller}"
    if controller == "flagger":
        role = flagger_cluster_role(role_name)
    else:
        role = {"metadata": {"name": role_name}, "rules": chart_rules()}
    role.update(apiVersion="rbac.authorization.k8s.io/v1", kind="ClusterRole")
    await kube.apply(role, field_manager=FIELD_MANAGER)
    await kube.apply({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": controller, "namespace": NAMESPACE}],
    }, field_manager=FIELD_MANAGER)
    return await service_account_kubeconfig(kube, env, env.run_dir / f"{controller}.kubeconfig",
                                            NAMESPACE, controller,
                                            expiration_seconds=TOKEN_SECONDS)
