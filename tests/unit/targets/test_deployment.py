"""Readiness and the primary copy of a Deployment."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.targets.deployment import (
    REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
    UnsupportedTarget,
    primary_manifest,
    rollout_state,
    selector_label,
    selector_label_from_primary,
)


def deployment(replicas: int = 4, updated: int = 4, available: int = 4, total: int = 4,
               generation: int = 2, observed: int = 2) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "generation": generation,
                         "labels": {"app": "web", "team": "a"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "v": "2"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "availableReplicas": available, "replicas": total}}


@pytest.mark.parametrize(("kwargs", "ready", "detail"), [
    ({}, True, ""),
    ({"observed": 1}, False, "observe the change"),
    ({"updated": 3, "available": 3}, False, "3 of 4 replicas updated"),
    ({"total": 5}, False, "pending termination"),
    ({"available": 3}, False, "3 of 4 replicas available"),
    ({"replicas": 0}, False, "scaled to zero"),
])
def test_ready_means_the_rollout_is_complete(kwargs: dict[str, int], ready: bool,
                                             detail: str) -> None:
    state = rollout_state(deployment(**kwargs), "r")
    assert state.ready is ready and detail in state.detail


def test_a_ready_threshold_accepts_a_share_of_available_replicas() -> None:
    assert rollout_state(deployment(available=3, updated=3), "r", ready_percent=75).ready
    assert not rollout_state(deployment(available=2, updated=3), "r", ready_percent=75).ready


def test_the_primary_selects_only_its_own_pods() -> None:
    owner = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
             "metadata": {"name": "web", "uid": "u1"}}
    primary = primary_manifest(deployment(), owner, "rev", replicas=4)
    assert primary["metadata"]["name"] == "web-primary"
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "web-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"] == {"app": "web-primary", "v": "2"}
    assert primary["metadata"]["annotations"] == {REVISION_ANNOTATION: "rev",
                                                  REPLICAS_ANNOTATION: "4"}
    assert primary["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert primary["metadata"]["labels"]["team"] == "a"


def test_an_autoscaled_primary_records_no_replicas_of_canarys() -> None:
    owner = {"metadata": {"name": "web", "uid": "u1"}}
    primary = primary_manifest(deployment(), owner, "rev", replicas=4, autoscaled=True)
    assert REPLICAS_ANNOTATION not in primary["metadata"]["annotations"]


def test_a_target_without_a_known_selector_label_is_refused_naming_the_labels() -> None:
    target = deployment()
    target["spec"]["selector"]["matchLabels"] = {"component": "web"}
    with pytest.raises(UnsupportedTarget, match="component"):
        selector_label(target)


@given(key=st.sampled_from(["app", "app.kubernetes.io/name", "name"]),
       value=st.from_regex(r"[a-z]([a-z0-9-]{0,40}[a-z0-9])?", fullmatch=True))
def test_the_targets_selector_label_is_read_back_from_its_primary(key: str,
                                                                 value: str) -> None:
    """Once the target is deleted, routing finds the label its pods were selected by on
    the primary, even for a target whose own name ends in -primary."""
    target = deployment()
    target["spec"]["selector"] = {"matchLabels": {key: value}}
    target["spec"]["template"]["metadata"]["labels"] = {key: value}
    primary = primary_manifest(target, {"metadata": {"name": "web", "uid": "u1"}}, "rev",
                               replicas=1)
    assert selector_label_from_primary(primary) == selector_label(target) == (key, value)
