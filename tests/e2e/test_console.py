"""`canary status`, `describe`, `watch` and `convert` against the real control plane, with
the controller delivering real rollouts; `canary watch` as a person sees it, in tmux."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.devenv import LocalEnvironment
from canary.devenv.install import locate
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.rollout import APP, canary_object, deploy, phase, start, target_revision
from tests.e2e.waiting import wait_until

FIXTURES = Path(__file__).parents[1] / "unit" / "cli" / "fixtures" / "flagger"
ROOT = Path(__file__).parents[2]


def command_env(env: LocalEnvironment) -> dict[str, str]:
    return dict(os.environ, KUBECONFIG=str(env.kubeconfig), NO_COLOR="1")


async def cli(env: LocalEnvironment, *args: str, expect: int = 0) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canary", *args, env=command_env(env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == expect, (process.returncode, out.decode(), err.decode())
    return out.decode()


def squashed(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


class PlainWatch:
    """``canary watch`` into a pipe, its lines read as they come."""

    def __init__(self, env: LocalEnvironment, namespace: str) -> None:
        self.env, self.namespace = env, namespace
        self.lines: list[str] = []

    async def __aenter__(self) -> PlainWatch:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "canary", "watch", APP, "-n", self.namespace,
            env=command_env(self.env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def until(self, text: str, timeout: float = 60) -> None:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while not any(text in line for line in self.lines):
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError(f"watch ended before {text!r}: {self.lines}")
                self.lines.append(line.decode().rstrip("\n"))

    async def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out, err = await asyncio.wait_for(self.process.communicate(), timeout)
        self.lines += out.decode().splitlines()
        assert self.process.returncode is not None
        return self.process.returncode, "\n".join(self.lines), err.decode()


# -- canary convert: what it writes, the API server accepts ----------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.yaml")))
async def test_converted_flagger_examples_are_accepted_by_the_api_server(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, name: str) -> None:
    out = await cli(environment, "convert", str(FIXTURES / name))
    documents = [d for d in yaml.safe_load_all(out) if d is not None]
    assert any(d["apiVersion"] == "canary.dev/v1beta1" for d in documents)
    for document in documents:
        document["metadata"]["namespace"] = namespace
        created = await kube.create(r.for_object(document), document)
        if document["apiVersion"] == "canary.dev/v1beta1":
            # Nothing was pruned: every field convert wrote is in the CRD's schema.
            assert created["spec"] == document["spec"], document["metadata"]["name"]


# -- status, describe and watch on real rollouts ----------------------------------------


class Tmux:
    """A private tmux server (its own socket) running one command in a fixed-size window."""

    def __init__(self, width: int = 120, height: int = 40) -> None:
        self.socket = f"canary-e2e-{os.getpid()}-{secrets.token_hex(3)}"
        self.width, self.height = width, height

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30, check=True)
        return done.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        exports = [f"{key}={value}" for key, value in env.items()]
        line = f"{shlex.join(['env', *exports, *command])}; echo EXIT=$?; sleep 600"
        self.tmux("new-session", "-d", "-s", "watch", "-x", str(self.width), "-y",
                  str(self.height), line)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "watch")

    def stop(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30, check=False)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (apt-get install -y tmux): `canary watch` is "
                    "checked in it", pytrace=False)
    session = Tmux()
    yield session
    session.stop()


async def screens_until(tmux: Tmux, text: str, timeout: float) -> list[str]:
    """Every distinct screen until one contains ``text``."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        current = tmux.screen()
        if not seen or seen[-1] != current:
            seen.append(current)
        if text in current:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"no screen showed {text!r} in {timeout:.0f}s; last:\n"
                                 f"{current}")
        await asyncio.sleep(0.2)


