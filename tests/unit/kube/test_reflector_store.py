"""The Reflector's store, kept by namespace: whatever the lists and watch events, it
holds what a plain map of (namespace, name) would, and a namespace's objects are found
without the others'."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.kube import JSON, Reflector
from canary.kube import resources as r
from tests.unit.kube.fakes import initial_events

NAMES = st.sampled_from(["a", "b", "c"])
NAMESPACES = st.sampled_from(["shop", "pay", "ops"])
#: A watch event (type, namespace, name) or a list of (namespace, name)s.
STEPS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]), NAMESPACES, NAMES),
    st.lists(st.tuples(NAMESPACES, NAMES), max_size=5)), max_size=25)


def obj(namespace: str, name: str, version: int) -> JSON:
    return {"metadata": {"namespace": namespace, "name": name,
                         "resourceVersion": str(version)}}


class Scripted:
    """Answers the Reflector's list with the next listing, and its watch with events."""

    def __init__(self) -> None:
        self.listing: list[JSON] = []
        self.events: list[JSON] = []

    async def list(self, resource: Any, namespace: str | None = None, **_: Any) -> JSON:
        return {"items": self.listing, "metadata": {"resourceVersion": "1"}}

    async def watch(self, *_: Any, **options: Any) -> AsyncIterator[JSON]:
        if options.get("initial_events"):
            for event in initial_events(await self.list(None)):
                yield event
            return
        for event in self.events:
            yield event


async def replay(steps: list[Any]) -> tuple[Reflector, dict[tuple[str, str], JSON]]:
    api = Scripted()
    reflector = Reflector(api, r.CONFIG_MAPS)  # type: ignore[arg-type]
    expected: dict[tuple[str, str], JSON] = {}
    await reflector._relist(None)  # a Reflector lists before it watches
    for version, step in enumerate(steps):
        if isinstance(step, list):
            api.listing = [obj(ns, name, version) for ns, name in dict.fromkeys(step)]
            await reflector._relist(None)
            expected = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
                        for o in api.listing}
            continue
        kind, ns, name = step
        api.events = [{"type": kind, "object": obj(ns, name, version)}]
        await reflector._watch_once(None)
        if kind == "DELETED":
            expected.pop((ns, name), None)
        else:
            expected[(ns, name)] = api.events[0]["object"]
    return reflector, expected


@given(STEPS)
def test_the_store_holds_what_the_lists_and_events_said(steps: list[Any]) -> None:
    reflector, expected = asyncio.run(replay(steps))
    assert len(reflector) == len(expected)
    assert sorted(map(str, reflector.items())) == sorted(map(str, expected.values()))
    for namespace in ("shop", "pay", "ops"):
        assert sorted(map(str, reflector.items(namespace))) == sorted(
            str(o) for (ns, _), o in expected.items() if ns == namespace)
    for (namespace, name), stored in expected.items():
        assert reflector.get(namespace, name) == stored
    assert reflector.get("shop", "missing") is None
