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
#: source-controller and kustomize-controller; v1.10 needs Go 1.27.
FLUX = "v1.9.6"

#: The Kubernetes commands built from ``k8s.io/kubernetes``.
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

#: Files taken from the CRD modules: (module, path inside it).
ISTIO_CRDS = ("istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml")
GATEWAY_API_CRDS = ("sigs.k8s.io/gateway-api", "config/crd/standard")

#: Flux's controllers, each built from its own module (the binary is named after the last
#: path element); their CRDs are every file in the module's ``config/crd/bases``.
FLUX_CONTROLLERS = ("github.com/fluxcd/source-controller",
                    "github.com/fluxcd/kustomize-controller")
FLUX_CRDS_DIR = "config/crd/bases"

#: Versions Flux's go.mod files name that the Go module proxy does not serve (it answers
#: 403 for their source), with the served version built instead: (module, named, built).
#: fluxcd/pkg's artifact/v0.18.0 to v0.18.2 differ only in go.mod and go.sum, and v0.18.3's
#: go.mod only raises versions the controller requires at least as high (docs/local-environment.md).
FLUX_SUBSTITUTES = (("github.com/fluxcd/pkg/artifact", "v0.18.3", "v0.18.0"),)
