"""A fenced client asks its guard before every write and sends nothing it refuses;
reads and watches are never refused (a follower keeps its caches warm)."""

from __future__ import annotations

from typing import Any

import pytest

from canary.kube import KubeClient, NotLeader
from canary.kube import resources as r


class Answer:
    status = 200
    headers: dict[str, str] = {}

    async def read(self) -> bytes:
        return b"{}"

    def release(self) -> None:
        pass


class Transport:
    """Records what would have reached the API server."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def call_api(self, path: str, method: str, **options: Any) -> Answer:
        self.sent.append(method)
        return Answer()


def refuse() -> None:
    raise NotLeader("not the holder")


async def test_a_refused_write_is_never_sent() -> None:
    transport = Transport()
    client = KubeClient(transport).fenced(refuse)
    for write in (client.create(r.CONFIG_MAPS, {"metadata": {"name": "a"}}, "ns"),
                  client.merge_patch(r.CONFIG_MAPS, "a", {}, "ns"),
                  client.delete(r.CONFIG_MAPS, "a", "ns")):
        with pytest.raises(NotLeader):
            await write
    assert transport.sent == []


async def test_reads_pass_and_are_counted_with_the_unfenced_client() -> None:
    transport = Transport()
    plain = KubeClient(transport)
    client = plain.fenced(refuse)
    await client.get(r.CONFIG_MAPS, "a", "ns")
    assert transport.sent == ["GET"]
    assert plain.requests["GET"] == 1


async def test_an_allowed_write_is_sent() -> None:
    transport = Transport()
    await KubeClient(transport).fenced(lambda: None).merge_patch(r.CONFIG_MAPS, "a", {}, "ns")
    assert transport.sent == ["PATCH"]
