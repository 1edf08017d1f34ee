"""What the watch caches keep of an object: no managedFields or last-applied copy, a
Deployment's field managers in brief, a config's content only when it is read, and of a
Deployment canary does not read, its metadata only."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.kube.trim import (
    DIGEST_FIELD,
    KEY_DIGESTS_FIELD,
    LAST_APPLIED,
    METADATA_ONLY_FIELD,
    FieldManager,
    config_trimmer,
    content_digest,
    content_digests,
    deployment_trimmer,
    is_trimmed,
    lean,
    lean_deployment,
    metadata_only,
    replica_managers,
)

JSON = dict[str, Any]

text = st.text(min_size=0, max_size=12)
values = st.recursive(st.none() | st.booleans() | st.integers() | text,
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(text, inner, max_size=3), max_leaves=12)
fields_v1 = st.fixed_dictionaries({}, optional={
    "f:metadata": st.just({"f:labels": {}}),
    "f:spec": st.fixed_dictionaries({}, optional={
        "f:replicas": st.just({}), "f:template": st.just({"f:spec": {}})})})
entries = st.fixed_dictionaries(
    {"manager": text, "operation": st.sampled_from(["Apply", "Update"]),
     "apiVersion": st.just("apps/v1"), "fieldsType": st.just("FieldsV1"),
     "fieldsV1": fields_v1},
    optional={"time": text, "subresource": st.sampled_from(["scale", "status"])})
metadata = st.fixed_dictionaries(
    {"name": text, "namespace": text, "resourceVersion": st.integers(1).map(str)},
    optional={"labels": st.dictionaries(text, text, max_size=3),
              "annotations": st.dictionaries(text | st.just(LAST_APPLIED), text, max_size=3),
              "managedFields": st.lists(entries, max_size=4),
              "ownerReferences": st.lists(st.dictionaries(text, text, max_size=2), max_size=2),
              "uid": text, "generation": st.integers(0)})
objects = st.fixed_dictionaries(
    {"apiVersion": st.just("v1"), "kind": st.sampled_from(["ConfigMap", "Secret"]),
     "metadata": metadata},
    optional={"data": st.dictionaries(text, text, max_size=3),
              "binaryData": st.dictionaries(text, text, max_size=2),
              "stringData": st.dictionaries(text, text, max_size=2),
              "type": st.sampled_from(["Opaque", "kubernetes.io/tls"]),
              "immutable": st.booleans(), "spec": values, "status": values})


@given(objects)
def test_lean_drops_only_managed_fields_and_the_last_applied_copy(obj: JSON) -> None:
    before = copy.deepcopy(obj)
    kept = lean(obj)
    assert obj == before  # the caller's object is untouched
    assert "managedFields" not in kept["metadata"]
    assert LAST_APPLIED not in (kept["metadata"].get("annotations") or {})
    restored = copy.deepcopy(kept)
    restored["metadata"].pop("annotations", None)
    expected = copy.deepcopy(before)
    expected["metadata"].pop("managedFields", None)
    expected["metadata"].pop("annotations", None)
    assert restored == expected
    assert {k: v for k, v in (before["metadata"].get("annotations") or {}).items()
            if k != LAST_APPLIED} == (kept["metadata"].get("annotations") or {})


@given(objects)
def test_a_deployment_keeps_who_wrote_when_and_who_owns_replicas(obj: JSON) -> None:
    before = copy.deepcopy(obj)
    kept = lean_deployment(obj)
    assert obj == before
    assert replica_managers(kept) == replica_managers(before)
    for entry in kept["metadata"].get("managedFields") or []:
        assert entry.get("fieldsV1") in (None, {"f:spec": {"f:replicas": {}}})
    assert LAST_APPLIED not in (kept["metadata"].get("annotations") or {})
    assert {k: v for k, v in kept.items() if k != "metadata"} == \
        {k: v for k, v in before.items() if k != "metadata"}


deployments = st.fixed_dictionaries(
    {"apiVersion": st.just("apps/v1"), "kind": st.just("Deployment"), "metadata": metadata},
    optional={"spec": st.fixed_dictionaries({}, optional={
        "replicas": st.integers(0, 9), "selector": values, "strategy": values,
        "template": st.fixed_dictionaries({}, optional={"metadata": values,
                                                        "spec": values})}),
        "status": values})


@given(deployments, st.booleans())
def test_a_deployment_is_kept_whole_only_when_read(obj: JSON, keep: bool) -> None:
    """Read, a Deployment is kept as :func:`lean_deployment` gives it; not read, only
    what finds it, tells its versions apart and names its owners is kept, marked so
    that a reader knows the rest is unknown, not empty."""
    before = copy.deepcopy(obj)
    kept = deployment_trimmer(lambda _: keep)(obj)
    assert obj == before
    assert is_trimmed(kept) is metadata_only(kept) is (not keep)
    if keep:
        assert kept == lean_deployment(before)
        return
    assert set(kept) == {"apiVersion", "kind", "metadata", METADATA_ONLY_FIELD}
    meta = before["metadata"]
    assert kept["metadata"] == {k: meta[k] for k in (
        "name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences",
        "deletionTimestamp") if k in meta}


def test_replica_managers_name_the_manager_that_owns_replicas() -> None:
    deployment = {"metadata": {"managedFields": [
        {"manager": "helm", "operation": "Update", "time": "2026-01-01T00:00:00Z",
         "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
         "fieldsV1": {"f:status": {}}}]}}
    assert replica_managers(lean_deployment(deployment)) == [
        FieldManager("helm", "Update", "2026-01-01T00:00:00Z", "", True),
        FieldManager("kube-controller-manager", "Update", "", "status", False)]


@given(objects, st.booleans())
def test_a_config_keeps_its_content_only_when_asked(obj: JSON, keep: bool) -> None:
    before = copy.deepcopy(obj)
    kept = config_trimmer(lambda _: keep)(obj)
    assert obj == before
    assert is_trimmed(kept) is not keep
    if keep:
        assert kept == lean(before)
        return
    assert kept[DIGEST_FIELD] == content_digest(before)
    for field in ("data", "binaryData", "stringData", "spec", "status", "immutable"):
        assert field not in kept
    assert kept.get("type") == before.get("type")
    for field in ("name", "namespace", "resourceVersion", "labels", "ownerReferences"):
        assert kept["metadata"].get(field) == before["metadata"].get(field)
    assert "annotations" not in kept["metadata"]


@given(objects, objects)
def test_the_digest_follows_the_content(one: JSON, other: JSON) -> None:
    def content(obj: JSON) -> JSON:
        return {k: obj[k] for k in ("data", "binaryData", "stringData") if obj.get(k)}
    assert (content_digest(one) == content_digest(other)) is (content(one) == content(other))


@given(objects)
def test_a_config_trimmed_by_key_keeps_a_digest_per_key_and_its_annotations(obj: JSON
                                                                           ) -> None:
    before = copy.deepcopy(obj)
    kept = config_trimmer(lambda _: False, by_key=lambda _: True)(obj)
    assert obj == before and is_trimmed(kept) and DIGEST_FIELD not in kept
    assert kept[KEY_DIGESTS_FIELD] == content_digests(before)
    for field in ("data", "binaryData", "stringData", "spec", "status", "immutable"):
        assert field not in kept
    assert kept["metadata"].get("annotations", {}) == \
        lean(before)["metadata"].get("annotations", {})


@given(objects, objects)
def test_the_digests_by_key_follow_each_value(one: JSON, other: JSON) -> None:
    for field in ("data", "binaryData", "stringData"):
        mine, theirs = one.get(field) or {}, other.get(field) or {}
        if not isinstance(mine, dict) or not isinstance(theirs, dict):
            continue
        digests = content_digests(one).get(field, {}), content_digests(other).get(field, {})
        for key in set(mine) & set(theirs):
            assert (digests[0][key] == digests[1][key]) is (mine[key] == theirs[key])


def test_a_config_kept_as_metadata_shares_what_recurs_across_configs() -> None:
    """Tens of thousands of configs are cached as their metadata: the strings they have
    in common (kind, namespace, labels) are one string, however they were decoded."""
    def listed(name: str) -> JSON:
        decoded: JSON = json.loads(json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap", METADATA_ONLY_FIELD: True,
            "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}",
                         "resourceVersion": "7", "labels": {"app": "web"},
                         "ownerReferences": [{"kind": "Canary", "name": "web"}]}}))
        return decoded
    trim = config_trimmer(lambda _: False)
    first, second = trim(listed("a")), trim(listed("b"))
    assert first == {**listed("a"), METADATA_ONLY_FIELD: True}
    assert first["kind"] is second["kind"]
    assert first["metadata"]["namespace"] is second["metadata"]["namespace"]
    (key_1, value_1), = first["metadata"]["labels"].items()
    (key_2, value_2), = second["metadata"]["labels"].items()
    assert key_1 is key_2 and value_1 is value_2
    assert first["metadata"]["ownerReferences"][0]["kind"] is \
        second["metadata"]["ownerReferences"][0]["kind"]
