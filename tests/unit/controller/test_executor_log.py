"""The executor says at info what it created or changed, and nothing when its write
changed nothing."""

from __future__ import annotations

import copy
from typing import Any

from structlog.testing import capture_logs

from canary.controller.executor import APPLIED_ANNOTATION, Executor, fingerprint
from canary.models.canary import Canary
from canary.settings import Settings
from tests.unit.controller.test_worker import Cache


class Server:
    """Answers an apply as the API server does: a new resourceVersion only when the
    object changed."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.cache = Cache(*objects)
        self.version = 10

    async def apply(self, body: dict[str, Any], *, field_manager: str) -> dict[str, Any]:
        meta = body["metadata"]
        stored = self.cache.get(meta["namespace"], meta["name"])
        merged = copy.deepcopy(body)
        if stored is not None and {k: v for k, v in stored.items() if k != "metadata"} == \
                {k: v for k, v in body.items() if k != "metadata"}:
            merged["metadata"]["resourceVersion"] = stored["metadata"]["resourceVersion"]
        else:
            self.version += 1
            merged["metadata"]["resourceVersion"] = str(self.version)
        return merged

    async def merge_patch(self, *args: object) -> dict[str, Any]:
        return {}


def config_map(data: str, version: str = "5") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-primary", "namespace": "shop",
                         "resourceVersion": version},
            "data": {"key": data}}


def executor(server: Server) -> Executor:
    return Executor(server, Settings(), {}, None, None)  # type: ignore[arg-type]


def logged(logs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(entry["event"], entry["kind"], entry["object"]) for entry in logs
            if entry["log_level"] == "info"]


class TestApply:
    async def test_a_new_object_is_said_created(self) -> None:
        server = Server()
        with capture_logs() as logs:
            assert await executor(server).apply(config_map("a"), server.cache)  # type: ignore[arg-type]
        assert logged(logs) == [("created", "ConfigMap", "shop/web-primary")]

    async def test_a_different_object_is_said_changed(self) -> None:
        server = Server(config_map("old"))
        with capture_logs() as logs:
            await executor(server).apply(config_map("new"), server.cache)  # type: ignore[arg-type]
        assert logged(logs) == [("changed", "ConfigMap", "shop/web-primary")]

    async def test_a_write_the_server_found_done_is_not_said(self) -> None:
        """The cache lagged behind (no applied stamp yet): the apply is sent, but the
        object stays as it was."""
        server = Server(config_map("same"))
        with capture_logs() as logs:
            await executor(server).apply(config_map("same"), server.cache)  # type: ignore[arg-type]
        assert logged(logs) == []

    async def test_nothing_sent_nothing_said(self) -> None:
        """The cache already shows what would be applied, stamp and all: no write."""
        desired = config_map("a")
        shown = copy.deepcopy(desired)
        shown["metadata"]["annotations"] = {APPLIED_ANNOTATION: fingerprint(desired)}
        with capture_logs() as logs:
            assert not await executor(Server()).apply(desired, Cache(shown))  # type: ignore[arg-type]
        assert logs == []


async def test_scaling_says_from_how_many_to_how_many() -> None:
    target = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 0}}
    primary = {"metadata": {"name": "web-primary", "namespace": "shop"},
               "spec": {"replicas": 3}}
    canary = Canary.model_validate({
        "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80}, "analysis": {"interval": "10s", "threshold": 2,
                                                       "stepWeight": 10, "maxWeight": 30}}})
    caches = {"deployments": Cache(target, primary)}
    scaling = Executor(Server(), Settings(), caches, None, None)  # type: ignore[arg-type]
    with capture_logs() as logs:
        await scaling._scale_canary(canary, None)
        await scaling._scale_canary(canary, 0)  # already 0 in the cache: no write
    assert [(e["event"], e["kind"], e["object"], e["replicas"]) for e in logs] == [
        ("scaled", "Deployment", "shop/web", "0 -> 3")]
