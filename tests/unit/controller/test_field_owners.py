"""Who else owns the target's replicas, as the cached managedFields say: never canary
itself, never an autoscaler writing through the scale subresource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.controller.field_owners import replicas_owner
from canary.core.observation import FieldOwner
from canary.kube.trim import lean_deployment
from canary.targets.deployment import revision_of
from tests.e2e import manifests

REPLICAS: dict[str, Any] = {"f:spec": {"f:replicas": {}, "f:template": {}}}


def entry(manager: str, time: str = "2026-01-01T00:00:05Z", *, owns: bool = True,
          operation: str = "Apply", subresource: str | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {"manager": manager, "operation": operation, "time": time,
                            "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                            "fieldsV1": REPLICAS if owns else {"f:metadata": {}}}
    if subresource:
        made["subresource"] = subresource
    return made


def deployment(*entries: dict[str, Any]) -> dict[str, Any]:
    made = manifests.deployment("web", "shop", replicas=2)
    made["metadata"]["managedFields"] = list(entries)
    return made


def test_the_gitops_controller_that_set_the_replicas_back_is_named() -> None:
    cached = lean_deployment(deployment(
        entry("kube-controller-manager", owns=False, operation="Update",
              subresource="status"),
        entry("kustomize-controller")))
    assert replicas_owner(cached, "canary") == FieldOwner(
        "kustomize-controller", "Apply", datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC))


def test_canary_and_autoscalers_are_nobody_else() -> None:
    assert replicas_owner(deployment(entry("canary", operation="Update")), "canary") is None
    assert replicas_owner(deployment(entry("kube-controller-manager", operation="Update",
                                           subresource="scale")), "canary") is None
    assert replicas_owner(deployment(entry("kustomize-controller", owns=False)),
                          "canary") is None
    assert replicas_owner(None, "canary") is None


def test_of_appliers_sharing_the_replicas_the_latest_is_named() -> None:
    cached = deployment(entry("argocd-controller", "2026-01-01T00:00:09Z"),
                        entry("kustomize-controller", "2026-01-01T00:00:05Z"))
    owner = replicas_owner(cached, "canary")
    assert owner is not None and owner.manager == "argocd-controller"


def test_a_time_that_cannot_be_read_is_none() -> None:
    owner = replicas_owner(deployment(entry("kustomize-controller", "yesterday")), "canary")
    assert owner == FieldOwner("kustomize-controller", "Apply", None)


@given(st.lists(st.tuples(st.sampled_from(["canary", "kustomize-controller", "kubectl", ""]),
                          st.booleans(), st.sampled_from([None, "scale", "status"]),
                          st.text(max_size=25)), max_size=5))
def test_the_owner_named_is_one_that_owns_the_replicas(
        described: list[tuple[str, bool, str | None, str]]) -> None:
    cached = lean_deployment(deployment(*(
        entry(manager, time, owns=owns, subresource=subresource)
        for manager, owns, subresource, time in described)))
    owner = replicas_owner(cached, "canary")
    eligible = {manager or "an unnamed field manager"
                for manager, owns, subresource, _ in described
                if owns and manager != "canary" and subresource != "scale"}
    assert (owner is None) == (not eligible)
    assert owner is None or owner.manager in eligible


def test_the_replicas_and_their_managers_are_no_part_of_the_revision() -> None:
    """A reset of the replicas never reads as a new revision of the target."""
    one = deployment(entry("canary", operation="Update"))
    other = deployment(entry("kustomize-controller"))
    other["spec"]["replicas"] = 0
    assert revision_of(one) == revision_of(other) == revision_of(lean_deployment(other))
