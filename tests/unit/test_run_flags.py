"""``canary run`` refuses a bad value, from a flag or its environment variable, with one
line naming where it came from, and documents every flag with its variable."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import pytest

from canary.app import env_var, settings_from
from canary.cli import build_parser, main
from canary.settings import Settings


@pytest.fixture(autouse=True)
def no_canary_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("CANARY_") or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    yield


def run_parser() -> argparse.ArgumentParser:
    subcommands = next(action for action in build_parser()._actions
                       if isinstance(action, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = subcommands.choices["run"]
    return parser


def settings(*argv: str) -> Settings:
    return settings_from(build_parser().parse_args(["run", *argv]))


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``canary run`` with ``argv``; the one line it wrote when it refused."""
    try:
        status = main(["run", *argv])
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    assert status != 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    return error


@pytest.mark.parametrize(("argv", "named"), [
    (["--lease-duration", "soon"], "--lease-duration"),
    (["--min-interval", "5x"], "--min-interval"),
    (["--mesh-provider", "linkerd"], "--mesh-provider"),
    (["--selector-labels", ","], "--selector-labels"),
    (["--selector-labels", "app,bad key"], "--selector-labels"),
    (["--metrics-bind-address", "localhost"], "--metrics-bind-address"),
    (["--health-probe-bind-address", "host:99999"], "--health-probe-bind-address"),
    (["--leader-elect", "--lease-duration", "5s", "--renew-deadline", "10s"],
     "--lease-duration (5s) must exceed --renew-deadline (10s)"),
    (["--leader-elect", "--renew-deadline", "2s", "--retry-period", "2s"],
     "--renew-deadline (2s), which must exceed --retry-period (2s)"),
    (["--leader-elect", "--lease-duration", "500ms", "--renew-deadline", "400ms",
      "--retry-period", "100ms"], "--lease-duration (500ms) is less than 1s"),
    (["--leader-elect", "--retry-period", "0s"], "--retry-period (0s), which must exceed 0s"),
    (["--leader-election-namespace", "Kube_System"], "--leader-election-namespace"),
    (["--leader-election-id", "canary leader"], "--leader-election-id"),
    (["--log-level", "loud"],
     "--log-level: 'loud' is not one of debug, info, warning, error"),
    (["--log-format", "xml"], "--log-format: 'xml' is not one of json, console"),
    (["--metrics-server", "prometheus:9090"], "--metrics-server: 'prometheus:9090'"),
    (["--metrics-server", "ftp://prometheus"], "--metrics-server"),
    (["--metrics-server", "http://"], "--metrics-server"),
    (["--dashboard-url", "grafana.example.com/d/x"], "--dashboard-url"),
    (["--dashboard-url", "javascript:alert(1)"], "--dashboard-url"),
    (["--namespace", "apps,Team_B"], "--namespace: 'Team_B' is not a namespace name"),
    (["--namespace", "a" * 64], "--namespace"),
    (["--namespace", "-apps"], "--namespace"),
    (["--canary-selector", "shard=a=b"], "--canary-selector: 'shard=a=b' is not a label"),
    (["--canary-selector", "shard in (a"], "--canary-selector"),
    (["--canary-selector", "bad key=a"], "--canary-selector"),
    (["--canary-selector", "shard=-a"], "--canary-selector"),
    (["--canary-selector", "replicas>many"], "--canary-selector"),
    (["--default-alert-provider", "slack"], "--default-alert-provider: 'slack' is not "
     "NAMESPACE/NAME"),
    (["--default-alert-provider", "Ops/slack"], "--default-alert-provider: 'Ops'"),
    (["--default-alert-provider", "ops/"], "--default-alert-provider"),
    (["--namespace", "apps", "--default-alert-provider", "ops/slack"],
     "--default-alert-provider: namespace 'ops' is not watched"),
    (["--default-alert-severity", "loud"],
     "--default-alert-severity: 'loud' is not one of info, warn, error"),
    (["--max-concurrent-rollouts", "-1"],
     "--max-concurrent-rollouts: '-1' is not a whole number, 0 or more"),
    (["--max-concurrent-rollouts", "two"], "--max-concurrent-rollouts: 'two'"),
    (["--max-concurrent-rollouts", "1.5"], "--max-concurrent-rollouts: '1.5'"),
    (["--kube-max-connections", "0"], "--kube-max-connections: give at least 1 connection"),
    (["--no-such-flag"], "--no-such-flag"),
    (["--kubeconfig", "/nonexistent/config"],
     "the kubeconfig file /nonexistent/config named by --kubeconfig does not exist"),
])
def test_a_bad_flag_exits_non_zero_with_one_line_naming_it(
        argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert named in refused(argv, capsys)


@pytest.mark.parametrize(("variable", "text", "expected"), [
    ("CANARY_LOG_LEVEL", "verbose",
     "CANARY_LOG_LEVEL: 'verbose' is not one of debug, info, warning, error"),
    ("CANARY_LOG_FORMAT", "xml", "CANARY_LOG_FORMAT: 'xml' is not one of json, console"),
    ("CANARY_LEADER_ELECT", "maybe", "CANARY_LEADER_ELECT: 'maybe' is not true or false"),
    ("CANARY_LEASE_DURATION", "soon", "CANARY_LEASE_DURATION: 'soon' is not a duration"),
    ("CANARY_MESH_PROVIDER", "linkerd", "CANARY_MESH_PROVIDER: 'linkerd' is not supported"),
    ("CANARY_METRICS_SERVER", "prometheus:9090", "CANARY_METRICS_SERVER: "),
    ("CANARY_DASHBOARD_URL", "ftp://grafana", "CANARY_DASHBOARD_URL: "),
    ("CANARY_NAMESPACE", "a,B", "CANARY_NAMESPACE: 'B' is not a namespace name"),
    ("CANARY_CANARY_SELECTOR", "a in b", "CANARY_CANARY_SELECTOR: 'a in b' is not a label"),
    ("CANARY_METRICS_BIND_ADDRESS", "localhost", "CANARY_METRICS_BIND_ADDRESS: "),
    ("CANARY_SELECTOR_LABELS", ",", "CANARY_SELECTOR_LABELS: give at least one label key"),
    ("CANARY_MAX_CONCURRENT_ROLLOUTS", "-3",
     "CANARY_MAX_CONCURRENT_ROLLOUTS: '-3' is not a whole number, 0 or more"),
    ("CANARY_METRICS_SERVER", "http://[::1",
     "CANARY_METRICS_SERVER: 'http://[::1' is not an http(s) URL"),
    ("CANARY_DASHBOARD_URL", "http://grafana:99999", "CANARY_DASHBOARD_URL: "),
    ("CANARY_KUBECONFIG", "/nonexistent",
     "the kubeconfig file /nonexistent named by CANARY_KUBECONFIG does not exist"),
    ("KUBECONFIG", "/nonexistent",
     "the kubeconfig file /nonexistent named by KUBECONFIG does not exist"),
])
def test_a_bad_environment_variable_is_named(
        variable: str, text: str, expected: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(variable, text)
    error = refused([], capsys)
    assert expected in error and "Traceback" not in error, error


@pytest.mark.parametrize(("url", "shown"), [
    ("ftp://admin:s3cret-pw@prometheus:9090", "'ftp://***@prometheus:9090'"),
    ("http://admin:s3cret-pw@prometheus:port", "'http://***@prometheus:port'"),
    ("http://admin:s3cret-pw@[::1", "'http://***@[::1'"),
    ("http://admin:s3cret/pw?x#y@prometheus:x", "'http://***@prometheus:x'"),
    ("admin:s3cret-pw@prometheus:9090", "'***@prometheus:9090'"),
    ("http:// admin:s3cret-pw@prometheus/ x", "'http://***@prometheus/ x'"),
])
@pytest.mark.parametrize("flag", ["--metrics-server", "--dashboard-url"])
def test_a_refused_url_is_shown_without_its_password(
        flag: str, url: str, shown: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    error = refused([flag, url], capsys)
    assert f"{flag}: {shown} is not an http(s) URL" in error, error
    assert "s3cret" not in error and "admin" not in error
    monkeypatch.setenv(env_var(flag.removeprefix("--")), url)
    error = refused([], capsys)
    assert f"{env_var(flag.removeprefix('--'))}: {shown}" in error, error
    assert "s3cret" not in error


def test_the_environment_order_of_leader_timings_is_named(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CANARY_LEADER_ELECT", "true")
    monkeypatch.setenv("CANARY_RENEW_DEADLINE", "20s")
    assert ("--lease-duration (15s) must exceed CANARY_RENEW_DEADLINE (20s)"
            in refused([], capsys))


def test_a_flag_wins_over_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_LOG_LEVEL", "verbose")
    monkeypatch.setenv("CANARY_NAMESPACE", "Not_Valid")
    got = settings("--log-level", "debug", "--namespace", "apps")
    assert got.logging.level == "debug" and got.kube.namespaces == ("apps",)


def test_values_from_the_environment_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, text in {"CANARY_LOG_LEVEL": "warning", "CANARY_LOG_FORMAT": "console",
                           "CANARY_NAMESPACE": "a, b", "CANARY_CANARY_SELECTOR": "shard=a",
                           "CANARY_METRICS_SERVER": "http://prometheus:9090",
                           "CANARY_LEADER_ELECT": "true", "CANARY_LEASE_DURATION": "2.5s",
                           "CANARY_RENEW_DEADLINE": "2s",
                           "CANARY_RETRY_PERIOD": "500ms"}.items():
        monkeypatch.setenv(variable, text)
    got = settings()
    assert (got.logging.level, got.logging.format) == ("warning", "console")
    assert got.kube.namespaces == ("a", "b") and got.kube.canary_selector == "shard=a"
    assert got.analysis.metrics_server == "http://prometheus:9090"
    election = got.leader_election
    assert election.enabled and election.lease_duration_seconds == 2.5
    assert (election.renew_deadline_seconds, election.retry_period_seconds) == (2, 0.5)


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the chart renders them when a value is not set."""
    monkeypatch.setenv("CANARY_LOG_LEVEL", "")
    got = settings("--metrics-server=", "--dashboard-url=", "--canary-selector=",
                   "--namespace=")
    assert got.logging.level == "info" and got.analysis.metrics_server is None
    assert got.alerts.dashboard_url is None and got.kube.canary_selector is None
    assert got.kube.namespaces is None


@pytest.mark.parametrize("selector", [
    "shard=a", "shard==a", "shard!=a", "shard", "!shard", "shard=", "tier in (web, api)",
    "tier notin (db),!legacy,app.kubernetes.io/name=web", " shard = a , env in ( prod ) ",
    "replicas>1", "replicas<10", "example.com/team=a-b_c.d", "shard in ()",
    "shard notin ()", "shard in (a,)", "shard in (,a)", "shard in (,)"])
def test_valid_label_selectors_are_accepted(selector: str) -> None:
    assert settings("--canary-selector", selector).kube.canary_selector == selector


@pytest.mark.parametrize("url", ["http://prometheus:9090", "https://p.example.com/prom",
                                 "http://10.0.0.1:9090/", "http://[::1]:9090"])
def test_valid_urls_are_accepted(url: str) -> None:
    got = settings("--metrics-server", url, "--dashboard-url", url)
    assert got.analysis.metrics_server == url and got.alerts.dashboard_url == url


def test_defaults() -> None:
    got = settings()
    assert got.kube.namespaces is None and got.kube.canary_selector is None
    assert got.workloads.selector_labels == ("app", "name", "app.kubernetes.io/name")
    assert got.logging.level == "info" and got.logging.format == "json"
    assert got.serving.metrics_bind_address == ":8080"
    assert got.serving.health_probe_bind_address == ":8081"
    assert got.leader_election.name == "canary-leader" and not got.leader_election.enabled
    assert got.leader_election.lease_duration_seconds == 15
    assert got.analysis.min_interval_seconds == 10
    assert got.mesh_provider == "istio"
    assert got.alerts.default_provider is None and got.alerts.default_severity == "info"
    assert got.rollouts.max_concurrent == 0  # no limit


def test_the_limit_on_concurrent_rollouts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings("--max-concurrent-rollouts", "3").rollouts.max_concurrent == 3
    monkeypatch.setenv("CANARY_MAX_CONCURRENT_ROLLOUTS", "5")
    assert settings().rollouts.max_concurrent == 5


def test_the_connections_to_the_api_server(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings().kube.max_connections == 64
    assert settings("--kube-max-connections", "16").kube.max_connections == 16
    monkeypatch.setenv("CANARY_KUBE_MAX_CONNECTIONS", "8")
    assert settings().kube.max_connections == 8


def test_the_default_alert_provider_and_its_severity() -> None:
    got = settings("--namespace", "apps,ops", "--default-alert-provider", "ops/slack",
                   "--default-alert-severity", "warn")
    assert got.alerts.default_provider == ("ops", "slack")
    assert got.alerts.default_severity == "warn"


def test_help_documents_every_flag_with_its_environment_variable() -> None:
    run = run_parser()
    text = " ".join(run.format_help().split())  # unwrapped
    flags = [action for action in run._actions
             if action.option_strings and action.dest != "help"]
    assert len(flags) >= 20
    for action in flags:
        flag = action.option_strings[0]
        variable = env_var(flag.removeprefix("--"))
        assert action.help, f"{flag} has no help"
        assert variable in action.help, f"the help of {flag} does not name {variable}"
        for option in action.option_strings:
            assert option in text
        assert variable in text


def test_the_gateway_api_is_a_mesh_provider() -> None:
    """Canaries without spec.provider can be routed by the Gateway API."""
    assert settings("--mesh-provider", "gatewayapi:v1").mesh_provider == "gatewayapi:v1"
