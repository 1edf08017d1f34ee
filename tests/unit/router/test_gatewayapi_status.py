"""Whether the data plane accepted a route, from its status.parents."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.router.gatewayapi.status import acceptance

JSON = dict[str, Any]
PUBLIC = {"name": "public", "namespace": "infra"}
INTERNAL = {"name": "internal", "sectionName": "http"}


def condition(type_: str, status: str = "True", generation: int = 3, reason: str = "Ok",
              message: str = "") -> JSON:
    return {"type": type_, "status": status, "observedGeneration": generation,
            "reason": reason, "message": message}


def report(ref: JSON, *conditions: JSON) -> JSON:
    return {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", **ref},
            "controllerName": "example.com/gateway", "conditions": list(conditions)}


def route(*parents: JSON, refs: tuple[JSON, ...] = (PUBLIC, INTERNAL)) -> JSON:
    return {"metadata": {"name": "web", "namespace": "shop", "generation": 3},
            "spec": {"parentRefs": list(refs)}, "status": {"parents": list(parents)}}


ACCEPTED = (condition("Accepted"), condition("ResolvedRefs"))


class TestAcceptance:
    """Accepted only when every parent took the current generation."""

    def test_every_parent_accepted(self) -> None:
        assert acceptance(route(report(PUBLIC, *ACCEPTED),
                                report(INTERNAL, *ACCEPTED))).state == "Accepted"

    def test_a_parent_yet_to_report(self) -> None:
        verdict = acceptance(route(report(PUBLIC, *ACCEPTED)))
        assert verdict.state == "Pending"
        assert verdict.message == ("Gateway shop/internal listener http has not reported on "
                                   "the route yet")

    def test_a_report_on_an_older_generation_is_pending(self) -> None:
        verdict = acceptance(route(report(PUBLIC, condition("Accepted", generation=2),
                                          condition("ResolvedRefs")),
                                   report(INTERNAL, *ACCEPTED)))
        assert verdict.state == "Pending" and "generation 3" in verdict.message

    def test_a_refusal_names_the_parent_and_says_why(self) -> None:
        verdict = acceptance(route(
            report(PUBLIC, condition("Accepted", "False", reason="NotAllowedByListeners",
                                     message="no listener allows routes from shop"),
                   condition("ResolvedRefs")),
            report(INTERNAL, *ACCEPTED)))
        assert verdict.state == "Refused" and verdict.reason == "NotAllowedByListeners"
        assert verdict.message == ("Gateway infra/public refused the route: "
                                   "NotAllowedByListeners: no listener allows routes from shop")

    def test_unresolved_backends_are_a_refusal(self) -> None:
        verdict = acceptance(route(
            report(PUBLIC, condition("Accepted"),
                   condition("ResolvedRefs", "False", reason="BackendNotFound")),
            report(INTERNAL, *ACCEPTED)))
        assert (verdict.state, verdict.reason) == ("Refused", "BackendNotFound")

    def test_a_mesh_parent(self) -> None:
        mesh = {"group": "", "kind": "Service", "name": "web"}
        verdict = acceptance(route(refs=(mesh,)))
        assert verdict.message == "Service shop/web has not reported on the route yet"

    @given(st.permutations([0, 1, 2]), st.integers(0, 2))
    def test_a_refusal_wins_whatever_the_order(self, order: list[int], refusing: int) -> None:
        refs = ({"name": "a"}, {"name": "b"}, {"name": "c"})
        reports = [report(ref, *ACCEPTED) if i != refusing else
                   report(ref, condition("Accepted", "False", reason="NoMatchingParent"))
                   for i, ref in enumerate(refs)]
        verdict = acceptance(route(*(reports[i] for i in order), refs=refs))
        assert verdict.state == "Refused" and f"/{'abc'[refusing]} refused" in verdict.message
