"""The configs' cache against a real API server: lists and watches carry only metadata
(a cluster's configs of hundreds of KB never travel), a change of content still arrives
as a new version, and a reader gets the content with one GET, kept until it changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canary.kube import KubeClient, Reflector
from canary.kube import resources as r
from canary.kube.trim import config_trimmer, metadata_only
from tests.e2e.waiting import wait_until

BIG = "x" * 200_000


def settings_map(namespace: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"value": value, "padding": BIG}}


@pytest.fixture
async def cache(kube: KubeClient, namespace: str) -> AsyncIterator[Reflector]:
    await kube.create(r.CONFIG_MAPS, settings_map(namespace, "blue"), namespace)
    reflector = Reflector(kube, r.CONFIG_MAPS, namespace, metadata_only=True,
                          transform=config_trimmer(lambda _: True))
    task = asyncio.create_task(reflector.run())
    await asyncio.wait_for(reflector.synced.wait(), 30)
    yield reflector
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_listed_config_holds_its_metadata_only(cache: Reflector,
                                                       namespace: str) -> None:
    listed = cache.get(namespace, "settings")
    assert listed is not None and metadata_only(listed)
    assert listed["kind"] == "ConfigMap" and "data" not in listed
    assert listed["metadata"]["resourceVersion"]


async def test_a_change_of_content_arrives_as_a_new_version_and_is_read_once(
        kube: KubeClient, cache: Reflector, namespace: str) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    # Only the config changed here: the namespace's kube-root-ca.crt, which the
    # controller-manager publishes into a new namespace, may arrive meanwhile.
    cache.add_handler(lambda kind, obj: seen.append((kind, obj))
                      if obj["metadata"]["name"] == "settings" else None)
    before = (cache.get(namespace, "settings") or {})["metadata"]["resourceVersion"]
    await kube.merge_patch(r.CONFIG_MAPS, "settings", {"data": {"value": "green"}},
                           namespace)

    async def cached() -> dict[str, Any] | None:
        return cache.get(namespace, "settings")
    changed = await wait_until(
        cached, lambda c: c is not None and c["metadata"]["resourceVersion"] != before,
        "the watch to deliver the change")
    assert changed is not None and metadata_only(changed) and "data" not in changed
    assert [kind for kind, _ in seen] == ["MODIFIED"]

    whole = await cache.fetch(namespace, "settings")
    assert whole is not None and whole["data"]["value"] == "green"
    kept = cache.get(namespace, "settings")
    assert kept is not None and not metadata_only(kept)
    assert kept["data"]["value"] == "green"
