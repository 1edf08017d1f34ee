"""The VirtualService canary generates for each way of routing."""

from __future__ import annotations

import re
from typing import Any

from canary.core import Route
from canary.models.canary import Canary
from canary.router.istio import virtual_service

OWNER = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
         "metadata": {"name": "web", "uid": "u"}}


def canary(**analysis: Any) -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                 "service": {"port": 80, "hosts": ["web.example.com"], "timeout": "5s"},
                 "analysis": {"interval": "1m", "threshold": 1, **analysis}}})


def weights(http: dict[str, Any]) -> list[int]:
    return [d["weight"] for d in http["route"]]


def test_a_weighted_split() -> None:
    vs = virtual_service(canary(stepWeight=10), OWNER, Route(30))
    assert vs["spec"]["hosts"] == ["web", "web.example.com"]
    [http] = vs["spec"]["http"]
    assert weights(http) == [70, 30] and http["timeout"] == "5s"
    assert [d["destination"]["host"] for d in http["route"]] == ["web-primary", "web-canary"]


def test_ab_testing_puts_the_match_route_first() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    vs = virtual_service(canary(iterations=3, match=match), OWNER, Route(0, match_to_canary=True))
    first, rest = vs["spec"]["http"]
    assert first["match"] == match and weights(first) == [0, 100]
    assert weights(rest) == [100, 0]


def test_mirroring() -> None:
    vs = virtual_service(canary(iterations=3, mirror=True), OWNER, Route(0, mirror_percent=40))
    [http] = vs["spec"]["http"]
    assert http["mirror"] == {"host": "web-canary"}
    assert http["mirrorPercentage"] == {"value": 40}


def test_session_affinity_sets_a_cookie_and_honours_it() -> None:
    vs = virtual_service(canary(stepWeight=10), OWNER,
                         Route(20, sticky_cookie="aff=rev-2", sticky_max_age=60))
    sticky, main = vs["spec"]["http"]
    regex = sticky["match"][0]["headers"]["cookie"]["regex"]
    assert re.fullmatch(regex, "a=1; aff=rev-2; b=2") and not re.fullmatch(regex, "aff=rev-1")
    assert weights(sticky) == [0, 100] and weights(main) == [80, 20]
    assert main["route"][1]["headers"]["response"]["add"]["Set-Cookie"] == "aff=rev-2; Max-Age=60"
