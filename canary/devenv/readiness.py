"""Checks that a component of the local environment is ready: each is polled until true.

A check may raise (connection refused, not found yet): the poller treats that as "not
yet" and reports the last error if the component never becomes ready.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from canary.kube import KubeClient, KubeError
from canary.kube import resources as r

Check = Callable[[], Awaitable[bool]]


def http_ok(url: str, verify: ssl.SSLContext | bool = True) -> Check:
    async def check() -> bool:
        async with httpx.AsyncClient(timeout=2, verify=verify) as http:
            return (await http.get(url)).status_code == 200
    return check


def https_ok(url: str, ca: Path | None = None) -> Check:
    """Checks that ``url`` answers 200; TLS verified against ``ca``, or not at all (the
    controller manager and scheduler serve self-signed certificates)."""
    return http_ok(url, ssl.create_default_context(cafile=str(ca)) if ca else False)


def etcd_healthy(url: str) -> Check:
    """Healthy as etcd's ``/health`` says: status 200 and ``"health": "true"``."""
    async def check() -> bool:
        async with httpx.AsyncClient(timeout=2) as http:
            response = await http.get(f"{url}/health")
            healthy = response.status_code == 200 and response.json().get("health") == "true"
            return bool(healthy)
    return check


def log_contains(path: Path, text: str) -> Check:
    def read() -> str:
        return path.read_text(errors="replace")

    async def check() -> bool:
        return text in await asyncio.to_thread(read)
    return check


async def exists(client: KubeClient, resource: r.Resource, name: str,
                 namespace: str | None = None) -> bool:
    try:
        await client.get(resource, name, namespace)
    except KubeError:
        return False
    return True


def _condition_true(obj: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


async def node_ready(client: KubeClient, name: str) -> bool:
    return _condition_true(await client.get(r.NODES, name), "Ready")


def crds_established(client: KubeClient, names: list[str]) -> Check:
    async def check() -> bool:
        for name in names:
            crd = await client.get(r.CUSTOM_RESOURCE_DEFINITIONS, name)
            if not _condition_true(crd, "Established"):
                return False
        return True
    return check


async def accepted(client: KubeClient, resource: r.Resource, name: str,
                   namespace: str | None = None) -> bool:
    """Whether an object's ``Accepted`` condition is True (a GatewayClass taken on by its
    controller)."""
    return _condition_true(await client.get(resource, name, namespace), "Accepted")
