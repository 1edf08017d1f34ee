"""``canary loadtester`` as a real process behind a Canary's hooks: it loads the app
during the analysis, and its gates hold a rollout across its own restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from canary.devenv import LocalEnvironment
from canary.devenv.process import free_port
from canary.kube import KubeClient
from tests.e2e.loadtester_process import LoadTesterProcess
from tests.e2e.rollout import ANALYSIS, APP, canary_object, deploy, phase, start
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


@pytest.fixture
def loadtester(tmp_path: Path) -> Iterator[LoadTesterProcess]:
    process = LoadTesterProcess(tmp_path / "state" / "gates.json", tmp_path / "loadtester.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def commands_loadtester(tmp_path: Path) -> Iterator[LoadTesterProcess]:
    process = LoadTesterProcess(tmp_path / "state" / "gates.json",
                                tmp_path / "loadtester.log", "--allow-commands")
    process.start()
    yield process
    process.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def app_under_load() -> AsyncIterator[tuple[list[float], str]]:
    """A stand-in for the canary's pods (kwok runs none): records when requests arrive."""
    arrivals: list[float] = []

    async def handle(_: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.Response(text="ok")

    port = free_port()
    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield arrivals, f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_rollout_hooks_load_the_canary_during_the_analysis(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        loadtester: LoadTesterProcess, app_under_load: tuple[list[float], str]) -> None:
    arrivals, url = app_under_load
    hook = {"name": "load", "type": "rollout", "url": f"{loadtester.url}/", "timeout": "5s",
            "metadata": {"cmd": f"hey -z 3s -q 5 -c 2 {url}"}}
    await start(kube, environment, namespace, analysis={**ANALYSIS, "webhooks": [hook]})
    assert arrivals == []  # no load before a rollout
    await deploy(kube, namespace, {"revision": "2"})
    started = time.monotonic()
    done = await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: phase(c) in ("Succeeded", "Failed"),
                            "the rollout to finish", timeout=120)
    assert phase(done) == "Succeeded"
    assert arrivals and all(t >= started for t in arrivals)
    # 2 workers x 5 req/s: the load ran (and never more than one at a time).
    per_second: dict[int, int] = {}
    for t in arrivals:
        per_second[int(t)] = per_second.get(int(t), 0) + 1
    assert max(per_second.values()) <= 2 * 5 + 2


async def test_a_loadtester_gate_holds_promotion_across_the_loadtesters_restart(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        loadtester: LoadTesterProcess) -> None:
    gate = {"name": "approval", "type": "confirm-promotion",
            "url": f"{loadtester.url}/gate/check", "timeout": "5s"}
    await start(kube, environment, namespace, analysis={**ANALYSIS, "webhooks": [gate]})
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Progressing" and c["status"]["canaryWeight"] == 60,
                     "the analysis to reach its last step", timeout=90)
    payload = {"name": APP, "namespace": namespace}
    loadtester.stop()
    loadtester.start()  # nothing opened yet: still closed after a restart
    await asyncio.sleep(4)  # more than one analysis interval
    assert phase(await canary_object(kube, namespace)) == "Progressing"
    async with httpx.AsyncClient() as http:
        opened = await http.post(f"{loadtester.url}/gate/open", json=payload)
    assert opened.status_code == 200
    loadtester.stop()
    loadtester.start()  # opened: stays open after a restart
    done = await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: phase(c) in ("Succeeded", "Failed"),
                            "the promotion once the gate is open", timeout=60)
    assert phase(done) == "Succeeded"


async def test_a_pre_rollout_bash_hook_runs_in_a_load_tester_that_allows_commands(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, tmp_path: Path,
        commands_loadtester: LoadTesterProcess) -> None:
    """A conformance check as Flagger users write it: the rollout goes on once it passes."""
    ran = tmp_path / "conformance-ran"
    hook = {"name": "conformance", "type": "pre-rollout", "url": f"{commands_loadtester.url}/",
            "timeout": "10s",
            "metadata": {"type": "bash",
                         "cmd": f"printf 'a token' | grep token && touch {ran}"}}
    await start(kube, environment, namespace, analysis={**ANALYSIS, "webhooks": [hook]})
    assert not ran.exists()  # pre-rollout hooks run for a new revision only
    await deploy(kube, namespace, {"revision": "2"})
    done = await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: phase(c) in ("Succeeded", "Failed"),
                            "the rollout to finish", timeout=120)
    assert phase(done) == "Succeeded", commands_loadtester.log.read_text()[-2000:]
    assert ran.exists()
