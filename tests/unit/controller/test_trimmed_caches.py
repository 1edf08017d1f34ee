"""The caches keep only what decisions read, and the decisions are the same as from
whole objects: a target's revision, the primary built from it and its configs' copies do
not change when the configs are cached without their content and the Deployments
without their managedFields or pod spec; the configs canary reads and the Deployments it
rolls out are kept whole."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.controller.caches import Caches
from canary.controller.controller import Controller
from canary.controller.executor import Applied, Executor
from canary.core.observation import HookResult
from canary.kube import KubeClient, NotFound, Reflector, Resource
from canary.kube.client import as_resource
from canary.kube.trim import LAST_APPLIED, is_trimmed, metadata_only
from canary.models.canary import Canary
from canary.observability import ControllerMetrics
from canary.settings import KubeSettings, Settings
from canary.targets import configs
from canary.targets.deployment import MANAGED_BY, primary_manifest, revision_of
from tests.unit.kube.fakes import initial_events, settle

JSON = dict[str, Any]
NAMES = ["a", "b", "c", "d"]


class Cluster:
    """Answers lists, watch-lists and GETs from whole objects, by plural (lists as
    metadata only when asked, as the API server does); counts the GETs."""

    def __init__(self, objects: dict[str, list[JSON]]) -> None:
        self.objects = objects
        self.gets: list[str] = []
        self.listed: list[str] = []
        #: What happens between a write and its answer (a watch event arriving).
        self.while_writing: Callable[[], Awaitable[None]] | None = None

    async def list(self, resource: Resource, namespace: str | None = None,
                   metadata_only: bool = False, **_: Any) -> JSON:
        self.listed.append(resource.plural)
        items = copy.deepcopy(self.objects.get(resource.plural, []))
        if metadata_only:
            items = [as_resource(resource, {"apiVersion": "meta.k8s.io/v1",
                                            "kind": "PartialObjectMetadata",
                                            "metadata": o["metadata"]}) for o in items]
        return {"items": items, "metadata": {"resourceVersion": "9"}}

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    **options: Any) -> AsyncIterator[JSON]:
        """A watch-list's initial events; a plain watch sends nothing."""
        if options.get("initial_events"):
            listing = await self.list(resource, namespace,
                                      metadata_only=bool(options.get("metadata_only")))
            for event in initial_events(listing):
                yield event
            return
        await asyncio.Event().wait()

    async def apply(self, body: JSON, *, field_manager: str, **_: Any) -> JSON:
        """Server-side apply, as far as the caches see it: the object whole at a new
        resourceVersion."""
        plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[body["kind"]]
        stored = self.objects.setdefault(plural, [])
        name = body["metadata"]["name"]
        version = max((int(o["metadata"]["resourceVersion"]) for o in stored), default=0)
        written = copy.deepcopy(body)
        written["metadata"] |= {"namespace": "shop", "resourceVersion": str(version + 1)}
        stored[:] = [o for o in stored if o["metadata"]["name"] != name] + [written]
        if self.while_writing is not None:
            await self.while_writing()
        return copy.deepcopy(written)

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON:
        self.gets.append(f"{resource.plural}/{name}")
        for obj in self.objects.get(resource.plural, []):
            if obj["metadata"]["name"] == name:
                return copy.deepcopy(obj)
        raise NotFound(404, "NotFound", f"{name} not found")


def meta(name: str, version: int, **extra: Any) -> JSON:
    return {"name": name, "namespace": "shop", "resourceVersion": str(version),
            "managedFields": [{"manager": "kubectl", "operation": "Update",
                               "fieldsV1": {"f:data": {}, "f:spec": {"f:replicas": {}}}}],
            "annotations": {LAST_APPLIED: '{"big": "copy"}'}, **extra}