@pytest.mark.usefixtures("running_controller")
async def test_watch_status_and_describe_follow_a_promotion(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, tmux: Tmux) -> None:
    await start(kube, environment, namespace)
    tmux.start([sys.executable, "-m", "canary", "watch", APP, "-n", namespace],
               {"KUBECONFIG": str(environment.kubeconfig), "LANG": "C.UTF-8",
                "PYTHONPATH": str(ROOT)})
    async with PlainWatch(environment, namespace) as plain:  # the same, into a pipe
        await screens_until(tmux, "waiting for a new revision of podinfo", 60)
        await plain.until("waiting for a new revision")

        await deploy(kube, namespace, {"revision": "2"})
        revision = await target_revision(kube, namespace)
        screens = await screens_until(tmux, "EXIT=", 120)
        code, out, err = await plain.finish()
    final = screens[-1]

    # As a person saw it: the weight stepping up, each check against its bound.
    weights = {int(w) for s in screens for w in re.findall(r"^weight\s+(\d+)%", s, re.M)}
    assert {20, 40, 60} <= weights, screens
    during = [s for s in screens if re.search(r"^weight\s+40%", s, re.M)]
    assert any("Checks at weight" in s and re.search(
        r"request-success-rate\s+[\d.]+\s+>= 99\s+ok", s) and re.search(
        r"request-duration\s+[\d.]+\s+<= 500\s+ok", s) for s in during), during
    assert any(f"revision {revision}" in s and "next check in" in s for s in during)
    assert any("█" in s for s in during)  # colour and blocks on a terminal
    assert "Succeeded" in final.splitlines()[0]
    assert f"Succeeded: Promotion of podinfo revision {revision} completed" in final
    assert re.search(r"Promoted\s+Promotion of podinfo revision", final)
    assert "EXIT=0" in final

    assert code == 0, err
    lines = out.splitlines()
    assert "\x1b" not in out
    assert any("event Normal WeightIncreased: Advance podinfo canary weight to 40" in line
               for line in lines)
    state = [line.split(" ", 1)[1] for line in lines if " event " not in line]
    assert any(s.startswith(f"{namespace}/podinfo Progressing weight 20 (step 1/3)")
               for s in state), lines
    assert state[-1].startswith(f"{namespace}/podinfo Succeeded weight 0 (step 3/3)")

    table = squashed(await cli(environment, "status", "-n", namespace))
    assert table[0] == "NAMESPACE NAME PHASE WEIGHT FAILED STRATEGY AGE LAST DECISION"
    assert table[1].startswith(f"{namespace} podinfo Succeeded 0 0/2 Canary ")
    assert table[1].endswith(f"Succeeded: Promotion of podinfo revision {revision} completed")
    everywhere = await cli(environment, "status")
    assert f"{namespace}  podinfo" in everywhere
    data = json.loads(await cli(environment, "status", "-n", namespace, "-o", "json"))
    (summary,) = data["canaries"]
    assert summary["revision"] == summary["promotedRevision"] == revision
    assert {m["name"] for m in summary["lastAnalysis"]["results"]} == {
        "request-success-rate", "request-duration"}

    described = await cli(environment, "describe", APP, "-n", namespace)
    flat = squashed(described)
    assert "Strategy: Canary: weights 20, 40, 60 every 3s; rollback after 2 failed checks" \
        in flat
    assert f"Revision: {revision} (promoted)" in flat
    history = flat[flat.index(next(x for x in flat if x.startswith("History"))) + 2:]
    reasons = [line.split()[3] for line in history]
    rollout = reasons[reasons.index("NewRevision"):]
    assert rollout == ["NewRevision", "WeightIncreased", "WeightIncreased", "WeightIncreased",
                       "Promoting", "Promoted"], history
    assert any(line.startswith(f"Last analysis: revision {revision}, weight 60") for line in flat)

    # The same as a kubectl plugin: kubectl finds kubectl-canary on PATH.
    kubectl = str(locate()["kubectl"])
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    plugin = await asyncio.create_subprocess_exec(
        kubectl, "canary", "status", "-n", namespace,
        env={**command_env(environment), "PATH": path}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    said, complaint = await asyncio.wait_for(plugin.communicate(), timeout=120)
    assert plugin.returncode == 0, complaint.decode()
    assert squashed(said.decode())[1].startswith(f"{namespace} podinfo Succeeded")


@pytest.mark.usefixtures("running_controller")
async def test_watch_exits_1_on_a_rollback_and_every_command_names_the_metric(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start(kube, environment, namespace)
    async with PlainWatch(environment, namespace) as watching:
        await watching.until("waiting for a new revision")
        await deploy(kube, namespace, {"revision": "2", "devenv.canary.dev/error-rate": "0.2"})
        code, text, err = await watching.finish()
    assert code == 1, err
    assert "event Warning RolledBack: Rolling back podinfo: request-success-rate" in text
    last = text.splitlines()[-1]
    assert re.search(r"Failed weight 0 \(step \d/3\) failed checks 2/2 \| "
                     r"request-success-rate [\d.]+ \(>= 99\) Failed", last), last

    failed: dict[str, Any] = await canary_object(kube, namespace)
    assert phase(failed) == "Failed"
    row = squashed(await cli(environment, "status", "-n", namespace))[1]
    assert row.startswith(f"{namespace} podinfo Failed 0 2/2 Canary ")
    assert re.search(r"AnalysisFailed: Rolling back podinfo: request-success-rate [\d.]+ "
                     r"\(must be >= 99\) \(failed checks 2/2\)$", row), row
    described = squashed(await cli(environment, "describe", APP, "-n", namespace))
    check = next(line for line in described if line.startswith("request-success-rate ")
                 and "Failed" in line)
    assert re.match(r"request-success-rate [\d.]+ >= 99 Failed", check)
    assert any(re.search(r"Warning RolledBack Rolling back podinfo: request-success-rate", x)
               for x in described)


async def test_commands_name_a_missing_canary(environment: LocalEnvironment,
                                              namespace: str) -> None:
    for command in ("describe", "watch"):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "canary", command, "nothing", "-n", namespace,
            env=command_env(environment), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 1
        assert err.decode() == f"canary: error: Canary {namespace}/nothing not found\n"
    assert (await cli(environment, "status", "-n", namespace)) == "No canaries found.\n"


@pytest.mark.usefixtures("running_controller")
async def test_a_rollout_under_way_is_followed_from_its_current_step(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    """Started mid-rollout, watch does not wait for another one."""
    await start(kube, environment, namespace)
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Progressing", "the rollout to start")
    out = await cli(environment, "watch", APP, "-n", namespace)
    lines = out.splitlines()
    assert "waiting for a new revision" not in out
    assert lines[-1].split(" ", 1)[1].startswith(f"{namespace}/podinfo Succeeded")
