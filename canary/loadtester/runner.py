"""Running the tasks hooks ask for: background ones once at a time, blocking ones to
their end, every external command bounded by a timeout and an output limit."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

from canary.loadtester.commands import OUTPUT_LIMIT, CommandResult, run_command
from canary.loadtester.hey import LoadSpec
from canary.loadtester.tasks import Task
from canary.loadtester.traffic import generate

log = structlog.get_logger("canary.loadtester")

#: Characters of a command's output logged when it is logged.
_LOGGED = 4096


class Runner:
    """The background tasks in flight, by command, and how commands are bounded."""

    def __init__(self, command_timeout: float, output_limit: int = OUTPUT_LIMIT) -> None:
        self.command_timeout = command_timeout
        self.output_limit = output_limit
        self.running: dict[str, asyncio.Task[None]] = {}

    def start(self, task: Task, canary: str) -> bool:
        """Start ``task`` in the background; False when the same command still runs."""
        if task.command in self.running:
            return False
        work = (self._load(task.load, canary) if task.load is not None
                else self._background(task, canary))
        self.running[task.command] = asyncio.create_task(self._forget(task.command, work))
        return True

    async def run(self, task: Task, canary: str, timeout: float) -> CommandResult:
        """Run a blocking command to its end (or its timeout) and log how it went."""
        log.info("command started", canary=canary, command=task.command, timeout=timeout)
        result = await run_command(task.argv, timeout, self.output_limit)
        _log_result(result, canary, task, always_output=True)
        return result

    async def stop(self) -> None:
        """Cancel every background task (their commands' process groups are killed)."""
        for work in list(self.running.values()):
            work.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def _forget(self, command: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        finally:
            self.running.pop(command, None)

    async def _background(self, task: Task, canary: str) -> None:
        log.info("command started", canary=canary, command=task.command,
                 timeout=self.command_timeout)
        result = await run_command(task.argv, self.command_timeout, self.output_limit)
        _log_result(result, canary, task, always_output=task.log_output)

    async def _load(self, spec: LoadSpec, canary: str) -> None:
        log.info("load started", canary=canary, url=spec.url, concurrency=spec.concurrency,
                 rate=spec.total_rate, seconds=spec.duration)
        try:
            report = await generate(spec)
            log.info("load finished", canary=canary, url=spec.url, **report.summary())
        except Exception as exc:
            log.error("load failed", canary=canary, url=spec.url, error=str(exc))


def _log_result(result: CommandResult, canary: str, task: Task, always_output: bool) -> None:
    fields = {"canary": canary, "command": task.command, "status": result.status()}
    if result.ok:
        if always_output or task.log_output:
            fields["output"] = result.output[-_LOGGED:]
        log.info("command finished", **fields)
    else:
        log.error("command failed", **fields, output=result.output[-_LOGGED:])
