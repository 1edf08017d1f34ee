"""`canary devenv up / status / traffic / down` work as the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from canary.devenv import LocalEnvironment


def canary(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canary", *args], env=env, text=True,
                          capture_output=True, timeout=300, check=False)


def test_up_status_traffic_down(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    up = canary("devenv", "up", "--print-env", env=env)
    assert up.returncode == 0, up.stderr
    exports = dict(line.removeprefix("export ").split("=", 1)
                   for line in up.stdout.splitlines() if line.startswith("export "))
    assert set(exports) >= {"KUBECONFIG", "PROMETHEUS_URL"}
    kubeconfig = Path(exports["KUBECONFIG"])
    run_dir = kubeconfig.parent
    try:
        assert httpx.get(f"{exports['PROMETHEUS_URL']}/-/ready", timeout=5).status_code == 200

        exported = canary("devenv", "env", env=env)
        assert exported.stdout.splitlines()[:2] == up.stdout.splitlines()[:2]

        status = canary("devenv", "status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        for component in ("etcd", "kube-apiserver", "kube-controller-manager",
                          "kube-scheduler", "kwok", "prometheus", "traffic-simulator"):
            assert component in status.stdout

        again = canary("devenv", "up", env=env)
        assert again.returncode == 1
        assert "already running" in again.stderr

        traffic = canary("devenv", "traffic", "web.shop", "--rps", "5", env=env)
        assert traffic.returncode == 0, traffic.stderr
        assert "web.shop.svc.cluster.local: 5 requests/s" in traffic.stdout
        bad = canary("devenv", "traffic", "web", "--rps", "5", env=env)
        assert bad.returncode == 1
        assert "needs its namespace" in bad.stderr
    finally:
        processes = LocalEnvironment.attach(run_dir).processes
        down = canary("devenv", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert not run_dir.exists()
    # A stopped process may linger as a zombie until its new parent reaps it; alive()
    # counts only running processes that are still the ones started (not a reused PID).
    assert [p.name for p in processes if p.alive()] == []
    after = canary("devenv", "status", env=env)
    assert after.returncode == 1
    assert "no environment is running" in after.stderr
