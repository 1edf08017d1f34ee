"""etcd's history, compacted through its JSON gateway (``etcdctl`` is not installed).

Compacting at the current revision removes every older revision: a watch that asks to
start before it is refused by etcd, and the API server answers that watch 410 Gone.
"""

from __future__ import annotations

import base64

import httpx


async def compact(etcd_url: str) -> int:
    """Compact etcd's history up to a revision ahead of everything read so far (see
    :func:`advance`); returns that revision."""
    current = await advance(etcd_url)
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{etcd_url}/v3/kv/compaction",
                                   json={"revision": str(current), "physical": True})
    response.raise_for_status()
    return current


async def advance(etcd_url: str, times: int = 2) -> int:
    """Write a key outside Kubernetes' ``/registry`` ``times`` times; returns the
    revision after. Compacting there puts every revision a client of the API server has
    seen at least ``times`` behind the compaction, so resuming from it fails."""
    key = base64.b64encode(b"/canary-faults/advance").decode()
    current = 0
    async with httpx.AsyncClient(timeout=10) as http:
        for step in range(times):
            response = await http.post(f"{etcd_url}/v3/kv/put", json={
                "key": key, "value": base64.b64encode(str(step).encode()).decode()})
            response.raise_for_status()
            current = int(response.json()["header"]["revision"])
    return current
