"""Once the caches have synced, a worker starts for every Canary a few per turn of the
event loop, so that a thousand first reconciles do not hold it all at once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any, cast

from canary.controller.controller import Controller
from canary.kube import JSON, KubeClient
from canary.observability import ControllerMetrics
from canary.settings import Settings
from tests.unit.kube.fakes import initial_events


async def test_workers_start_a_few_per_turn_and_every_canary_gets_one() -> None:
    controller = Controller(cast(KubeClient, object()), Settings(),
                            metrics=ControllerMetrics(process_metrics=False))
    for i in range(100):
        controller.caches.canaries._put(("shop", f"c{i}"), {
            "metadata": {"namespace": "shop", "name": f"c{i}"}})
    woken: list[str] = []
    controller._wake = lambda namespace, name: woken.append(name)  # type: ignore[method-assign]
    between: list[int] = []

    async def other_task() -> None:
        while True:
            between.append(len(woken))
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    await controller._start_workers()
    other.cancel()
    assert sorted(woken) == sorted(f"c{i}" for i in range(100))
    steps = [b - a for a, b in itertools.pairwise(between)]
    assert max(steps) <= 25, between  # about 20 ms of first reconciles per turn


class Quiet:
    """An API server with nothing to list, whose watches send nothing."""

    async def list(self, *_: Any, **__: Any) -> JSON:
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, *_: Any, **options: Any) -> AsyncIterator[JSON]:
        if options.get("initial_events"):
            for event in initial_events(await self.list()):
                yield event
            return
        await asyncio.Event().wait()
        yield {}


async def test_what_waits_for_the_first_lists_runs_once_before_any_worker() -> None:
    """``canary run`` keeps the garbage collector off until every cache has listed."""
    calls: list[tuple[bool, bool]] = []
    controller = Controller(cast(KubeClient, Quiet()), Settings(),
                            metrics=ControllerMetrics(process_metrics=False),
                            on_synced=lambda: calls.append((controller.synced(),
                                                            controller._started)))
    running = asyncio.create_task(controller.run())
    try:
        for _ in range(200):
            if controller._started:
                break
            await asyncio.sleep(0.01)
        assert calls == [(True, False)]
    finally:
        await controller.stop()  # the notifier's log filter goes with it
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