text = st.text(max_size=8)
content = st.dictionaries(st.sampled_from(["k", "key.txt", "app.yaml"]), text, max_size=3)
config_objects = st.builds(
    lambda kind, name, version, data, binary, string, type_: {
        "apiVersion": "v1", "kind": kind, "metadata": meta(name, version),
        **({"data": data} if data is not None else {}),
        **({"binaryData": binary} if binary else {}),
        **({"stringData": string} if string else {}),
        **({"type": type_} if kind == "Secret" and type_ else {})},
    st.sampled_from(["ConfigMap", "Secret"]), st.sampled_from(NAMES), st.integers(1, 99),
    st.none() | content, content, content, st.sampled_from(["", "Opaque", "kubernetes.io/tls"]))
references = st.lists(st.tuples(
    st.sampled_from(["volume", "projected", "envFrom", "env"]),
    st.sampled_from(["ConfigMap", "Secret"]), st.sampled_from([*NAMES, "missing"])), max_size=5)


def pod_spec(refs: list[tuple[str, str, str]]) -> JSON:
    volumes: list[JSON] = []
    container: JSON = {"name": "app", "image": "app:1", "envFrom": [], "env": []}
    for i, (how, kind, name) in enumerate(refs):
        cm = kind == "ConfigMap"
        if how == "volume":
            volumes.append({"name": f"v{i}", **({"configMap": {"name": name}} if cm
                                                else {"secret": {"secretName": name}})})
        elif how == "projected":
            source = {"configMap" if cm else "secret": {"name": name}}
            volumes.append({"name": f"v{i}", "projected": {"sources": [source]}})
        elif how == "envFrom":
            container["envFrom"].append({"configMapRef" if cm else "secretRef": {"name": name}})
        else:
            key = "configMapKeyRef" if cm else "secretKeyRef"
            container["env"].append({"name": f"E{i}", "valueFrom": {key: {"name": name,
                                                                          "key": "k"}}})
    return {"volumes": volumes, "containers": [container]}


def target(refs: list[tuple[str, str, str]]) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta("web", 5, labels={"app": "web"}),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": pod_spec(refs)}}}


def cluster_of(deployment: JSON, objects: list[JSON]) -> dict[str, list[JSON]]:
    unique = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    return {"deployments": [deployment],
            "configmaps": [o for (kind, _), o in unique.items() if kind == "ConfigMap"],
            "secrets": [o for (kind, _), o in unique.items() if kind == "Secret"],
            "canaries": [{"apiVersion": "canary.dev/v1", "kind": "Canary",
                          "metadata": meta("web", 1), "spec": {"targetRef": {"name": "web"}}}]}


def whole_lookup(objects: dict[str, list[JSON]]) -> configs.Lookup:
    found = {(o["kind"], o["metadata"]["name"]): o
             for plural in ("configmaps", "secrets") for o in objects[plural]}
    return lambda kind, name: found.get((kind, name))


async def what_decisions_see(caches: Caches, name: str = "web"
                             ) -> tuple[str, JSON, list[JSON]]:
    """The revision, primary and config copies the worker and executor build from the
    caches (the worker's and the executor's own calls)."""
    cached = await caches.whole_deployment("shop", name)
    assert cached is not None
    lookup = await caches.config_contents("shop", cached["spec"]["template"])
    revision = revision_of(cached, lookup)
    owner = {"apiVersion": "canary.dev/v1", "kind": "Canary",
             "metadata": {"name": "web", "uid": "u"}}
    return (revision, primary_manifest(cached, owner, revision, 3, ("app",), lookup),
            configs.primary_copies(cached["spec"]["template"], lookup))


async def fill(caches: Caches) -> None:
    """The first lists, in the controller's order: the configs last."""
    for cache in sorted(caches.all(), key=lambda c: c in caches.config_caches()):
        await cache._relist(None)


