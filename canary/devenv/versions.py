"""The pinned versions of everything the local environment is built from.

Changing a pin: edit it here, then run ``canary devenv pin`` to regenerate the helper Go
modules' go.mod and go.sum under ``canary/devenv/gomod/`` and commit them.
"""

from __future__ import annotations

KUBERNETES = "v1.36.3"
ETCD = "v3.6.16"
KWOK = "v0.8.0"
ISTIO_API = "v1.31.1"
GATEWAY_API = "v1.6.3"  # v1.7 needs Go 1.27
HELM = "v3.22.0"

#: The Kubernetes commands built from ``k8s.io/kubernetes``.
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

#: Files taken from the CRD modules: (module, path inside it).
ISTIO_CRDS = ("istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml")
GATEWAY_API_CRDS = ("sigs.k8s.io/gateway-api", "config/crd/standard")
