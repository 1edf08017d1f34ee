"""The load tester's HTTP endpoints.

- ``POST /``: a rollout hook. ``metadata.cmd`` is a ``hey`` command line; the load starts in
  the background and the hook is answered at once (200). The same command is not started
  again while it runs, so a hook called every analysis step keeps one load going.
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

from canary.errors import ConfigError
from canary.loadtester.gates import GateStore, Kind
from canary.loadtester.hey import LoadSpec, parse_hey
from canary.loadtester.traffic import generate

log = structlog.get_logger("canary.loadtester")


class LoadTester:
    """The aiohttp application and the loads it runs."""

    def __init__(self, gates: GateStore) -> None:
        self.gates = gates
        self.running: dict[str, asyncio.Task[None]] = {}
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
        metadata = payload.get("metadata") or {}
        command = metadata.get("cmd") if isinstance(metadata, dict) else None
        if not isinstance(command, str) or not command.strip():
            return _answer(400, "metadata.cmd must hold a hey command line")
        try:
            spec = parse_hey(command)
        except ConfigError as exc:
            return _answer(400, f"metadata.cmd: {exc}")
        if command in self.running:
            return _answer(200, "already running")
        canary = f"{payload.get('namespace', '')}/{payload.get('name', '')}"
        task = asyncio.create_task(self._run(command, spec, canary))
        self.running[command] = task
        return _answer(200, "started")

    async def _run(self, command: str, spec: LoadSpec, canary: str) -> None:
        log.info("load started", canary=canary, url=spec.url, concurrency=spec.concurrency,
                 rate=spec.total_rate, seconds=spec.duration)
        try:
            report = await generate(spec)
            log.info("load finished", canary=canary, url=spec.url, **report.summary())
        except Exception as exc:
            log.error("load failed", canary=canary, url=spec.url, error=str(exc))
        finally:
            self.running.pop(command, None)

    async def _stop_loads(self, _: web.Application) -> None:
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

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
