"""The ``Canary`` resource (``canary.dev/v1beta1``).

Field names and meanings follow Flagger's ``flagger.app/v1beta1`` Canary, so a Flagger
manifest translates by changing its ``apiVersion``. These models are the single source of
truth: ``crds/`` is generated from them (``canary crds``), validation rules included.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from canary.models.base import ApiModel, Duration, FreeForm, parse_duration

GROUP = "canary.dev"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"

BUILTIN_METRICS = ("request-success-rate", "request-duration")
Percent = Annotated[int, Field(ge=0, le=100)]


class TargetRef(ApiModel):
    """The workload this Canary delivers."""

    api_version: Literal["apps/v1"] = Field("apps/v1", description="apps/v1")
    kind: Literal["Deployment"] = Field(description="The kind of the target: Deployment.")
    name: str = Field(min_length=1, max_length=253, description="The Deployment's name.")


class AutoscalerRef(ApiModel):
    api_version: str = Field("autoscaling/v2")
    kind: Literal["HorizontalPodAutoscaler"]
    name: str = Field(min_length=1, max_length=253)


class CanaryService(ApiModel):
    """How the target is exposed: the Services and the mesh routing canary generates."""

    name: str | None = Field(None, max_length=63, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
                             description="Service name; defaults to the target's name.")
    port: int = Field(ge=1, le=65535, description="The port the Services expose.")
    port_name: str | None = Field(None, description="The port's name; defaults to http.")
    target_port: int | str | None = Field(
        None, description="The container port (number or name); defaults to port.",
        json_schema_extra={"x-kubernetes-int-or-string": True})
    gateways: list[str] | None = Field(None, description="Istio gateways of the route.")
    hosts: list[str] | None = Field(None, description="Extra hosts of the VirtualService.")
    traffic_policy: FreeForm | None = Field(None,
                                            description="Istio DestinationRule trafficPolicy.")
    retries: FreeForm | None = Field(None, description="Istio HTTPRetry.")
    timeout: Duration | None = Field(None, description="Istio route timeout.")
    headers: FreeForm | None = Field(None, description="Istio header operations.")
    cors_policy: FreeForm | None = Field(None, description="Istio CorsPolicy.")
    match: list[FreeForm] | None = Field(None, description="Istio HTTPMatchRequests of the route.")
    rewrite: FreeForm | None = Field(None, description="Istio HTTPRewrite.")


class ThresholdRange(ApiModel):
    min: float | None = Field(None, description="Lowest value that passes.")
    max: float | None = Field(None, description="Highest value that passes.")

    model_config = ApiModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "has(self.min) || has(self.max)", "message": "set min, max or both"},
        {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
         "message": "min must not exceed max"},
    ]}}


class TemplateRef(ApiModel):
    name: str = Field(min_length=1)
    namespace: str | None = Field(None, description="Defaults to the Canary's namespace.")


class CanaryMetric(ApiModel):
    """One check of the analysis: a built-in metric or a MetricTemplate, and its bounds."""

    name: str = Field(min_length=1, description=(
        "request-success-rate (percent of non-5xx) or request-duration (P99, milliseconds) "
        "for built-ins; any name with templateRef."))
    interval: Duration | None = Field(None, description="Query window; defaults to the "
                                      "analysis interval.")
    threshold_range: ThresholdRange | None = None
    threshold: float | None = Field(None, description="Deprecated Flagger field: for "
                                    "request-success-rate a minimum, otherwise a maximum.")
    template_ref: TemplateRef | None = None
    template_variables: dict[str, str] | None = Field(
        None, description="Values for {{ variables.NAME }} in the template's query.")

    model_config = ApiModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "has(self.templateRef) || self.name in ['request-success-rate', "
                 "'request-duration']",
         "message": "a metric other than request-success-rate or request-duration needs "
                    "templateRef"},
        {"rule": "has(self.thresholdRange) || has(self.threshold)",
         "message": "set thresholdRange (or the deprecated threshold)"},
    ]}}

    def bounds(self) -> tuple[float | None, float | None]:
        """(min, max) that a value must stay within."""
        if self.threshold_range is not None:
            return self.threshold_range.min, self.threshold_range.max
        if self.threshold is not None:
            if self.name == "request-success-rate":
                return self.threshold, None
            return None, self.threshold
        return None, None


class WebhookType(StrEnum):
    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"
    EVENT = "event"


class SecretKeyRef(ApiModel):
    name: str = Field(min_length=1, description="A Secret in the Canary's namespace.")


class CanaryWebhook(ApiModel):
    """A gate or a notification: canary POSTs {name, namespace, phase, checksum, metadata}
    and any 2xx answer counts as success."""

    name: str = Field(min_length=1)
    type: WebhookType = WebhookType.ROLLOUT
    url: str = Field(pattern=r"^https?://")
    timeout: Duration | None = Field(None, description="Per attempt; default 10s.")
    retries: int | None = Field(None, ge=0, le=10, description="Extra attempts on failure.")
    mute_alert: bool | None = None
    metadata: dict[str, str] | None = None
    secret_ref: SecretKeyRef | None = Field(
        None, description="Each key of this Secret is sent as an HTTP header (e.g. "
        "Authorization), so credentials never live in the Canary.")


class ProviderRef(ApiModel):
    name: str = Field(min_length=1)
    namespace: str | None = None


class CanaryAlert(ApiModel):
    name: str = Field(min_length=1)
    severity: Literal["info", "warn", "error"] = "info"
    provider_ref: ProviderRef


class SessionAffinity(ApiModel):
    cookie_name: str = Field(min_length=1)
    max_age: int | None = Field(None, ge=1, description="Seconds; defaults to 86400.")
    primary_cookie_name: str | None = None


class CanaryAnalysis(ApiModel):
    """How the new version is exposed and judged. Choose one strategy: stepWeight or
    stepWeights (weighted canary), or iterations (A/B testing with match, blue/green)."""

    interval: Duration = Field(description="Time between analysis steps, e.g. 1m.")
    threshold: int = Field(ge=1, description="Failed checks tolerated before rollback.")
    max_weight: Percent | None = Field(None, description="Highest canary weight; default 100.")
    step_weight: Annotated[int, Field(ge=1, le=100)] | None = Field(
        None, description="Weight added per step.")
    step_weights: list[Annotated[int, Field(ge=1, le=100)]] | None = Field(
        None, min_length=1, max_length=100, description="Explicit weights, increasing.")
    step_weight_promotion: Annotated[int, Field(ge=1, le=100)] | None = Field(
        None, description="Weight returned to the primary per step during promotion.")
    iterations: int | None = Field(None, ge=1, description="Analysis steps (A/B, blue/green).")
    match: list[FreeForm] | None = Field(None, max_length=32, description=(
        "A/B testing: Istio matches that send users to the canary."))
    mirror: bool | None = None
    mirror_weight: Percent | None = None
    primary_ready_threshold: Percent | None = None
    canary_ready_threshold: Percent | None = None
    session_affinity: SessionAffinity | None = None
    metrics: list[CanaryMetric] | None = Field(None, max_length=32)
    webhooks: list[CanaryWebhook] | None = Field(None, max_length=32)
    alerts: list[CanaryAlert] | None = Field(None, max_length=16)

    model_config = ApiModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!has(self.stepWeight) || !has(self.maxWeight) || "
                 "self.stepWeight <= self.maxWeight",
         "message": "stepWeight must not exceed maxWeight"},
        {"rule": "has(self.iterations) || has(self.stepWeight) || has(self.stepWeights)",
         "message": "a weighted canary needs stepWeight or stepWeights (or set iterations "
                    "for A/B testing or blue/green)"},
        {"rule": "!has(self.iterations) || (!has(self.stepWeight) && !has(self.stepWeights))",
         "message": "iterations (A/B testing, blue/green) and stepWeight/stepWeights "
                    "(weighted canary) are different strategies: choose one"},
        {"rule": "!has(self.stepWeight) || !has(self.stepWeights)",
         "message": "set stepWeight or stepWeights, not both"},
        {"rule": "!has(self.stepWeights) || self.stepWeights.isSorted()",
         "message": "stepWeights must be in increasing order"},
        {"rule": "!has(self.stepWeights) || !has(self.maxWeight) || "
                 "self.stepWeights.all(w, w <= self.maxWeight)",
         "message": "stepWeights must not exceed maxWeight"},
        {"rule": "!has(self.match) || has(self.iterations)",
         "message": "match (A/B testing) needs iterations"},
    ]}}

    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    def weight_steps(self) -> list[int]:
        """The canary weights of a weighted canary, in order, ending at maxWeight."""
        if self.step_weights:
            return list(self.step_weights)
        if not self.step_weight:
            return []
        top = self.max_weight or 100
        steps = list(range(self.step_weight, top + 1, self.step_weight))
        if not steps or steps[-1] != top:
            steps.append(top)
        return steps


class CanarySpec(ApiModel):
    target_ref: TargetRef
    autoscaler_ref: AutoscalerRef | None = None
    service: CanaryService
    analysis: CanaryAnalysis
    progress_deadline_seconds: int | None = Field(
        None, ge=1, description="Seconds to wait for a rollout before failing; default 600.")
    skip_analysis: bool | None = Field(None, description="Promote without running checks.")
    suspend: bool | None = Field(None, description="Freeze where it is.")
    revert_on_deletion: bool | None = Field(
        None, description="On deletion, route traffic back to the target and restore it.")


class Phase(StrEnum):
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


class Condition(ApiModel):
    """A metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    observed_generation: int | None = None
    last_transition_time: str
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field("", max_length=32768)


