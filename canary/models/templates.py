"""``MetricTemplate`` and ``AlertProvider`` (``canary.dev/v1beta1``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from canary.models.base import ApiModel, ApiObject, ObjectName


class SecretRef(ApiModel):
    """A Secret in the resource's namespace."""

    name: ObjectName = Field(description="The Secret's name.")


class MetricProvider(ApiModel):
    """Where a MetricTemplate's query runs."""

    type: Literal["prometheus"] = Field(description="The metrics backend: prometheus.")
    address: str | None = Field(None, pattern=r"^https?://",
                                description="Defaults to the controller's --metrics-server.")
    secret_ref: SecretRef | None = Field(
        None, description="Secret with `token` (bearer) or `username` and `password` (basic).")
    insecure_skip_verify: bool | None = Field(None, description=(
        "Skip the TLS certificate check of an https address; default false."))


class MetricTemplateSpec(ApiModel):
    """A query and the Prometheus it runs on; a Canary metric names it by templateRef."""

    provider: MetricProvider = Field(description="The Prometheus the query runs on.")
    query: str = Field(min_length=1, description=(
        "PromQL with {{ name }}, {{ namespace }}, {{ target }}, {{ service }}, "
        "{{ interval }} and {{ variables.NAME }}; {{ variables.NAME | regex }} in a regex "
        "matcher takes any pattern. Each value is checked where the query puts it "
        "(docs/metrics.md)."))


class MetricTemplate(ApiObject):
    """A reusable query for canary analysis."""

    kind: Literal["MetricTemplate"] = "MetricTemplate"
    spec: MetricTemplateSpec


class AlertProviderSpec(ApiModel):
    """How alerts are formatted and where they are sent."""

    type: Literal["slack", "msteams", "discord", "googlechat", "rocket", "webhook"] = Field(
        description="The message format: slack, msteams, discord, googlechat, rocket or "
        "webhook (canary's own JSON).")
    channel: str | None = Field(None, description="Channel override (slack, rocket, webhook).")
    username: str | None = Field(None, description="Sender name override (slack, discord, "
                                 "rocket, webhook).")
    proxy: str | None = Field(None, pattern=r"^https?://",
                              description="HTTP(S) proxy for this provider's requests.")
    secret_ref: SecretRef = Field(description="Secret whose `address` key holds the URL "
                                  "(and optional `proxy` key a proxy URL with credentials).")
    message_template: str | None = Field(None, max_length=4000, description=(
        "Replaces the default message text: a Python string.Template with $canary, "
        "$namespace, $target, $phase, $previous_phase, $weight, $severity, $reason, "
        "$message, $metric, $value, $bound, $evidence, $dashboard, ... (all listed in "
        "docs/alerts.md; $$ for a literal $)."))


class AlertProvider(ApiObject):
    """Where canary sends alerts; the address lives in a Secret, never in the resource."""

    kind: Literal["AlertProvider"] = "AlertProvider"
    spec: AlertProviderSpec
