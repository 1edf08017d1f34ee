"""The load tester's endpoints, served on loopback and called as the controller does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from canary.loadtester import GateStore, LoadTester

#: A test client of the load tester's application.
Client = TestClient[web.Request, web.Application]

CANARY = {"name": "web", "namespace": "shop", "phase": "Progressing", "checksum": "abc"}


class Target:
    """An application under load: counts the requests it receives."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        return web.Response(text="ok")


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, str]]:
    app = Target()
    server = TestServer(app.app, host="127.0.0.1")
    await server.start_server()
    yield app, f"http://127.0.0.1:{server.port}/"
    await server.close()


async def start_tester(state: Path | None) -> Client:
    client = TestClient(TestServer(LoadTester(GateStore(state)).app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    client = await start_tester(tmp_path / "gates.json")
    yield client
    await client.close()


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


class TestLoad:
    async def test_a_rollout_hook_starts_the_load_and_is_answered_at_once(
            self, client: Client, target: tuple[Target, str]) -> None:
        app, url = target
        hook = CANARY | {"metadata": {"cmd": f"hey -n 30 -c 3 -H 'X-Test: 1' {url}"}}
        response = await client.post("/", json=hook)
        assert response.status == 200
        await wait_for(lambda: len(app.requests) == 30)
        await asyncio.sleep(0.2)
        assert len(app.requests) == 30
        assert all(r.headers["X-Test"] == "1" for r in app.requests)

    async def test_the_same_command_is_not_started_twice_while_it_runs(
            self, client: Client, target: tuple[Target, str]) -> None:
        app, url = target
        hook = CANARY | {"metadata": {"cmd": f"hey -z 1s -q 10 -c 2 {url}"}}
        answers = [await (await client.post("/", json=hook)).json() for _ in range(3)]
        assert [a["message"] for a in answers] == ["started", "already running",
                                                  "already running"]
        await asyncio.sleep(1.5)
        # Two workers at 10 req/s for one second (each sends its first request at once):
        # a duplicate load would have doubled this.
        assert 0 < len(app.requests) <= 22

    @pytest.mark.parametrize(("metadata", "message"), [
        ({}, "metadata.cmd must hold a command line"),
        ({"cmd": "hey -q x http://svc/"}, "-q"),
        ({"cmd": "hey http://svc/ http://other/"}, "unexpected argument"),
    ])
    async def test_hey_commands_that_cannot_be_read_are_refused(
            self, client: Client, metadata: dict[str, str], message: str) -> None:
        response = await client.post("/", json=CANARY | {"metadata": metadata})
        assert response.status == 400
        assert message in (await response.json())["message"]

    async def test_a_body_that_is_not_a_hook_payload_is_refused(self, client: Client) -> None:
        assert (await client.post("/", data=b"not json")).status == 400
        assert (await client.post("/gate/check", json=["web"])).status == 400
        assert (await client.post("/gate/check", json={"name": "web"})).status == 400


class TestGates:
    async def test_check_answers_403_until_the_gate_is_opened(self, client: Client) -> None:
        assert (await client.post("/gate/check", json=CANARY)).status == 403
        assert (await client.post("/gate/open", json=CANARY)).status == 200
        assert (await client.post("/gate/check", json=CANARY)).status == 200
        other = CANARY | {"name": "api"}
        assert (await client.post("/gate/check", json=other)).status == 403
        assert (await client.post("/gate/close", json=CANARY)).status == 200
        assert (await client.post("/gate/check", json=CANARY)).status == 403

    async def test_approve_and_halt_answer_without_state(self, client: Client) -> None:
        assert (await client.post("/gate/approve", json=CANARY)).status == 200
        assert (await client.post("/gate/halt", json=CANARY)).status == 403

    async def test_rollback_requests(self, client: Client) -> None:
        assert (await client.post("/rollback/check", json=CANARY)).status == 403
        await client.post("/rollback/open", json=CANARY)
        assert (await client.post("/rollback/check", json=CANARY)).status == 200
        assert await (await client.get("/gates")).json() == {
            "gate": {}, "rollback": {"shop/web": True}}

    async def test_an_opened_gate_is_still_open_after_a_restart(self, tmp_path: Path) -> None:
        first = await start_tester(tmp_path / "gates.json")
        await first.post("/gate/open", json=CANARY)
        await first.close()
        second = await start_tester(tmp_path / "gates.json")
        try:
            assert (await second.post("/gate/check", json=CANARY)).status == 200
        finally:
            await second.close()
