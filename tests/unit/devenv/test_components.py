"""How each component of the local environment is started: its command line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from canary.devenv import components
from canary.devenv.pki import Pki

RUN = Path("/tmp/canary-devenv-x1")
BIN = Path("/cache/bin")
PKI = Pki(*(RUN / "pki" / name for name in (
    "ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key",
    "sa.key", "sa.pub")))
ports = st.integers(min_value=1024, max_value=65535)


def _values_of(argv: list[str], flag: str) -> list[str]:
    """Every value given to ``flag``, as ``--flag value`` or ``--flag=value``."""
    spaced = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]
    return spaced + [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"{flag}=")]


def _every_argv(port: int) -> list[list[str]]:
    config = RUN / "kubeconfig"
    return [
        components.etcd(BIN / "etcd", RUN / "etcd", port, port + 1),
        components.apiserver(BIN / "kube-apiserver", port, port + 1, PKI, RUN / "pki",
                             RUN / "audit-policy.yaml", RUN / "logs" / "audit.log"),
        components.controller_manager(BIN / "kcm", config, port, RUN / "kcm-certs", PKI),
        components.scheduler(BIN / "kube-scheduler", config, port, RUN / "scheduler-certs"),
        components.kwok(BIN / "kwok", config, port),
        components.traffic_simulator(config, port, 1, RUN / "traffic.json"),
        components.prometheus(BIN / "prometheus", RUN / "prometheus.yml",
                              RUN / "prometheus-data", port),
        components.controller(config, "http://127.0.0.1:9090", port, port + 1),
        components.source_controller(BIN / "source-controller", port, port + 1, port + 2,
                                     RUN / "flux"),
        components.kustomize_controller(BIN / "kustomize-controller", port, port + 1),
    ]


class TestListening:
    """Every component is reachable on loopback only, never on other interfaces."""

    @given(ports)
    def test_every_address_a_component_listens_on_is_loopback(self, port: int) -> None:
        flags = ["--bind-address", "--advertise-address", "--listen", "--server-address",
                 "--web.listen-address", "--metrics-bind-address",
                 "--health-probe-bind-address", "--listen-client-urls", "--listen-peer-urls",
                 "--metrics-addr", "--health-addr", "--storage-addr", "--storage-adv-addr"]
        for argv in _every_argv(port):
            for flag in flags:
                for value in _values_of(argv, flag):
                    host = value.split("://")[-1].split(":")[0]
                    assert host == "127.0.0.1", (argv[0], flag, value)

    @given(ports)
    def test_the_port_asked_for_is_the_one_served(self, port: int) -> None:
        [prometheus] = _values_of(components.prometheus(
            BIN / "prometheus", RUN / "p.yml", RUN / "data", port), "--web.listen-address")
        assert prometheus == f"127.0.0.1:{port}"
        assert _values_of(components.scheduler(BIN / "s", RUN / "k", port, RUN / "c"),
                          "--secure-port") == [str(port)]
        assert components.url("https", port, "/readyz") == f"https://127.0.0.1:{port}/readyz"


class TestControlPlane:
    """The controller manager and the scheduler run as the admin, without elections."""

    def test_both_use_the_admin_kubeconfig_for_every_purpose(self) -> None:
        config = RUN / "kubeconfig"
        for argv in (components.controller_manager(BIN / "kcm", config, 1, RUN / "c", PKI),
                     components.scheduler(BIN / "sched", config, 1, RUN / "c")):
            for flag in ("--kubeconfig", "--authentication-kubeconfig",
                         "--authorization-kubeconfig"):
                assert _values_of(argv, flag) == [str(config)]
            assert "--leader-elect=false" in argv

    def test_the_controller_manager_signs_tokens_with_the_environments_key(self) -> None:
        argv = components.controller_manager(BIN / "kcm", RUN / "k", 1, RUN / "c", PKI)
        assert _values_of(argv, "--service-account-private-key-file") == [
            str(PKI.service_account_key)]
        assert _values_of(argv, "--root-ca-file") == [str(PKI.ca_cert)]

    def test_the_api_server_audits_service_accounts_into_the_given_log(self) -> None:
        log = RUN / "logs" / "audit.log"
        argv = components.apiserver(BIN / "api", 2379, 6443, PKI, RUN / "pki",
                                    RUN / "audit-policy.yaml", log)
        assert _values_of(argv, "--audit-log-path") == [str(log)]
        assert _values_of(argv, "--authorization-mode") == ["Node,RBAC"]
        assert "system:serviceaccounts" in components.AUDIT_POLICY
