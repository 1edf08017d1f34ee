"""Stopping the local environment's Prometheus and starting it again: a real outage of
the metrics server (its port refuses connections), with its data kept across it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from canary.devenv import LocalEnvironment
from canary.devenv import process as processes
from tests.e2e.waiting import wait_until


@contextlib.asynccontextmanager
async def prometheus_stopped(env: LocalEnvironment
                             ) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Stop Prometheus; yield how to start it again (with the same flags, data and
    port), which happens on leaving at the latest, so later tests find it running."""
    [record] = [p for p in env.processes if p.name == "prometheus"]
    processes.stop(record)
    started = False

    async def start_again() -> None:
        nonlocal started
        if started:
            return
        started = True
        again = processes.start(record.name, record.argv, Path(record.log), cwd=env.run_dir)
        env.processes[env.processes.index(record)] = again
        env.save()
        await wait_until(lambda: _scraping(env), bool,
                         "Prometheus to answer and scrape again", timeout=120, interval=0.5)

    try:
        yield start_again
    finally:
        await start_again()


async def _scraping(env: LocalEnvironment) -> bool:
    """Whether Prometheus is ready and has scraped every target since it started."""
    try:
        return await env.targets_up(set(env.scrape_targets))
    except ValueError:  # not ready yet: its answer is no JSON
        return False