@settings(max_examples=150, deadline=None)
@given(references, st.lists(config_objects, max_size=8), st.booleans(), st.booleans())
def test_trimmed_caches_give_the_revision_and_primary_of_whole_objects(
        refs: list[tuple[str, str, str]], objects: list[JSON], keep_any: bool,
        keep_deployment: bool) -> None:
    """Whether the configs and the target were kept whole or trimmed (then fetched),
    what the decisions see equals what whole objects give."""
    deployment = target(refs)
    world = cluster_of(deployment, objects)
    lookup = whole_lookup(world)
    revision = revision_of(deployment, lookup)
    owner = {"apiVersion": "canary.dev/v1", "kind": "Canary",
             "metadata": {"name": "web", "uid": "u"}}
    expected = (revision, primary_manifest(deployment, owner, revision, 3, ("app",), lookup),
                configs.primary_copies(deployment["spec"]["template"], lookup))

    async def check() -> None:
        api = Cluster(world)
        caches = Caches.watching(cast(KubeClient, api), KubeSettings(),
                                 keep_content=lambda _: keep_any,
                                 keep_deployment=lambda _: keep_deployment)
        await fill(caches)
        assert is_trimmed(caches.deployments.get("shop", "web")) is not keep_deployment
        assert await what_decisions_see(caches) == expected
        assert ("deployments/web" in api.gets) is not keep_deployment
        cached = caches.deployments.get("shop", "web") or {}
        if not keep_deployment:
            assert metadata_only(cached) and "annotations" not in cached["metadata"]
            return
        assert LAST_APPLIED not in cached["metadata"]["annotations"]
        assert cached["metadata"]["managedFields"] == [{
            "manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    asyncio.run(check())


def controller_over(objects: dict[str, list[JSON]]) -> tuple[Controller, Cluster]:
    api = Cluster(objects)
    controller = Controller(cast(KubeClient, api), Settings(),
                            metrics=ControllerMetrics(process_metrics=False))
    controller._wake = lambda namespace, name: None  # type: ignore[method-assign]
    return controller, api


def workload(name: str, version: int = 1, **extra: Any) -> JSON:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta(name, version, **extra),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": pod_spec([("volume", "ConfigMap", "unused")])}},
            "status": {"replicas": 2, "readyReplicas": 2}}


def named(kind: str, name: str, **extra: Any) -> JSON:
    return {"apiVersion": "v1", "kind": kind, "metadata": meta(name, 1, **extra),
            "data": {"token": "c2VjcmV0", "big": "x" * 1000}}


def busy_namespace() -> dict[str, list[JSON]]:
    canary = {"apiVersion": "canary.dev/v1", "kind": "Canary", "metadata": meta("web", 1),
              "spec": {"targetRef": {"name": "web"}, "analysis": {"webhooks": [
                  {"name": "gate", "url": "http://gate", "secretRef": {"name": "hook"}}]}}}
    return {
        "canaries": [canary],
        "deployments": [target([("volume", "ConfigMap", "a"), ("env", "Secret", "a")]),
                        workload("web-primary", labels=dict(MANAGED_BY)),
                        workload("batch")],
        "metrictemplates": [{"metadata": meta("latency", 1), "spec": {
            "provider": {"type": "prometheus", "secretRef": {"name": "prom"}},
            "query": "up"}}],
        "alertproviders": [{"metadata": meta("slack", 1), "spec": {
            "type": "slack", "secretRef": {"name": "slack"}}}],
        "configmaps": [named("ConfigMap", "a"), named("ConfigMap", "unused"),
                       named("ConfigMap", "a-primary", labels=dict(MANAGED_BY))],
        "secrets": [named("Secret", n) for n in ("a", "hook", "prom", "slack", "unused")]}


async def read_every_config(caches: Caches) -> None:
    """Each config read whole once, as a reader that needs its content would."""
    for cache in caches.config_caches():
        for obj in list(cache.items()):
            await cache.fetch("shop", obj["metadata"]["name"])


async def test_configs_are_listed_without_content() -> None:
    """No config's content travels in a list: every config is cached as its metadata,
    marked as such (its content unknown, not empty), and found without a GET."""
    controller, api = controller_over(busy_namespace())
    await fill(controller.caches)
    caches = controller.caches
    for cache in caches.config_caches():
        assert len(cache) and all(metadata_only(o) and "data" not in o for o in cache.items())
    unused = caches.secrets.get("shop", "unused")
    assert unused is not None and unused["kind"] == "Secret"
    assert set(unused["metadata"]) == {"name", "namespace", "resourceVersion"}
    assert api.gets == []


async def test_only_the_configs_canary_reads_are_kept_whole_once_read() -> None:
    controller, _ = controller_over(busy_namespace())
    await fill(controller.caches)
    caches = controller.caches
    await read_every_config(caches)
    whole = {(c.resource.kind, o["metadata"]["name"])
             for c in caches.config_caches() for o in c.items() if not is_trimmed(o)}
    assert whole == {("ConfigMap", "a"), ("Secret", "a"), ("Secret", "hook"),
                     ("Secret", "prom"), ("Secret", "slack")}
    copy_ = caches.configmaps.get("shop", "a-primary")  # canary's copy, known by digest
    assert copy_ is not None and "data" not in copy_ and copy_["metadata"]["labels"]
    unused = caches.secrets.get("shop", "unused")
    assert unused is not None and "data" not in unused and not metadata_only(unused)
    assert set(unused["metadata"]) == {"name", "namespace", "resourceVersion"}


async def test_a_relist_keeps_what_was_read_of_an_unchanged_config() -> None:
    """A re-list (after 410 Gone) sends metadata only again: the content read of a
    config that has not changed since stays cached, and one that changed is known as
    changed (its content to be read again)."""
    objects = busy_namespace()
    controller, api = controller_over(objects)
    await fill(controller.caches)
    caches = controller.caches
    await read_every_config(caches)
    objects["configmaps"][0] = {**named("ConfigMap", "a"), "data": {"token": "new"}}
    objects["configmaps"][0]["metadata"]["resourceVersion"] = "2"
    await caches.configmaps._relist(None)
    assert metadata_only(caches.configmaps.get("shop", "a") or {})
    assert (caches.secrets.get("shop", "a") or {})["data"]["token"] == "c2VjcmV0"
    gets = len(api.gets)
    lookup = await caches.config_contents("shop", target(
        [("volume", "ConfigMap", "a"), ("env", "Secret", "a")])["spec"]["template"])
    assert (lookup("ConfigMap", "a") or {})["data"] == {"token": "new"}
    assert api.gets[gets:] == ["configmaps/a"]


async def test_a_reference_added_later_fetches_the_content_once() -> None:
    """A Canary's target that starts referring to a config cached without its content:
    the revision is computed from the content read from the API, and the cache then
    keeps that config whole."""
    objects = busy_namespace()
    controller, api = controller_over(objects)
    await fill(controller.caches)
    caches = controller.caches
    await read_every_config(caches)
    changed = target([("volume", "ConfigMap", "a"), ("envFrom", "ConfigMap", "unused")])
    changed["metadata"]["resourceVersion"] = "6"
    objects["deployments"] = [changed]
    await caches.deployments._relist(None)
    gets = len(api.gets)
    seen = await what_decisions_see(caches)
    assert seen[0] == revision_of(changed, whole_lookup(objects))
    assert api.gets[gets:] == ["configmaps/unused"]
    assert not is_trimmed(caches.configmaps.get("shop", "unused"))
    await what_decisions_see(caches)
    assert api.gets[gets:] == ["configmaps/unused"]


async def test_secret_readers_fetch_what_the_cache_trimmed() -> None:
    """A Secret named by a new AlertProvider or webhook before the cache knew: the
    readers get its content from the API instead of an empty Secret."""
    controller, api = controller_over(busy_namespace())
    await fill(controller.caches)
    caches = controller.caches
    secret = await caches.whole_secret("shop", "unused")
    assert secret is not None and secret["data"]["token"] == "c2VjcmV0"
    assert await caches.whole_secret("shop", "nowhere") is None
    assert api.gets == ["secrets/unused"]


async def test_the_analysis_reads_a_provider_secret_once_while_it_does_not_change() -> None:
    """The Secret a MetricTemplate's provider names, read at every analysis step: one
    GET after the list (which sent no content), then from the cache."""
    controller, api = controller_over(busy_namespace())
    await fill(controller.caches)
    secrets = Resource("", "v1", "secrets", "Secret")
    for _ in range(3):
        found = await controller.caches.cached(secrets, "shop", "prom")
        assert found is not None and found["data"]["token"] == "c2VjcmV0"
    assert api.gets == ["secrets/prom"]
    assert await controller.caches.cached(secrets, "shop", "nowhere") is None


async def test_a_deployment_canary_does_not_read_is_cached_as_its_metadata() -> None:
    """The target and the primary whole; another Deployment as its metadata only (no
    spec, status or field managers), marked so, and nothing read from the API."""
    controller, api = controller_over(busy_namespace())
    await fill(controller.caches)
    deployments = controller.caches.deployments
    assert {o["metadata"]["name"] for o in deployments.items() if not is_trimmed(o)} == \
        {"web", "web-primary"}
    batch = deployments.get("shop", "batch")
    assert batch is not None and metadata_only(batch)
    assert "spec" not in batch and "status" not in batch
    assert batch["metadata"] == {"name": "batch", "namespace": "shop", "resourceVersion": "1"}
    assert api.gets == []


async def test_a_primary_canary_did_not_generate_is_kept_whole() -> None:
    """A Deployment named as a target's primary but not labelled as canary's (left by
    another controller, or by hand): whoever made it, canary reads it, so it is whole."""
    objects = busy_namespace()
    objects["deployments"][1] = workload("web-primary")
    controller, _api = controller_over(objects)
    await fill(controller.caches)
    primary = controller.caches.deployments.get("shop", "web-primary")
    assert primary is not None and not is_trimmed(primary)
    assert primary["status"] == {"replicas": 2, "readyReplicas": 2}


async def test_a_primary_cached_as_metadata_is_read_whole_once() -> None:
    """A Canary created for a Deployment whose ``-primary`` was cached as metadata only
    (no Canary named it then): the executor reads that primary whole, with one GET, and
    the cache keeps it whole from then on."""
    objects = busy_namespace()
    objects["deployments"].append(workload("batch-primary"))
    controller, api = controller_over(objects)
    await fill(controller.caches)
    caches = controller.caches
    assert metadata_only(caches.deployments.get("shop", "batch-primary") or {})
    objects["canaries"].append({"apiVersion": "canary.dev/v1", "kind": "Canary",
                                "metadata": meta("batch", 2),
                                "spec": {"targetRef": {"name": "batch"}}})
    await caches.canaries._relist(None)
    controller._canary_event("ADDED", objects["canaries"][-1])
    executor = Executor(cast(KubeClient, api), Settings(), caches, no_hooks)
    for _ in range(2):
        primary = await executor._deployment("shop", "batch-primary")
        assert primary is not None and primary["spec"]["replicas"] == 2
        assert primary["status"] == {"replicas": 2, "readyReplicas": 2}
    assert api.gets == ["deployments/batch-primary"]
    assert not is_trimmed(caches.deployments.get("shop", "batch-primary"))


async def no_hooks(_canary: Canary, _type: str) -> tuple[HookResult, ...]:
    return ()


async def test_a_new_canary_reads_its_trimmed_target_whole_once() -> None:
    """A Canary created for a Deployment cached as its metadata only: its revision is
    that of the whole Deployment (one GET), the cache then keeps it whole, and a change
    of a config it mounts wakes the Canary from then on."""
    objects = busy_namespace()
    controller, api = controller_over(objects)
    await fill(controller.caches)
    caches = controller.caches
    assert is_trimmed(caches.deployments.get("shop", "batch"))
    objects["canaries"].append({"apiVersion": "canary.dev/v1", "kind": "Canary",
                                "metadata": meta("batch", 2),
                                "spec": {"targetRef": {"name": "batch"}}})
    await caches.canaries._relist(None)
    references = controller.config_references
    assert references.referring("shop", "ConfigMap", "unused") == []  # not yet known
    seen = await what_decisions_see(caches, "batch")
    assert seen[0] == revision_of(workload("batch"), whole_lookup(objects))
    assert api.gets == ["deployments/batch", "configmaps/unused"]
    assert not is_trimmed(caches.deployments.get("shop", "batch"))
    assert references.referring("shop", "ConfigMap", "unused") == ["batch"]
    await what_decisions_see(caches, "batch")
    assert api.gets == ["deployments/batch", "configmaps/unused"]


@contextlib.asynccontextmanager
async def watching_one(plural: str) -> AsyncIterator[tuple[Caches, Reflector, Cluster]]:
    """The controller's task for the cache of ``plural`` running over a busy namespace,
    the other caches left for the test to list."""
    controller, api = controller_over(busy_namespace())
    caches = controller.caches
    cache = next(c for c in caches.all() if c.resource.plural == plural)
    watching = asyncio.create_task(controller._watch(cache))
    try:
        yield caches, cache, api
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)


