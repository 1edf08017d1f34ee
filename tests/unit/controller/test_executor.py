"""What the executor writes when someone else changed canary's objects, and what it never
writes."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from canary.controller.executor import (
    APPLIED_ANNOTATION,
    Applied,
    Executor,
    OwnedElsewhere,
    differences,
    fingerprint,
)
from canary.kube.trim import config_trimmer, is_trimmed
from canary.models.canary import Canary
from canary.settings import Settings
from canary.targets.deployment import REPLICAS_ANNOTATION, REVISION_ANNOTATION
from tests.unit.controller.caches import Cache
from tests.unit.controller.caches import caches as held

OWNER = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
         "metadata": {"name": "web", "namespace": "shop", "uid": "uid-web"}}


class Client:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []
        self.patched: list[tuple[str, dict[str, Any]]] = []

    async def apply(self, body: dict[str, Any], *, field_manager: str) -> dict[str, Any]:
        self.applied.append(body)
        return body

    async def merge_patch(self, resource: Any, name: str, patch: dict[str, Any],
                          namespace: str | None = None, *,
                          field_manager: str | None = None) -> dict[str, Any]:
        assert field_manager == "canary"
        self.patched.append((name, patch))
        return {}


def service(uid: str = "uid-web", selector: str = "web-primary") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "ownerReferences": [
                {"kind": "Canary", "name": "web", "uid": uid, "controller": True}]},
            "spec": {"selector": {"app": selector}}}


def as_applied(manifest: dict[str, Any]) -> dict[str, Any]:
    """The object as the API holds it after canary applied ``manifest``."""
    obj = copy.deepcopy(manifest)
    obj["metadata"].setdefault("annotations", {})[APPLIED_ANNOTATION] = fingerprint(manifest)
    return obj


def executor(client: Client, **caches: Cache) -> Executor:
    return Executor(client, Settings(), held(**caches),  # type: ignore[arg-type]
                    lambda canary, type_: None)  # type: ignore[arg-type, return-value]


def canary(autoscaled: bool = False) -> Canary:
    spec: dict[str, Any] = {"targetRef": {"kind": "Deployment", "name": "web"},
                            "service": {"port": 80},
                            "analysis": {"interval": "10s", "threshold": 2}}
    if autoscaled:
        spec["autoscalerRef"] = {"kind": "HorizontalPodAutoscaler", "name": "web"}
    return Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"},
                                  "spec": spec})


class TestApply:
    async def test_an_edit_of_canarys_fields_is_put_back_and_reported(self) -> None:
        desired = service()
        edited = as_applied(desired)
        edited["spec"]["selector"] = {"app": "web"}
        client = Client()
        assert await executor(client).apply(desired, Cache(edited)) is Applied.RESTORED  # type: ignore[arg-type]
        assert list(differences(edited, desired)) == [
            "spec.selector.app was 'web', canary's is 'web-primary'"]

    async def test_a_change_of_the_canary_is_an_update_not_a_repair(self) -> None:
        before = as_applied(service(selector="web-primary"))
        client = Client()
        outcome = await executor(client).apply(service(selector="web-primary-2"), Cache(before))  # type: ignore[arg-type]
        assert outcome is Applied.UPDATED

    async def test_an_object_another_canary_controls_is_never_written(self) -> None:
        theirs = as_applied(service(uid="uid-other"))
        theirs["spec"]["selector"] = {"app": "other"}
        client = Client()
        with pytest.raises(OwnedElsewhere):
            await executor(client).apply(service(), Cache(theirs))  # type: ignore[arg-type]
        assert client.applied == []


content = st.dictionaries(st.sampled_from(["k", "app.yaml", "tls.crt"]),
                          st.text(max_size=20), min_size=1, max_size=3)


def config_copy(kind: str, data: dict[str, str], binary: dict[str, str]) -> dict[str, Any]:
    """A primary's copy of a config, as the executor writes it."""
    return {"apiVersion": "v1", "kind": kind,
            "metadata": {"name": "web-config-primary", "namespace": "shop",
                         "labels": {"app.kubernetes.io/managed-by": "canary"},
                         "ownerReferences": [{"kind": "Canary", "name": "web",
                                              "uid": "uid-web", "controller": True}]},
            "data": data, **({"binaryData": binary} if binary else {}),
            **({"type": "Opaque"} if kind == "Secret" else {})}


trimmed = config_trimmer(lambda _: False, by_key=lambda _: True)  # as copies are cached


