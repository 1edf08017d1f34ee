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
    every counter starts over and every range needs new scrapes. It is ready again once
    it has scraped every target it scraped before the stop (a target that was down
    then, such as a stopped controller's, is not waited for)."""
    scraped = await env.healthy_jobs()
    record = await restart.stop(env, "prometheus")
    started = False

    async def start_again() -> None:
        nonlocal started
        if started:
            return
        started = True
        if lose_data:
            await asyncio.to_thread(_remove_data, record.argv)
        await restart.start_again(env, record, lambda: env.targets_up(scraped),
                                  f"Prometheus to answer and scrape {sorted(scraped)} again")

    try:
        yield start_again
    finally:
        await start_again()


def _remove_data(argv: list[str]) -> None:
    """Remove the TSDB directory Prometheus was started with."""
    [flag] = [arg for arg in argv if arg.startswith("--storage.tsdb.path=")]
    shutil.rmtree(flag.split("=", 1)[1], ignore_errors=True)
