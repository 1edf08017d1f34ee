"""Reading an object from a watch cache when one holds it, else from the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from canary.kube.client import JSON, KubeClient
from canary.kube.resources import Resource

#: Finds an object in a watch cache, whole (reading what the cache left out of it):
#: (resource, namespace, name) -> object, or None when the cache does not hold it.
CachedGet = Callable[[Resource, str, str], Awaitable[JSON | None]]


async def read(client: KubeClient, cached: CachedGet | None, resource: Resource,
               name: str, namespace: str) -> JSON:
    """From the watch cache when it holds the object (no API request), else from the API."""
    if cached is not None:
        found = await cached(resource, namespace, name)
        if found is not None:
            return found
    return await client.get(resource, name, namespace)
