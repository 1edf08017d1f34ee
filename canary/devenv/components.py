"""The command line of each component of the local environment: which flags it runs with.

Pure functions of paths and ports, kept apart from the start-up sequence so that one
place says how every component is configured.
"""

from __future__ import annotations

import sys
from pathlib import Path

from canary.devenv import pki as pki_module

LOOPBACK = "127.0.0.1"
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


def address(port: int) -> str:
    """``host:port`` on loopback: every component listens there only."""
    return f"{LOOPBACK}:{port}"


def url(scheme: str, port: int, path: str = "") -> str:
    return f"{scheme}://{address(port)}{path}"


def etcd(binary: Path, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    """A single-member etcd on loopback; no fsync, as its data is thrown away."""
    client, peer = url("http", client_port), url("http", peer_port)
    return [
        str(binary), "--name", "devenv", "--data-dir", str(data_dir),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"devenv={peer}",
        "--unsafe-no-fsync", "--log-level", "warn",
    ]


def apiserver(binary: Path, etcd_port: int, port: int, pki: pki_module.Pki, cert_dir: Path,
              audit_policy: Path, audit_log: Path) -> list[str]:
    """The API server: TLS from ``pki``, RBAC on, service-account requests audited to one
    file that is never rotated (``--audit-log-maxsize 0``; the default rotates at 100 MB),
    so offsets into it stay valid for a whole run."""
    return [
        str(binary), "--etcd-servers", url("http", etcd_port),
        "--bind-address", LOOPBACK, "--advertise-address", LOOPBACK,
        "--secure-port", str(port),
        "--tls-cert-file", str(pki.serving_cert),
        "--tls-private-key-file", str(pki.serving_key),
        "--client-ca-file", str(pki.ca_cert),
        "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file", str(pki.service_account_pub),
        "--service-account-signing-key-file", str(pki.service_account_key),
        "--service-cluster-ip-range", pki_module.SERVICE_CLUSTER_IP_RANGE,
        "--authorization-mode", "Node,RBAC", "--endpoint-reconciler-type", "none",
        "--allow-privileged", "--profiling=false", "--cert-dir", str(cert_dir),
        "--enable-garbage-collector", "--watch-cache",
        "--audit-policy-file", str(audit_policy), "--audit-log-format", "json",
        "--audit-log-path", str(audit_log), "--audit-log-maxsize", "0",
    ]


def _control_plane(binary: Path, kubeconfig: Path, port: int, cert_dir: Path) -> list[str]:
    """What the controller manager and the scheduler share: the admin kubeconfig for
    every purpose, no leader election, health served on loopback ``port``."""
    return [
        str(binary), "--kubeconfig", str(kubeconfig),
        "--authentication-kubeconfig", str(kubeconfig),
        "--authorization-kubeconfig", str(kubeconfig),
        "--leader-elect=false", "--bind-address", LOOPBACK,
        "--secure-port", str(port), "--cert-dir", str(cert_dir),
    ]


def controller_manager(binary: Path, kubeconfig: Path, port: int, cert_dir: Path,
                       pki: pki_module.Pki) -> list[str]:
    """The controller manager; it signs service-account tokens with ``pki``'s key."""
    return [
        *_control_plane(binary, kubeconfig, port, cert_dir),
        "--root-ca-file", str(pki.ca_cert),
        "--service-account-private-key-file", str(pki.service_account_key),
        "--use-service-account-credentials=false",
        "--concurrent-deployment-syncs", "10", "--concurrent-replicaset-syncs", "10",
        # Each controller's client is held to --kube-api-qps (20 by default): the
        # replica-set controller alone needs some three requests a pod, so thousands of
        # pods would take a quarter of an hour to appear. The bound here is the machine.
        "--kube-api-qps", "200", "--kube-api-burst", "400",
        # Autoscalers act within seconds, so tests see them clamp replica counts.
        "--horizontal-pod-autoscaler-sync-period", "2s",
    ]


def scheduler(binary: Path, kubeconfig: Path, port: int, cert_dir: Path) -> list[str]:
    return _control_plane(binary, kubeconfig, port, cert_dir)


def kwok(binary: Path, kubeconfig: Path, port: int) -> list[str]:
    """kwok, which plays every node's kubelet by the stages in :data:`STAGES_FILE`."""
    return [
        str(binary), "--kubeconfig", str(kubeconfig), "--config", str(STAGES_FILE),
        "--manage-all-nodes=true", "--server-address", address(port),
        "--node-lease-duration-seconds", "40", "--cidr", "10.244.0.0/16",
        "--node-ip", "10.240.0.1",
    ]


def traffic_simulator(kubeconfig: Path, port: int, seed: int, state: Path) -> list[str]:
    return [
        sys.executable, "-m", "canary.devenv.traffic", "--kubeconfig", str(kubeconfig),
        "--listen", address(port), "--seed", str(seed), "--state", str(state),
    ]


def prometheus(binary: Path, config: Path, data_dir: Path, port: int) -> list[str]:
    """Prometheus with its lifecycle API on, so that a new scrape target is a reload."""
    return [
        str(binary), f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={address(port)}", "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=1d", "--log.level=warn",
    ]


def controller(kubeconfig: Path, prometheus_url: str, metrics_port: int,
               probe_port: int) -> list[str]:
    """canary's own controller, with intervals allowed down to a second."""
    return [
        sys.executable, "-m", "canary", "run", "--kubeconfig", str(kubeconfig),
        "--metrics-server", prometheus_url, "--min-interval", "1s",
        "--metrics-bind-address", address(metrics_port),
        "--health-probe-bind-address", address(probe_port),
        "--log-format", "console",
    ]


def _flux_controller(binary: Path, metrics_port: int, health_port: int) -> list[str]:
    """What Flux's controllers share: every namespace watched, no leader election, metrics
    and health (``/healthz``, ``/readyz``) on loopback. They find the API server through
    ``$KUBECONFIG`` (controller-runtime's own lookup)."""
    return [
        str(binary), "--watch-all-namespaces=true", "--enable-leader-election=false",
        "--metrics-addr", address(metrics_port), "--health-addr", address(health_port),
        "--log-encoding", "console",
    ]


def source_controller(binary: Path, metrics_port: int, health_port: int, storage_port: int,
                      storage_dir: Path) -> list[str]:
    """Flux's source-controller. Its artifact server listens on loopback and advertises that
    address, which is where kustomize-controller downloads the artifacts from."""
    return [
        *_flux_controller(binary, metrics_port, health_port),
        "--storage-path", str(storage_dir), "--storage-addr", address(storage_port),
        "--storage-adv-addr", address(storage_port),
    ]


#: The one branch every repository of the Git server has, and the one Flux's
#: GitRepository follows.
GIT_BRANCH = "main"


def git_server(root: Path, port: int) -> list[str]:
    """The Git server Flux clones from (:mod:`canary.devenv.gitserver`), serving the bare
    repositories under ``root/repos``."""
    return [sys.executable, "-m", "canary.devenv.gitserver", "--root", str(root),
            "--port", str(port)]


def kustomize_controller(binary: Path, metrics_port: int, health_port: int) -> list[str]:
    """Flux's kustomize-controller; it applies as the admin (no impersonation). A commit
    pushed while it waits for a rollout (``wait: true``) cancels that wait, so a fix or a
    revert is applied at once rather than after the Kustomization's timeout."""
    return [*_flux_controller(binary, metrics_port, health_port), "--no-remote-bases=true",
            "--feature-gates=CancelHealthCheckOnNewRevision=true"]
