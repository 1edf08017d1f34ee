"""The executor says at info what it created or changed, and nothing when its write
changed nothing."""

from __future__ import annotations

import copy
from collections.abc import MutableMapping
from typing import Any

from structlog.testing import capture_logs

from canary.controller.executor import APPLIED_ANNOTATION, Applied, Executor, fingerprint
from canary.core.actions import EnsurePrimary
from canary.models.canary import Canary
from canary.settings import Settings
from canary.targets.deployment import revision_of
from tests.unit.controller.caches import Cache, caches


class Server:
    """Stores what is written as the API server does: a new resourceVersion only when
    the object changed. ``cache`` is the watch cache, which only the test moves on."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.stored = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
                       for o in copy.deepcopy(objects)}
        self.cache = Cache(*objects)
        self.version = 10

    def _write(self, namespace: str, name: str, new: dict[str, Any]) -> dict[str, Any]:
        old = self.stored.get((namespace, name))
        unchanged = old is not None and {k: v for k, v in old.items() if k != "metadata"} \
            == {k: v for k, v in new.items() if k != "metadata"}
        if not unchanged:
            self.version += 1
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"] \
            if unchanged and old is not None else str(self.version)
        self.stored[(namespace, name)] = new
        return copy.deepcopy(new)

    async def apply(self, body: dict[str, Any], *, field_manager: str) -> dict[str, Any]:
        meta = body["metadata"]
        return self._write(meta["namespace"], meta["name"], copy.deepcopy(body))

    async def merge_patch(self, resource: object, name: str, patch: dict[str, Any],
                          namespace: str, *, field_manager: str | None = None
                          ) -> dict[str, Any]:
        new = copy.deepcopy(self.stored[(namespace, name)])
        new["spec"] |= patch["spec"]
        return self._write(namespace, name, new)


def config_map(data: str, version: str = "5") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-primary", "namespace": "shop",
                         "resourceVersion": version},
            "data": {"key": data}}


def executor(server: Server) -> Executor:
    return Executor(server, Settings(), caches(), None)  # type: ignore[arg-type]


def logged(logs: list[MutableMapping[str, Any]]) -> list[tuple[str, str, str]]:
    return [(entry["event"], entry["kind"], entry["object"]) for entry in logs
            if entry["log_level"] == "info"]


class TestApply:
    async def test_a_new_object_is_said_created(self) -> None:
        server = Server()
        with capture_logs() as logs:
            assert await executor(server).apply(config_map("a"), server.cache) is Applied.CREATED  # type: ignore[arg-type]
        assert logged(logs) == [("created", "ConfigMap", "shop/web-primary")]

    async def test_a_create_sent_again_before_the_cache_shows_it_is_said_once(self) -> None:
        server, stale = Server(), Cache()
        writer = executor(server)
        with capture_logs() as logs:
            outcomes = [await writer.apply(config_map("a"), stale) for _ in range(2)]  # type: ignore[arg-type]
        assert outcomes == [Applied.CREATED, Applied.UNCHANGED]
        assert logged(logs) == [("created", "ConfigMap", "shop/web-primary")]

    async def test_a_change_put_back_is_a_repair_once_while_the_cache_lags(self) -> None:
        """Someone edited canary's copy; canary puts it back, and the next apply, from a
        cache still showing the edit, finds it already back."""
        server = Server()
        writer = executor(server)
        await writer.apply(config_map("a"), Cache())  # type: ignore[arg-type]
        edited = copy.deepcopy(server.stored[("shop", "web-primary")])
        edited["data"] = {"key": "edited"}
        server.stored[("shop", "web-primary")] = server._write("shop", "web-primary", edited)
        stale = Cache(copy.deepcopy(server.stored[("shop", "web-primary")]))
        outcomes = [await writer.apply(config_map("a"), stale) for _ in range(2)]  # type: ignore[arg-type]
        assert outcomes == [Applied.RESTORED, Applied.UNCHANGED]

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
            assert await executor(Server()).apply(desired, Cache(shown)) is Applied.UNCHANGED  # type: ignore[arg-type]
        assert logs == []


def scaling_canary() -> Canary:
    return Canary.model_validate({
        "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "service": {"port": 80}, "analysis": {"interval": "10s", "threshold": 2,
                                                       "stepWeight": 10, "maxWeight": 30}}})


class TestScale:
    def setup_method(self) -> None:
        target = {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "5"},
                  "spec": {"replicas": 0}}
        primary = {"metadata": {"name": "web-primary", "namespace": "shop",
                                "resourceVersion": "6"}, "spec": {"replicas": 3}}
        self.server = Server(target, primary)
        self.executor = Executor(self.server, Settings(),  # type: ignore[arg-type]
                                 caches(deployments=self.server.cache), None)  # type: ignore[arg-type]

    async def test_scaling_says_from_how_many_to_how_many(self) -> None:
        with capture_logs() as logs:
            await self.executor._scale_canary(scaling_canary(), None)
        assert [(e["event"], e["kind"], e["object"], e["replicas"]) for e in logs] == [
            ("scaled", "Deployment", "shop/web", "0 -> 3")]

    async def test_the_same_scale_sent_again_from_a_stale_cache_is_said_once(self) -> None:
        with capture_logs() as logs:
            await self.executor._scale_canary(scaling_canary(), None)
            # The watch has not delivered the new replicas: the scale is sent again.
            await self.executor._scale_canary(scaling_canary(), None)
        assert [e["event"] for e in logs] == ["scaled"]
        assert self.server.stored[("shop", "web")]["spec"]["replicas"] == 3

    async def test_nothing_to_scale_nothing_said(self) -> None:
        with capture_logs() as logs:
            await self.executor._scale_canary(scaling_canary(), 0)
        assert logs == []


def target() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "5"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": "v2"}]}}}}


class TestRepairs:
    """Whether an established Canary's object was missing is read from what the server
    answered, not from a watch cache that may lag behind canary's own writes."""

    def setup_method(self) -> None:
        self.server = Server(target())
        self.stale = Cache(target())  # never shows the primary
        self.executor = Executor(self.server, Settings(),  # type: ignore[arg-type]
                                 caches(deployments=self.stale), None)  # type: ignore[arg-type]

    async def ensure_primary(self, established: bool) -> list[str]:
        lookup = await self.executor.caches.config_contents("shop", target()["spec"]["template"])
        action = EnsurePrimary(revision_of(target(), lookup))
        owner = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
                 "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web"}}
        return await self.executor.execute(owner, scaling_canary(), (action,), established)

    async def test_a_create_sent_again_before_the_watch_shows_it_is_no_repair(self) -> None:
        """Initialized, the next reconcile comes before the watch brings the primary."""
        assert await self.ensure_primary(established=False) == []
        assert await self.ensure_primary(established=True) == []
        assert ("shop", "web-primary") in self.server.stored

    async def test_an_object_deleted_after_canary_created_it_is_reported(self) -> None:
        await self.ensure_primary(established=False)
        del self.server.stored[("shop", "web-primary")]
        assert await self.ensure_primary(established=True) == [
            "Deployment web-primary was missing: created again"]
