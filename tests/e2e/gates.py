"""A local HTTP endpoint standing in for webhook gates: each hook answers with the status
set for it and records what it received."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from aiohttp import web

from canary.devenv.process import free_port


@dataclass
class Gates:
    """An HTTP endpoint per hook: answers with the status set for it (200 by default)
    and records what it received. A hook in ``echo`` answers with the Authorization
    header it received, as a careless gate might."""

    url: str
    answers: dict[str, int] = field(default_factory=dict)
    echo: set[str] = field(default_factory=set)
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def calls(self, hook: str) -> list[dict[str, Any]]:
        return [body for name, body, _ in self.received if name == hook]


@pytest_asyncio.fixture(loop_scope="session")
async def gates() -> AsyncIterator[Gates]:
    port = free_port()
    state = Gates(f"http://127.0.0.1:{port}")

    async def answer(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        state.received.append((name, await request.json(), dict(request.headers)))
        text = (f"{name}: you sent {request.headers.get('Authorization')}"
                if name in state.echo else name)
        return web.Response(status=state.answers.get(name, 200), text=text)

    app = web.Application()
    app.router.add_post("/{name}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state
    await runner.cleanup()


def hooks(gates: Gates, *types: str, **extra: Any) -> list[dict[str, Any]]:
    """One webhook of each of ``types``, named after its type, at the gates' endpoint."""
    return [{"name": t, "type": t, "url": f"{gates.url}/{t}", "timeout": "2s", **extra}
            for t in types]
