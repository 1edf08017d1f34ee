"""Hooks that run commands, through the load tester served on loopback: refused unless
allowed; bounded in time (the whole process group is killed) and in output; a failure
answers with its status and the end of its output."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from canary.loadtester import GateStore, LoadTester
from canary.loadtester.commands import _Tail
from tests.unit.loadtester.test_server import CANARY, wait_for

Client = TestClient[web.Request, web.Application]


async def start(allow: bool, command_timeout: float = 30.0,
                output_limit: int = 64 * 1024) -> Client:
    tester = LoadTester(GateStore(None), allow_commands=allow,
                        command_timeout=command_timeout, output_limit=output_limit)
    client = TestClient(TestServer(tester.app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def allowed() -> AsyncIterator[Client]:
    client = await start(True, command_timeout=1.0, output_limit=1000)
    yield client
    await client.close()


@pytest.fixture
async def refused() -> AsyncIterator[Client]:
    client = await start(False)
    yield client
    await client.close()


def hook(cmd: str, timeout: str | None = "5s", **metadata: str) -> dict[str, object]:
    body: dict[str, object] = CANARY | {"metadata": {"cmd": cmd, **metadata}}
    return body | ({"timeout": timeout} if timeout else {})


def written_pid(path: Path) -> int | None:
    """The one pid a command wrote to ``path``, once a whole line is there."""
    if not path.exists() or not path.read_text().endswith("\n"):
        return None
    (pid,) = (int(word) for word in path.read_text().split())
    return pid


async def child_pid(path: Path) -> int:
    await wait_for(lambda: written_pid(path) is not None)
    pid = written_pid(path)
    assert pid is not None
    return pid


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for a reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


class TestPermission:
    @pytest.mark.parametrize("metadata", [
        {"type": "bash", "cmd": "printf token | grep token"},
        {"cmd": "printf token"},
        {"type": "cmd", "cmd": "printf token"},
        {"type": "helm", "cmd": "test podinfo -n test"},
        {"cmd": "ghz --insecure podinfo-canary.test:9999"},
    ])
    async def test_commands_are_refused_with_how_to_allow_them(
            self, refused: Client, metadata: dict[str, str], tmp_path: Path) -> None:
        marker = tmp_path / "ran"
        metadata = metadata | {"cmd": metadata["cmd"] + f"; touch {marker}"}
        response = await refused.post("/", json=CANARY | {"metadata": metadata})
        assert response.status == 403
        message = (await response.json())["message"]
        assert "--allow-commands" in message and "allowCommands=true" in message
        assert not marker.exists()

    async def test_an_allowed_curl_like_check_passes(self, allowed: Client) -> None:
        response = await allowed.post("/", json=hook(
            "printf 'a token' | grep token", type="bash"))
        assert response.status == 200, await response.text()
        assert (await response.json())["message"] == "exit status 0"


class TestBlockingCommands:
    async def test_what_a_command_leaves_running_neither_holds_its_answer_nor_survives(
            self, allowed: Client, tmp_path: Path) -> None:
        pids = tmp_path / "pids"
        started = time.monotonic()
        response = await allowed.post("/", json=hook(
            f"sleep 600 & echo $! > {pids}; printf done", timeout="20s", type="bash"))
        assert response.status == 200 and time.monotonic() - started < 10
        child = await child_pid(pids)
        await wait_for(lambda: not alive(child), timeout=5)

    async def test_a_non_zero_exit_fails_with_the_end_of_the_output(
            self, allowed: Client) -> None:
        response = await allowed.post("/", json=hook(
            "printf 'first line\\n'; printf 'no token here' >&2; exit 3", type="bash"))
        assert response.status == 500
        message = (await response.json())["message"]
        assert message.startswith("exit status 3: ")
        assert message.endswith("first line no token here")
        silent = await allowed.post("/", json=hook("exit 4", type="bash"))
        assert (await silent.json())["message"] == "exit status 4"

    async def test_the_output_is_returned_when_asked(self, allowed: Client) -> None:
        response = await allowed.post("/", json=hook(
            "printf 'ok\\n'", type="bash", returnCmdOutput="true"))
        assert response.status == 200
        assert await response.json() == {"message": "exit status 0", "output": "ok\n"}

    async def test_output_over_the_limit_is_cut_and_says_so(self, allowed: Client) -> None:
        response = await allowed.post("/", json=hook(
            "head -c 5000 /dev/zero | tr '\\0' a; printf END", type="bash",
            returnCmdOutput="true"))
        output = (await response.json())["output"]
        note, kept = output.split("\n", 1)
        assert note == "[output cut: the first 4003 bytes were dropped]"
        assert kept == "a" * 997 + "END"

    async def test_at_its_timeout_the_whole_process_group_is_killed(
            self, allowed: Client, tmp_path: Path) -> None:
        pids = tmp_path / "pids"
        command = f"sleep 60 & echo $! > {pids}; sleep 60 & wait"
        started = time.monotonic()
        response = await allowed.post("/", json=hook(command, timeout="2s", type="bash"))
        assert response.status == 500
        # Ended a little before the caller's own 2s, so that it hears why.
        assert (await response.json())["message"].startswith(
            "timed out after 1.8s (killed with every process it started)")
        assert time.monotonic() - started < 10
        child = await child_pid(pids)
        await wait_for(lambda: not alive(child), timeout=5)

    async def test_without_a_timeout_in_the_hook_the_load_testers_own_applies(
            self, allowed: Client) -> None:
        response = await allowed.post("/", json=hook("sleep 60", timeout=None, type="bash"))
        assert response.status == 500
        assert (await response.json())["message"].startswith("timed out after 1s")


class TestPrograms:
    @pytest.fixture
    def fake_programs(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """``helm`` and ``ghz`` that record their arguments, one a line."""
        for program in ("helm", "ghz"):
            fake = tmp_path / program
            fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/{program}.args\n'
                            'printf "%s " "$@"\n[ "$1" != fail ]\n')
            fake.chmod(0o755)
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
        return tmp_path

    async def test_helm_test_runs_helm_with_the_words_as_arguments(
            self, allowed: Client, fake_programs: Path) -> None:
        response = await allowed.post("/", json=hook("test podinfo -n test", type="helmv3"))
        assert response.status == 200
        assert (fake_programs / "helm.args").read_text().split("\n")[:-1] == [
            "test", "podinfo", "-n", "test"]
        failed = await allowed.post("/", json=hook("fail podinfo", type="helm"))
        assert failed.status == 500
        assert (await failed.json())["message"] == "exit status 1: fail podinfo"

    async def test_ghz_runs_in_the_background_without_a_shell(
            self, allowed: Client, fake_programs: Path) -> None:
        response = await allowed.post("/", json=hook("ghz --insecure 'svc:9999' $HOME;id"))
        assert (response.status, (await response.json())["message"]) == (200, "started")
        arguments = fake_programs / "ghz.args"
        await wait_for(arguments.exists)
        await wait_for(lambda: arguments.read_text().endswith("\n"))
        assert arguments.read_text().split("\n")[:-1] == ["--insecure", "svc:9999",
                                                          "$HOME;id"]

    async def test_a_missing_ghz_is_named(self, allowed: Client,
                                          monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
        monkeypatch.setenv("PATH", str(tmp_path))
        response = await allowed.post("/", json=hook("ghz --insecure svc:9999"))
        assert response.status == 500
        assert (await response.json())["message"].startswith("ghz is not installed")


class TestBackgroundCommands:
    async def test_a_command_runs_once_at_a_time_and_is_killed_at_its_timeout(
            self, allowed: Client, tmp_path: Path) -> None:
        pids = tmp_path / "pids"
        command = f"sleep 60 & echo $! >> {pids}; wait"
        answers = [await (await allowed.post("/", json=hook(command))).json()
                   for _ in range(2)]
        assert [a["message"] for a in answers] == ["started", "already running"]
        child = await child_pid(pids)
        await wait_for(lambda: not alive(child), timeout=5)  # the load tester's 1s
        for _ in range(100):  # once it has ended, the same hook starts it again
            again = await allowed.post("/", json=hook(command))
            if (await again.json())["message"] == "started":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the command was not started again after its timeout")

    async def test_stopping_the_load_tester_kills_its_commands(self, tmp_path: Path) -> None:
        client = await start(True)
        pids = tmp_path / "pids"
        await client.post("/", json=hook(f"sleep 600 & echo $! >> {pids}; wait"))
        child = await child_pid(pids)
        async with asyncio.timeout(10):
            await client.close()
        await wait_for(lambda: not alive(child), timeout=5)


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 500))
def test_the_kept_output_is_the_end_of_what_was_written(chunks: list[bytes],
                                                       limit: int) -> None:
    tail = _Tail(limit)
    for chunk in chunks:
        tail.write(chunk)
    written = b"".join(chunks)
    assert bytes(tail.kept) == written[-limit:]
    assert tail.dropped == len(written) - len(tail.kept)
    assert tail.text().startswith("[output cut") == (len(written) > limit)