class MetricResult(ApiModel):
    """One metric of the last analysis: what was measured, against what, and the verdict."""

    name: str
    value: float | None = Field(None, description="Absent when the query returned no values.")
    min: float | None = None
    max: float | None = None
    verdict: Literal["Passed", "Failed", "NoValues", "Error"]
    message: str | None = None
    query: str | None = None


class AnalysisRecord(ApiModel):
    time: str
    revision: str
    weight: int
    results: list[MetricResult] = Field(default_factory=list)


class CanaryStatus(ApiModel):
    phase: Phase | None = None
    #: Canary, ABTesting, BlueGreen or BlueGreenMirroring, as inferred from the analysis.
    strategy: str | None = None
    canary_weight: int | None = None
    failed_checks: int | None = None
    iterations: int | None = None
    last_applied_spec: str | None = Field(None, description="Revision being delivered.")
    last_promoted_spec: str | None = Field(None, description="Revision last promoted.")
    last_transition_time: str | None = None
    observed_generation: int | None = None
    #: When the current step started (RFC 3339): analysis timing and the deadlines of
    #: initialization and promotion.
    step_started_at: str | None = None
    #: Since when the canary has not been ready during analysis: its progress deadline.
    canary_unready_since: str | None = None
    #: When traffic (or mirrored, or matched traffic) first reached the ready canary.
    analysis_started_at: str | None = None
    last_analysis: AnalysisRecord | None = None
    conditions: list[Condition] | None = None


class Canary(ApiModel):
    """A progressive delivery of one Deployment."""

    api_version: Literal["canary.dev/v1beta1"] = "canary.dev/v1beta1"
    kind: Literal["Canary"] = "Canary"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: CanarySpec
    status: CanaryStatus = Field(default_factory=CanaryStatus)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", ""))