def apply_over(cached: dict[str, Any], desired: dict[str, Any]) -> tuple[Applied, Client]:
    """Apply ``desired`` with a cache holding ``cached``, trimmed as canary's copies are."""
    client = Client()
    cache: Any = Cache(trimmed(cached))
    return asyncio.run(executor(client).apply(desired, cache)), client


class TestConfigCopiesCachedByDigest:
    """Canary's copies of configs are cached with a digest per key instead of their
    content: the executor leaves one alone when it holds what canary writes (keys
    another field manager added, which canary's apply cannot remove, included), and
    puts it back when it does not."""

    @settings(max_examples=60, deadline=None)
    @given(st.sampled_from(["ConfigMap", "Secret"]), content, content)
    def test_a_copy_as_written_is_left_alone(self, kind: str, data: dict[str, str],
                                             binary: dict[str, str]) -> None:
        desired = config_copy(kind, data, binary)
        assert is_trimmed(trimmed(as_applied(desired)))
        outcome, client = apply_over(as_applied(desired), desired)
        assert outcome is Applied.UNCHANGED and client.applied == []

    @settings(max_examples=60, deadline=None)
    @given(st.sampled_from(["ConfigMap", "Secret"]), content, content, content)
    def test_a_copy_whose_content_changed_is_put_back(
            self, kind: str, data: dict[str, str], binary: dict[str, str],
            edited: dict[str, str]) -> None:
        assume(any(edited.get(key) != value for key, value in data.items()))
        desired = config_copy(kind, data, binary)
        changed = as_applied(desired)
        changed["data"] = edited
        outcome, client = apply_over(changed, desired)
        assert outcome is Applied.RESTORED and len(client.applied) == 1

    @settings(max_examples=30, deadline=None)
    @given(st.sampled_from(["ConfigMap", "Secret"]), content, content)
    def test_keys_someone_else_added_are_left_to_them(
            self, kind: str, data: dict[str, str], added: dict[str, str]) -> None:
        desired = config_copy(kind, data, {})
        added_to = as_applied(desired)
        added_to["data"] = {**{f"their-{k}": v for k, v in added.items()}, **data}
        outcome, client = apply_over(added_to, desired)
        assert outcome is Applied.UNCHANGED and client.applied == []

    def test_a_copy_whose_labels_changed_is_put_back(self) -> None:
        desired = config_copy("ConfigMap", {"k": "v"}, {})
        changed = as_applied(desired)
        changed["metadata"]["labels"] = {}
        assert apply_over(changed, desired)[0] is Applied.RESTORED


def primary(replicas: int, recorded: int | None, revision: str = "rev-1") -> dict[str, Any]:
    annotations = {REVISION_ANNOTATION: revision}
    if recorded is not None:
        annotations[REPLICAS_ANNOTATION] = str(recorded)
    return {"metadata": {"name": "web-primary", "namespace": "shop",
                         "annotations": annotations}, "spec": {"replicas": replicas}}


class TestPrimaryReplicas:
    def test_the_count_canary_gave_is_restored_after_a_scale_to_zero(self) -> None:
        assert Executor._primary_replicas(canary(), primary(0, 3), None) == 3

    def test_an_autoscaler_keeps_its_count(self) -> None:
        assert Executor._primary_replicas(canary(autoscaled=True), primary(5, None), None) == 5

    def test_a_new_primary_takes_the_targets_count(self) -> None:
        target = {"spec": {"replicas": 4}}
        assert Executor._primary_replicas(canary(), None, target) == 4
        assert Executor._primary_replicas(canary(), None, {"spec": {"replicas": 0}}) == 1

    async def test_while_the_target_runs_another_revision_only_replicas_are_restored(
            self) -> None:
        """The primary's template cannot come from a target that moved on, but its
        replicas can still be put back."""
        client = Client()
        deployments = Cache(primary(0, 2, revision="rev-1"),
                            {"metadata": {"name": "web", "namespace": "shop"},
                             "spec": {"replicas": 2, "template": {"spec": {}}}})
        repairs = await executor(client, deployments=deployments)._ensure_primary(
            OWNER, canary(), "rev-1", established=True)
        assert client.patched == [("web-primary", {"spec": {"replicas": 2}})]
        assert repairs == ["Deployment web-primary was scaled to 0 outside canary: "
                           "2 replicas put back"]
        assert client.applied == []
