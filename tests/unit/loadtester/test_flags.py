"""``canary loadtester`` refuses a bad value, from a flag or its environment variable, with
one line naming where it came from."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from canary.cli import build_parser, main
from canary.loadtester.cli import FLAGS


@pytest.fixture(autouse=True)
def no_loadtester_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("CANARY_LOADTESTER_"):
            monkeypatch.delenv(name)
    yield


@pytest.mark.parametrize(("argv", "environment", "expected"), [
    ([], {"CANARY_LOADTESTER_LOG_LEVEL": "verbose"},
     "CANARY_LOADTESTER_LOG_LEVEL: 'verbose' is not one of debug, info, warning, error"),
    ([], {"CANARY_LOADTESTER_LOG_FORMAT": "xml"},
     "CANARY_LOADTESTER_LOG_FORMAT: 'xml' is not one of json, console"),
    ([], {"CANARY_LOADTESTER_BIND_ADDRESS": "everywhere"},
     "CANARY_LOADTESTER_BIND_ADDRESS: 'everywhere' is not host:port"),
    (["--bind-address", "127.0.0.1:99999"], {},
     "--bind-address: '127.0.0.1:99999' is not host:port"),
    (["--log-level", "loud"], {"CANARY_LOADTESTER_LOG_LEVEL": "debug"},
     "--log-level: 'loud' is not one of"),
    ([], {"CANARY_LOADTESTER_ALLOW_COMMANDS": "maybe"},
     "CANARY_LOADTESTER_ALLOW_COMMANDS: 'maybe' is not true or false"),
    ([], {"CANARY_LOADTESTER_COMMAND_TIMEOUT": "forever"},
     "CANARY_LOADTESTER_COMMAND_TIMEOUT: 'forever' is not a duration"),
    (["--command-timeout", "0s"], {}, "--command-timeout: the timeout must be positive"),
])
def test_a_bad_value_is_refused_with_one_line_naming_its_source(
        argv: list[str], environment: dict[str, str], expected: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, text in environment.items():
        monkeypatch.setenv(name, text)
    assert main(["loadtester", *argv]) != 0
    error = capsys.readouterr().err
    assert expected in error and error.count("\n") == 1, error


def test_a_flag_wins_over_its_variable_which_wins_over_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["loadtester"])
    assert FLAGS.values(args)("bind-address") == ("0.0.0.0:8080", "--bind-address")
    monkeypatch.setenv("CANARY_LOADTESTER_BIND_ADDRESS", "127.0.0.1:9000")
    assert FLAGS.values(args)("bind-address") == ("127.0.0.1:9000",
                                                  "CANARY_LOADTESTER_BIND_ADDRESS")
    args = build_parser().parse_args(["loadtester", "--bind-address", ":7000"])
    assert FLAGS.values(args)("bind-address") == (":7000", "--bind-address")


def test_commands_are_off_unless_allowed_by_the_flag_or_its_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert FLAGS.values(build_parser().parse_args(["loadtester"])).switch(
        "allow-commands") is False
    monkeypatch.setenv("CANARY_LOADTESTER_ALLOW_COMMANDS", "true")
    assert FLAGS.values(build_parser().parse_args(["loadtester"])).switch(
        "allow-commands") is True
    args = build_parser().parse_args(["loadtester", "--no-allow-commands"])
    assert FLAGS.values(args).switch("allow-commands") is False
