"""The load tester's HTTP endpoints.

- ``POST /``: a rollout hook (see :mod:`canary.loadtester.tasks`). A background task (a
  ``hey`` load, or with ``--allow-commands`` a ``cmd`` / ``ghz`` command) starts and the
  hook is answered at once (200); the same command is not started again while it runs, so
  a hook called every analysis step keeps one going. A blocking command (``bash``,
  ``helm``, ``kubectl``) is answered when it ends: 200 on exit status 0, else 500 with
  the status and the end of its output. Commands not allowed are answered 403.
- ``POST /gate/check``, ``/gate/open``, ``/gate/close``: an approval gate per Canary (the
  hook payload's ``name`` and ``namespace``); ``check`` answers 200 when open, 403 when
  closed. ``/gate/approve`` always answers 200, ``/gate/halt`` always 403.
- ``POST /rollback/check``, ``/rollback/open``, ``/rollback/close``: a rollback request per
  Canary, for ``rollback`` hooks (200 means "roll back").
- ``GET /gates``: the state of every gate; ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from aiohttp import web

from canary.loadtester.commands import OUTPUT_LIMIT
from canary.loadtester.gates import GateStore, Kind
from canary.loadtester.runner import Runner
from canary.loadtester.tasks import Refused, Task, plan
from canary.models.base import parse_duration

log = structlog.get_logger("canary.loadtester")

#: Characters of a failed command's output in the answer: with the status, the answer
#: fits the excerpt of an answer the controller keeps in the Canary's status (200).
ANSWER_TAIL = 160
#: Seconds a blocking command ends before the caller's own timeout, so its answer (and
#: not the caller's "timed out") says what happened: at most one, at most a tenth.
_MARGIN = 1.0


class LoadTester:
    """The aiohttp application and the loads it runs."""

    def __init__(self, gates: GateStore, allow_commands: bool = False,
                 command_timeout: float = 3600.0, output_limit: int = OUTPUT_LIMIT) -> None:
        """``allow_commands`` lets hooks run programs other than the built-in ``hey``;
        ``command_timeout`` bounds a background command, and a blocking one when the
        hook does not say how long its caller waits."""
        self.gates = gates
        self.allow_commands = allow_commands
        self.runner = Runner(command_timeout, output_limit)
        self.app = web.Application()
        self.app.add_routes([
            web.post("/", self.start_load),
            web.get("/healthz", self.healthz),
            web.get("/gates", self.list_gates),
            web.post("/gate/approve", self.approve),
            web.post("/gate/halt", self.halt),
        ])
        for kind in ("gate", "rollback"):
            self.app.add_routes([
                web.post(f"/{kind}/check", self._handler(kind, None)),
                web.post(f"/{kind}/open", self._handler(kind, True)),
                web.post(f"/{kind}/close", self._handler(kind, False)),
            ])
        self.app.on_cleanup.append(self._stop_loads)

    async def start_load(self, request: web.Request) -> web.Response:
        payload = await _payload(request)
        try:
            task = plan(payload.get("metadata"), self.allow_commands)
        except Refused as refused:
            return _answer(refused.status, refused.message)
        canary = f"{payload.get('namespace', '')}/{payload.get('name', '')}"
        if not task.blocking:
            return _answer(200, "started" if self.runner.start(task, canary)
                           else "already running")
        return await self._run_blocking(task, canary, payload)

    async def _run_blocking(self, task: Task, canary: str,
                            payload: dict[str, Any]) -> web.Response:
        result = await self.runner.run(task, canary, self._timeout(payload))
        if not result.ok:
            tail = result.tail(ANSWER_TAIL)
            return _answer(500, f"{result.status()}: {tail}" if tail else result.status())
        if task.return_output:
            return web.json_response({"message": result.status(), "output": result.output})
        return _answer(200, result.status())

    def _timeout(self, payload: dict[str, Any]) -> float:
        """The hook's own timeout (sent by canary's controller), less a margin; else
        the load tester's."""
        text = payload.get("timeout")
        try:
            seconds = parse_duration(text) if isinstance(text, str) and text else None
        except ValueError:
            seconds = None
        if seconds is None or seconds <= 0:
            return self.runner.command_timeout
        return seconds - min(_MARGIN, seconds / 10)

    async def _stop_loads(self, _: web.Application) -> None:
        await self.runner.stop()

    def _handler(self, kind: Kind, set_open: bool | None) -> Any:
        async def handle(request: web.Request) -> web.Response:
            payload = await _payload(request)
            name, namespace = payload.get("name"), payload.get("namespace")
            if not isinstance(name, str) or not name or not isinstance(namespace, str) \
                    or not namespace:
                return _answer(400, "the payload needs the Canary's name and namespace")
            if set_open is None:
                if self.gates.is_open(kind, namespace, name):
                    return _answer(200, f"{kind} open")
                return _answer(403, f"{kind} closed")
            await asyncio.to_thread(self.gates.set, kind, namespace, name, set_open)
            state = "opened" if set_open else "closed"
            log.info(f"{kind} {state}", canary=f"{namespace}/{name}")
            return _answer(200, f"{kind} {state}")
        return handle

    async def approve(self, _: web.Request) -> web.Response:
        return _answer(200, "approved")

    async def halt(self, _: web.Request) -> web.Response:
        return _answer(403, "halted")

    async def healthz(self, _: web.Request) -> web.Response:
        return _answer(200, "ok")

    async def list_gates(self, _: web.Request) -> web.Response:
        return web.json_response(self.gates.snapshot())


async def _payload(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="the body must be a JSON hook payload") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return data


def _answer(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"message": text}),
                        content_type="application/json")


async def serve(tester: LoadTester, host: str, port: int,
                stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set."""
    runner = web.AppRunner(tester.app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("load tester listening", address=f"{host}:{port}",
             state=str(tester.gates.path) if tester.gates.path else "memory only")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
