"""``canary run`` refuses bad flags with one line naming the flag, and documents them all."""

from __future__ import annotations

import pytest

from canary.cli import build_parser, main


@pytest.mark.parametrize(("argv", "named"), [
    (["--lease-duration", "soon"], "--lease-duration"),
    (["--min-interval", "5x"], "--min-interval"),
    (["--mesh-provider", "linkerd"], "--mesh-provider"),
    (["--selector-labels", ","], "--selector-labels"),
    (["--metrics-bind-address", "localhost"], "--metrics-bind-address"),
    (["--health-probe-bind-address", "host:99999"], "--health-probe-bind-address"),
    (["--leader-elect", "--lease-duration", "5s", "--renew-deadline", "10s"],
     "--lease-duration must exceed --renew-deadline"),
    (["--log-level", "loud"], "--log-level"),
    (["--no-such-flag"], "--no-such-flag"),
])
def test_a_bad_flag_exits_non_zero_with_one_line_naming_it(
        argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(["run", *argv])
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    assert status != 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and named in error, error


def test_a_bad_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CANARY_LEADER_ELECT", "maybe")
    assert main(["run"]) != 0
    assert "CANARY_LEADER_ELECT" in capsys.readouterr().err


def test_help_documents_every_flag() -> None:
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    text = run.format_help()
    for action in run._actions:
        for option in action.option_strings:
            assert option in text
    for flag in ("--metrics-bind-address", "--health-probe-bind-address", "--leader-elect",
                 "--kubeconfig", "--namespace", "--mesh-provider", "--metrics-server",
                 "--selector-labels", "--log-level", "--log-format"):
        assert flag in text
    assert all(action.help for action in run._actions if action.option_strings
               and action.dest not in ("help", "log_level", "log_format"))
