"""Reading a hook's metadata into what the load tester runs: Flagger's hook types, and
commands refused unless they are allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.loadtester.tasks import Refused, plan


@pytest.fixture(autouse=True)
def programs_on_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH holding exactly the programs the hooks name (a fake ghz, helm, kubectl)."""
    for program in ("sh", "bash", "ghz", "helm", "kubectl"):
        fake = tmp_path / program
        fake.write_text("#!/bin/sh\n")
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


class TestWhatRuns:
    @pytest.mark.parametrize(("metadata", "argv", "blocking"), [
        ({"cmd": "curl -s http://backend-canary.test:9898/token | grep token"},
         ("sh", "-c", "curl -s http://backend-canary.test:9898/token | grep token"), False),
        ({"type": "cmd", "cmd": "echo $HOME"}, ("sh", "-c", "echo $HOME"), False),
        ({"type": "bash", "cmd": "curl -s http://x/token | grep token"},
         ("bash", "-c", "curl -s http://x/token | grep token"), True),
        ({"type": "helm", "cmd": "test podinfo -n test"},
         ("helm", "test", "podinfo", "-n", "test"), True),
        ({"type": "helmv3", "cmd": "test podinfo -n 'my ns'"},
         ("helm", "test", "podinfo", "-n", "my ns"), True),
        ({"type": "kubectl", "cmd": "get pods -n test"},
         ("kubectl", "get", "pods", "-n", "test"), True),
        # ghz runs as its own program: its words are arguments, never a shell's.
        ({"cmd": "ghz -z 1m --insecure --call a.B/C podinfo-canary.test:9999 $(id)"},
         ("ghz", "-z", "1m", "--insecure", "--call", "a.B/C", "podinfo-canary.test:9999",
          "$(id)"), False),
    ])
    def test_flaggers_hook_types(self, metadata: dict[str, str], argv: tuple[str, ...],
                                 blocking: bool) -> None:
        task = plan(metadata, allow_commands=True)
        assert (task.argv, task.blocking, task.load) == (argv, blocking, None)

    def test_hey_is_built_in_and_needs_no_permission(self) -> None:
        task = plan({"cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"},
                    allow_commands=False)
        assert task.load is not None and task.argv == () and not task.blocking
        assert task.load.url == "http://podinfo-canary.test:9898/"

    def test_output_flags_are_read_as_flagger_writes_them(self) -> None:
        task = plan({"type": "bash", "cmd": "true", "logCmdOutput": "true",
                     "returnCmdOutput": "True"}, allow_commands=True)
        assert task.log_output and task.return_output
        assert not plan({"type": "bash", "cmd": "true"}, allow_commands=True).return_output


class TestRefusals:
    @given(st.sampled_from(["cmd", "bash", "helm", "helmv3", "kubectl", None]),
           st.text(min_size=1).filter(lambda t: t.strip() and "hey" not in t))
    def test_every_command_is_refused_until_commands_are_allowed(
            self, kind: str | None, command: str) -> None:
        metadata = {"cmd": command} | ({"type": kind} if kind else {})
        with pytest.raises(Refused) as refused:
            plan(metadata, allow_commands=False)
        if refused.value.status == 403:
            assert "--allow-commands" in refused.value.message
            assert "CANARY_LOADTESTER_ALLOW_COMMANDS" in refused.value.message
            assert "allowCommands" in refused.value.message
        else:  # a command line that cannot even be read
            assert refused.value.status == 400

    @pytest.mark.parametrize(("metadata", "message"), [
        (None, "metadata.cmd must hold a command line"),
        ({"type": "bash"}, "metadata.cmd must hold a command line"),
        ({"type": "ngrinder", "cmd": "x"}, "'ngrinder' is not supported"),
        ({"type": "concord", "cmd": "x"}, "'concord' is not supported"),
        ({"type": "python", "cmd": "x"}, "'python' is not one of cmd, bash, helm"),
        ({"type": "helm", "cmd": "test 'unclosed"}, "cannot read the command"),
    ])
    def test_hooks_that_cannot_run_are_refused_with_the_reason(
            self, metadata: dict[str, str] | None, message: str) -> None:
        with pytest.raises(Refused) as refused:
            plan(metadata, allow_commands=True)
        assert refused.value.status == 400 and message in refused.value.message

    @pytest.mark.parametrize(("metadata", "program"), [
        ({"cmd": "ghz --insecure svc:9999"}, "ghz"),
        ({"type": "helm", "cmd": "test podinfo"}, "helm"),
    ])
    def test_a_missing_program_is_named(self, metadata: dict[str, str], program: str,
                                        tmp_path: Path) -> None:
        (tmp_path / program).unlink()
        with pytest.raises(Refused) as refused:
            plan(metadata, allow_commands=True)
        assert refused.value.message.startswith(f"{program} is not installed")