@pytest.mark.parametrize("plural", ["configmaps", "secrets"])
async def test_configs_are_listed_at_once(plural: str) -> None:
    """Readiness waits for the longest chain of lists: the configs, listed as metadata
    only, have nothing to keep whole and wait for no other cache."""
    async with watching_one(plural) as (caches, cache, api):
        await settle()
        assert plural in api.listed
        assert cache.synced.is_set()
        assert not any(c.synced.is_set() for c in caches.all() if c is not cache)


async def test_deployments_are_listed_after_the_canaries() -> None:
    """The Canaries say which Deployments keep their pod spec."""
    async with watching_one("deployments") as (caches, _, api):
        await settle()
        assert "deployments" not in api.listed
        await caches.canaries._relist(None)
        await settle()
        assert "deployments" in api.listed


@pytest.mark.parametrize("watch_first", [True, False], ids=["watch-first", "answer-first"])
async def test_a_copy_canary_wrote_is_checked_again_without_a_get(watch_first: bool) -> None:
    """canary writes its copy of a config; the watch then sends the new version as
    metadata only. Whichever arrives first, the cache keeps what the write returned for
    that version, so the next check of the copy against what canary writes reads
    nothing from the API and writes nothing."""
    controller, api = controller_over(busy_namespace())
    await fill(controller.caches)
    cache = controller.caches.configmaps
    executor = Executor(cast(KubeClient, api), Settings(), controller.caches, no_hooks)
    manifest = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a-primary", "namespace": "shop",
                             "labels": dict(MANAGED_BY)},
                "data": {"token": "new"}}
    async def watch_event() -> None:
        await cache._relist(None)  # the new version, as metadata only
    if watch_first:
        api.while_writing = watch_event
        assert await executor.apply(manifest, cache) is Applied.UPDATED
    else:
        assert await executor.apply(manifest, cache) is Applied.UPDATED
        await watch_event()
    assert api.gets == ["configmaps/a-primary"]  # the check before the write
    held = cache.get("shop", "a-primary") or {}
    assert not metadata_only(held)
    assert held["metadata"]["resourceVersion"] == api.objects["configmaps"][-1][
        "metadata"]["resourceVersion"]
    assert await executor.apply(manifest, cache) is Applied.UNCHANGED
    assert api.gets == ["configmaps/a-primary"]
