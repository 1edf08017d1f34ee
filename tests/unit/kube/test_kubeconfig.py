"""A kubeconfig that is not there is said in one line naming the file and what named it,
not as a file without a current context."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.cli import main
from canary.kube.client import missing_kubeconfig

THERE = {Path("/home/me/.kube/config")}


def exists(path: Path) -> bool:
    return path in THERE


class TestMissingKubeconfig:
    def test_a_missing_file_given_as_an_argument_names_the_flag(self) -> None:
        assert missing_kubeconfig("/nope", "--kubeconfig", environ={}, exists=exists) == \
            "the kubeconfig file /nope named by --kubeconfig does not exist"

    def test_without_an_argument_kubeconfig_is_named(self) -> None:
        assert missing_kubeconfig(None, environ={"KUBECONFIG": "/nope"}, exists=exists) == \
            "the kubeconfig file /nope named by KUBECONFIG does not exist"

    def test_the_argument_wins_over_the_variable(self) -> None:
        assert missing_kubeconfig("/home/me/.kube/config", "CANARY_KUBECONFIG",
                                  environ={"KUBECONFIG": "/nope"}, exists=exists) is None

    @pytest.mark.parametrize("listed", ["/nope:/home/me/.kube/config",
                                        "/home/me/.kube/config::/nope"])
    def test_a_list_with_one_file_that_exists_is_fine(self, listed: str) -> None:
        assert missing_kubeconfig(None, environ={"KUBECONFIG": listed}, exists=exists) is None

    def test_a_list_of_missing_files_is_named_whole(self) -> None:
        assert missing_kubeconfig(None, environ={"KUBECONFIG": "/a:/b"}, exists=exists) == \
            "none of the kubeconfig files named by KUBECONFIG exists: /a:/b"

    @pytest.mark.parametrize("environ", [{}, {"KUBECONFIG": ""}, {"KUBECONFIG": ":"}])
    def test_nothing_named_is_left_to_the_defaults(self, environ: dict[str, str]) -> None:
        assert missing_kubeconfig(None, environ=environ, exists=exists) is None


@pytest.mark.parametrize("command", [["status"], ["describe", "web"]])
def test_a_command_given_a_missing_kubeconfig_says_so_in_one_line(
        command: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    # Leave structlog as the other tests find it (configuring caches their loggers).
    monkeypatch.setattr("canary.console.cli.configure_logging", lambda *args: None)
    assert main(command) != 0
    assert capsys.readouterr().err == \
        "canary: error: the kubeconfig file /nonexistent named by KUBECONFIG does not exist\n"
