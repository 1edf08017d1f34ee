"""Canaries routed through the Gateway API, for the router's tests."""

from __future__ import annotations

from typing import Any

from canary.models.canary import Canary

OWNER = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
         "metadata": {"name": "web", "uid": "u"}}
GATEWAY = {"name": "public", "namespace": "infra"}


def gateway_canary(service: dict[str, Any] | None = None, **analysis: Any) -> Canary:
    """A Canary of Deployment ``web`` in ``shop`` behind Gateway infra/public; a weighted
    canary unless ``analysis`` says otherwise."""
    analysis = analysis or {"stepWeight": 10}
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                 "service": {"port": 80, "gatewayRefs": [GATEWAY], **(service or {})},
                 "analysis": {"interval": "1m", "threshold": 1, **analysis}}})


def weights(rule: dict[str, Any]) -> list[int]:
    return [ref["weight"] for ref in rule["backendRefs"]]
