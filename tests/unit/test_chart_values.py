"""The Helm charts' values reach the processes they run: rendered with the real ``helm``
(built by ``canary devenv install``; skipped without it), the controller's arguments
parsed by ``canary run`` and the load tester's by ``canary loadtester``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from canary.app import settings_from
from canary.cli import build_parser
from canary.devenv.errors import NotInstalled
from canary.devenv.install import locate
from canary.settings import Settings

CHARTS = Path(__file__).parents[2] / "charts"


class Helm:
    """The devenv's helm, with its caches and configuration in a temporary home."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary, self.home = binary, home

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                 "HELM_CACHE_HOME": str(self.home / "cache"),
                 "HELM_CONFIG_HOME": str(self.home / "config"),
                 "HELM_DATA_HOME": str(self.home / "data")})


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    try:
        binary = locate()["helm"]
    except (NotInstalled, KeyError):
        pytest.skip("helm is not installed (canary devenv install)")
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def chart(helm: Helm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the charts with the load tester vendored, never in the repository."""
    root = tmp_path_factory.mktemp("charts")
    shutil.copytree(CHARTS, root, dirs_exist_ok=True)
    built = helm("dependency", "build", str(root / "canary"))
    assert built.returncode == 0, built.stderr
    return root / "canary"


def controller_settings(helm: Helm, chart: Path, *values: str) -> Settings:
    """The Settings ``canary run`` builds from the Deployment's rendered args."""
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm("template", "canary", str(chart), "--kube-version", "1.36.3", *sets)
    assert result.returncode == 0, result.stderr
    deployment = next(d for d in yaml.safe_load_all(result.stdout)
                      if d and d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return settings_from(build_parser().parse_args(container["args"]))


def test_by_default_neither_flagger_metrics_nor_a_dashboard_link(
        helm: Helm, chart: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANARY_FLAGGER_METRICS", raising=False)
    monkeypatch.delenv("CANARY_DASHBOARD_URL", raising=False)
    settings = controller_settings(helm, chart)
    assert settings.serving.flagger_metrics is False
    assert settings.alerts.dashboard_url is None


def test_flagger_metrics_and_the_dashboard_link_are_passed_on(
        helm: Helm, chart: Path) -> None:
    url = "https://grafana.example/d/canary/rollouts?orgId=1&var-cluster=a"
    settings = controller_settings(helm, chart, "metrics.flaggerCompatible=true",
                                   f"alerts.dashboardUrl={url}")
    assert settings.serving.flagger_metrics is True
    assert settings.alerts.dashboard_url == url


def test_a_dashboard_url_that_is_not_http_is_refused_with_the_field_named(
        helm: Helm, chart: Path) -> None:
    result = helm("template", "canary", str(chart), "--kube-version", "1.36.3",
                  "--set", "alerts.dashboardUrl=grafana.example/d/canary")
    assert result.returncode != 0 and "/alerts/dashboardUrl" in result.stderr


def loadtester_objects(helm: Helm, chart: Path, *values: str) -> dict[str, dict[str, Any]]:
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm("template", "lt", str(chart.parent / "canary-loadtester"), "--kube-version",
                  "1.36.3", *sets)
    assert result.returncode == 0, result.stderr
    return {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}


def test_the_load_testers_gate_state_lives_on_its_own_volume_claim(
        helm: Helm, chart: Path) -> None:
    objects = loadtester_objects(helm, chart)
    claim, deployment = objects["PersistentVolumeClaim"], objects["Deployment"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "64Mi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # One writer of the state at a time: the old pod goes before the new one starts.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "loadtester"
    (volume,) = pod["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"]}
    (mount,) = container["volumeMounts"]
    assert mount["name"] == volume["name"]
    assert PurePosixPath(args.state_file).parent == PurePosixPath(mount["mountPath"])
    assert pod["securityContext"]["fsGroup"] == 10001  # the non-root user can write it


def test_without_persistence_the_gate_state_survives_container_restarts_only(
        helm: Helm, chart: Path) -> None:
    objects = loadtester_objects(helm, chart, "persistence.enabled=false")
    assert "PersistentVolumeClaim" not in objects
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "state", "emptyDir": {}}]
    assert "strategy" not in objects["Deployment"]["spec"]


def test_the_load_tester_runs_no_commands_unless_the_chart_allows_them(
        helm: Helm, chart: Path) -> None:
    pod = loadtester_objects(helm, chart)["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.allow_commands is False and args.command_timeout == "1h"
    assert pod["automountServiceAccountToken"] is False
    objects = loadtester_objects(helm, chart, "allowCommands=true", "commandTimeout=10m",
                                 "serviceAccount.automountToken=true")
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.allow_commands is True and args.command_timeout == "10m"
    assert pod["automountServiceAccountToken"] is True
    # The root filesystem stays read-only: commands get a writable home on an emptyDir.
    assert {"name": "HOME", "value": "/tmp"} in container["env"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]


def test_a_command_timeout_that_is_not_a_duration_is_refused(helm: Helm, chart: Path
                                                             ) -> None:
    result = helm("template", "lt", str(chart.parent / "canary-loadtester"),
                  "--kube-version", "1.36.3", "--set", "commandTimeout=forever")
    assert result.returncode != 0 and "/commandTimeout" in result.stderr


def test_the_charts_slack_provider_is_the_default_for_canaries_without_alerts(
        helm: Helm, chart: Path) -> None:
    settings = controller_settings(helm, chart, "slack.secretName=slack-url",
                                   "slack.severity=warn")
    assert settings.alerts.default_provider == ("default", "canary-slack")
    assert settings.alerts.default_severity == "warn"
    result = helm("template", "canary", str(chart), "--kube-version", "1.36.3",
                  "--set", "slack.secretName=slack-url")
    providers = [d for d in yaml.safe_load_all(result.stdout)
                 if d and d["kind"] == "AlertProvider"]
    assert [p["metadata"]["name"] for p in providers] == ["canary-slack"]
    assert providers[0]["spec"]["secretRef"] == {"name": "slack-url"}
    assert controller_settings(helm, chart).alerts.default_provider is None


def test_the_limit_on_concurrent_rollouts_is_passed_on_and_unset_by_default(
        helm: Helm, chart: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANARY_MAX_CONCURRENT_ROLLOUTS", raising=False)
    assert controller_settings(helm, chart).rollouts.max_concurrent == 0
    settings = controller_settings(helm, chart, "maxConcurrentRollouts=3")
    assert settings.rollouts.max_concurrent == 3


def test_a_negative_limit_on_concurrent_rollouts_is_refused_with_the_field_named(
        helm: Helm, chart: Path) -> None:
    result = helm("template", "canary", str(chart), "--kube-version", "1.36.3",
                  "--set", "maxConcurrentRollouts=-1")
    assert result.returncode != 0 and "maxConcurrentRollouts" in result.stderr


def test_the_bound_on_api_connections_is_passed_on(helm: Helm, chart: Path) -> None:
    assert controller_settings(helm, chart).kube.max_connections == 64
    assert controller_settings(helm, chart, "kubeMaxConnections=16").kube.max_connections == 16
    result = helm("template", "canary", str(chart), "--kube-version", "1.36.3",
                  "--set", "kubeMaxConnections=0")
    assert result.returncode != 0 and "kubeMaxConnections" in result.stderr
