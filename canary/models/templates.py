"""``MetricTemplate`` and ``AlertProvider`` (``canary.dev/v1beta1``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from canary.models.base import ApiModel


class SecretRef(ApiModel):
    name: str = Field(min_length=1)


class MetricProvider(ApiModel):
    type: Literal["prometheus"] = Field(description="The metrics backend: prometheus.")
    address: str | None = Field(None, pattern=r"^https?://",
                                description="Defaults to the controller's --metrics-server.")
    secret_ref: SecretRef | None = Field(
        None, description="Secret with `token` (bearer) or `username` and `password` (basic).")
    insecure_skip_verify: bool | None = None


class MetricTemplateSpec(ApiModel):
    provider: MetricProvider
    query: str = Field(min_length=1, description=(
        "PromQL with {{ name }}, {{ namespace }}, {{ target }}, {{ service }}, "
        "{{ interval }} and {{ variables.NAME }}."))


class MetricTemplate(ApiModel):
    """A reusable query for canary analysis."""

    api_version: Literal["canary.dev/v1beta1"] = "canary.dev/v1beta1"
    kind: Literal["MetricTemplate"] = "MetricTemplate"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: MetricTemplateSpec


class AlertProviderSpec(ApiModel):
    type: Literal["slack", "msteams", "discord", "googlechat", "rocket", "webhook"]
    channel: str | None = None
    username: str | None = None
    proxy: str | None = Field(None, pattern=r"^https?://")
    secret_ref: SecretRef = Field(description="Secret whose `address` key holds the URL.")


class AlertProvider(ApiModel):
    """Where canary sends alerts; the address lives in a Secret, never in the resource."""

    api_version: Literal["canary.dev/v1beta1"] = "canary.dev/v1beta1"
    kind: Literal["AlertProvider"] = "AlertProvider"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: AlertProviderSpec
