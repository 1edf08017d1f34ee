"""Stopping a process of the local environment and starting it again with the same
flags, data and port: a real outage of that component, as a crash and a restart by its
supervisor would be."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from canary.devenv import LocalEnvironment
from canary.devenv import process as processes
from tests.e2e.waiting import wait_until

Ready = Callable[[], Awaitable[bool]]


def record_of(env: LocalEnvironment, name: str) -> processes.ProcessRecord:
    [record] = [p for p in env.processes if p.name == name]
    return record


async def stop(env: LocalEnvironment, name: str) -> processes.ProcessRecord:
    """Stop the component (SIGTERM, then SIGKILL), off the event loop; returns its
    record, for :func:`start_again`."""
    record = record_of(env, name)
    await asyncio.to_thread(processes.stop, record)
    return record


async def start_again(env: LocalEnvironment, record: processes.ProcessRecord, ready: Ready,
                      what: str, timeout: float = 120.0) -> processes.ProcessRecord:
    """Start a stopped component as it was, recorded in the environment's place of the
    old process (so that ``canary devenv down`` stops it); returns its record once
    ``ready`` says so."""
    again = processes.start(record.name, record.argv, Path(record.log), cwd=env.run_dir)
    env.processes[env.processes.index(record)] = again
    env.save()
    await wait_ready(ready, what, timeout)
    return again


async def wait_ready(ready: Ready, what: str, timeout: float = 120.0) -> None:
    """Wait until ``ready`` says so, failing the test naming ``what`` after ``timeout``."""
    await wait_until(lambda: _answers(ready), bool, what, timeout=timeout, interval=0.2)


async def _answers(ready: Ready) -> bool:
    """``ready``, with a component that does not answer yet taken as not ready."""
    try:
        return await ready()
    except (httpx.HTTPError, ValueError):
        return False
