"""`canary devenv status` says where the logs are, with where everything else is."""

from __future__ import annotations

from pathlib import Path

from canary.devenv.cli import status_report
from canary.devenv.environment import ComponentStatus, LocalEnvironment

RUN = Path("/tmp/canary-devenv-x1")


def environment() -> LocalEnvironment:
    return LocalEnvironment(run_dir=RUN, api_server="https://127.0.0.1:6443",
                            kubeconfig=RUN / "kubeconfig", ca_file=RUN / "pki" / "ca.crt",
                            prometheus_url="http://127.0.0.1:9090", simulator_url=None)


def test_the_logs_directory_is_shown_before_the_components() -> None:
    report = status_report(environment(), [
        ComponentStatus("etcd", 11, True, 50 * 2**20, str(RUN / "logs" / "etcd.log")),
        ComponentStatus("kube-apiserver", 12, False, 0, str(RUN / "logs" / "apiserver.log"))])
    lines = report.splitlines()
    assert lines[:2] == [f"run directory: {RUN}", f"logs: {RUN / 'logs'}"]
    assert f"KUBECONFIG={RUN / 'kubeconfig'}" in lines
    [etcd] = [line for line in lines if line.startswith("etcd ")]
    [apiserver] = [line for line in lines if line.startswith("kube-apiserver")]
    assert etcd.split() == ["etcd", "11", "running", "50Mi"]
    assert apiserver.split() == ["kube-apiserver", "12", "stopped", "0Mi"]
    assert lines[-1].split() == ["total", "50Mi"]


def test_the_logs_directory_holds_the_audit_log() -> None:
    env = environment()
    assert env.audit_log.parent == env.logs_dir == RUN / "logs"
