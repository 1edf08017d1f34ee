"""Which Canary keeps an object two of them would write, and targets canary refuses."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.controller.claims import claims, conflict, managed_target, own


def canary(name: str, target: str, created: str = "2026-01-01T00:00:00Z",
           service: str | None = None, uid: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"targetRef": {"name": target}, "service": {"port": 80}}
    if service:
        spec["service"]["name"] = service
    return {"metadata": {"name": name, "namespace": "shop", "uid": uid or f"uid-{name}",
                         "creationTimestamp": created}, "spec": spec}


def owned_by(owner: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"ownerReferences": [
        {"kind": "Canary", "name": owner["metadata"]["name"],
         "uid": owner["metadata"]["uid"], "controller": True}]}}


def nothing(kind: str, name: str) -> None:
    return None


class TestTwoCanariesOnOneTarget:
    def test_the_older_keeps_the_target_and_the_younger_is_told_which(self) -> None:
        old = canary("web", "web", "2026-01-01T00:00:00Z")
        young = canary("web-2", "web", "2026-01-02T00:00:00Z")
        assert conflict(old, [old, young], nothing, "istio") is None
        message = conflict(young, [old, young], nothing, "istio")
        assert message is not None
        assert message.startswith("Canary web already claims Deployment web")
        assert "(it is older)" in message

    def test_the_canary_that_owns_the_objects_keeps_them_even_if_younger(self) -> None:
        old = canary("web", "web", "2026-01-01T00:00:00Z")
        young = canary("web-2", "web", "2026-01-02T00:00:00Z")

        def lookup(kind: str, name: str) -> dict[str, Any] | None:
            return owned_by(young) if (kind, name) == ("Deployment", "web-primary") else None

        assert conflict(young, [old, young], lookup, "istio") is None
        message = conflict(old, [old, young], lookup, "istio")
        assert message is not None and "(it manages them)" in message

    def test_a_shared_service_name_is_a_conflict(self) -> None:
        first = canary("api", "api", "2026-01-01T00:00:00Z", service="shop")
        second = canary("web", "web", "2026-01-02T00:00:00Z", service="shop")
        message = conflict(second, [first, second], nothing, "istio")
        assert message is not None and "Service shop" in message

    def test_the_same_age_is_broken_by_name(self) -> None:
        a, b = canary("a", "web"), canary("b", "web")
        assert conflict(a, [b, a], nothing, "istio") is None
        assert conflict(b, [a, b], nothing, "istio") is not None

    def test_canaries_on_different_targets_do_not_conflict(self) -> None:
        web, api = canary("web", "web"), canary("api", "api")
        assert conflict(api, [web, api], nothing, "istio") is None

    def test_the_target_of_another_canarys_primary_is_a_conflict(self) -> None:
        """Targeting x-primary claims the Service x-primary that Canary x generates."""
        first = canary("x", "x", "2026-01-01T00:00:00Z")
        second = canary("y", "x-primary", "2026-01-02T00:00:00Z")
        assert ("Service", "x-primary") in claims(first, "istio") & claims(second, "istio")
        assert conflict(second, [first, second], nothing, "istio") is not None


@given(st.lists(st.tuples(st.sampled_from(["web", "api", "shop"]),
                          st.sampled_from([None, "web", "shop"]),
                          st.integers(1, 5)), min_size=1, max_size=6))
def test_exactly_one_canary_of_each_group_sharing_objects_acts(
        specs: list[tuple[str, str | None, int]]) -> None:
    """Whatever the targets, services and ages, no object is claimed by two Canaries
    that both act (so nothing is written by two of them)."""
    canaries = [canary(f"c{i}", target, f"2026-01-0{day}T00:00:00Z", service)
                for i, (target, service, day) in enumerate(specs)]
    acting = [c for c in canaries if conflict(c, canaries, nothing, "istio") is None]
    assert acting, "some Canary always acts"
    for i, one in enumerate(acting):
        for other in acting[i + 1:]:
            assert not claims(one, "istio") & claims(other, "istio")


class TestManagedTargets:
    def test_another_canarys_primary_is_refused_naming_that_canary(self) -> None:
        owner = canary("x", "x")
        primary = {"metadata": {"name": "x-primary", **owned_by(owner)["metadata"],
                                "labels": {"app.kubernetes.io/managed-by": "canary"}}}
        message = managed_target(primary)
        assert message is not None
        assert "managed by Canary x" in message and "spec.targetRef" in message

    def test_a_generated_deployment_without_owner_is_refused_too(self) -> None:
        orphan = {"metadata": {"name": "x-primary",
                               "labels": {"app.kubernetes.io/managed-by": "canary"}}}
        assert managed_target(orphan) is not None

    def test_the_users_deployment_is_accepted(self) -> None:
        assert managed_target({"metadata": {"name": "web", "labels": {"app": "web"}}}) is None
        assert managed_target(None) is None


class TestTakingOver:
    """A Canary taking over a target from a deleted one: the other's primary, which the
    garbage collector is about to delete, is not its own, so it is not Initialized on it."""

    def test_a_primary_another_canary_controls_is_not_this_ones(self) -> None:
        gone, rival = canary("web", "web"), canary("rival", "web")
        primary = owned_by(gone)
        assert own(primary, rival) is None
        assert own(primary, gone) is primary

    def test_a_primary_without_a_canary_controller_is_kept(self) -> None:
        rival = canary("rival", "web")
        assert own({"metadata": {}}, rival) == {"metadata": {}}
        assert own(None, rival) is None
