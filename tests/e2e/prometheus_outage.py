"""Stopping the local environment's Prometheus and starting it again: a real outage of
the metrics server (its port refuses connections), with its data kept across it or
lost."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable

from canary.devenv import LocalEnvironment
from tests.e2e import restart


@contextlib.asynccontextmanager
async def prometheus_stopped(env: LocalEnvironment, *, lose_data: bool = False
                             ) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Stop Prometheus; yield how to start it again (with the same flags, data and
    port), which happens on leaving at the latest, so later tests find it running. With
    ``lose_data`` it starts again without its time series, as after losing its volume:
    every counter starts over and every range needs new scrapes."""
    record = await restart.stop(env, "prometheus")
    started = False

    async def start_again() -> None:
        nonlocal started
        if started:
            return
        started = True
        if lose_data:
            await asyncio.to_thread(_remove_data, record.argv)
        await restart.start_again(env, record, lambda: _scraping(env),
                                  "Prometheus to answer and scrape again")

    try:
        yield start_again
    finally:
        await start_again()


async def _scraping(env: LocalEnvironment) -> bool:
    """Whether Prometheus is ready and has scraped every target since it started (its
    answer is no JSON until it is ready: a ValueError, taken as not yet)."""
    return await env.targets_up(set(env.scrape_targets))


def _remove_data(argv: list[str]) -> None:
    """Remove the TSDB directory Prometheus was started with."""
    [flag] = [arg for arg in argv if arg.startswith("--storage.tsdb.path=")]
    shutil.rmtree(flag.split("=", 1)[1], ignore_errors=True)
