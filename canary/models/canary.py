"""The ``Canary`` resource (``canary.dev/v1beta1``).

Field names and meanings follow Flagger's ``flagger.app/v1beta1`` Canary, so a Flagger
manifest translates by changing its ``apiVersion``. These models are the single source of
truth: ``crds/`` is generated from them (``canary crds``), validation rules included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from canary.models.base import (
    ApiModel,
    ApiObject,
    Duration,
    FreeForm,
    NamespaceName,
    ObjectName,
    parse_duration,
)

GROUP = "canary.dev"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"

BUILTIN_METRICS = ("request-success-rate", "request-duration")
Percent = Annotated[int, Field(ge=0, le=100)]


class TargetRef(ApiModel):
    """The workload this Canary delivers."""

    api_version: Literal["apps/v1"] = Field("apps/v1", description="apps/v1")
    kind: Literal["Deployment"] = Field(description="The kind of the target: Deployment.")
    name: ObjectName = Field(description="The Deployment's name.")


class AutoscalerRef(ApiModel):
    """The HorizontalPodAutoscaler of the target: canary gives the primary a copy of it."""

    api_version: str = Field("autoscaling/v2", description="autoscaling/v2 (the default).")
    kind: Literal["HorizontalPodAutoscaler"] = Field(
        description="The kind of the autoscaler: HorizontalPodAutoscaler.")
    name: ObjectName = Field(description="The HorizontalPodAutoscaler's name.")


class GatewayRef(ApiModel):
    """A parent of the route (the Gateway API's ParentReference): a Gateway, a listener of
    one, or a Service for mesh (GAMMA) routing."""

    group: str | None = Field(None, max_length=253, description=(
        "The parent's API group; defaults to gateway.networking.k8s.io (use \"\" with "
        "kind Service for mesh routing)."))
    kind: str | None = Field(None, max_length=63, description=(
        "The parent's kind; defaults to Gateway."))
    name: ObjectName = Field(description="The parent's name.")
    namespace: str | None = Field(None, max_length=63, description=(
        "The parent's namespace; defaults to the Canary's."))
    section_name: str | None = Field(None, max_length=253, description=(
        "A listener of the Gateway (or a port name of the Service) to attach to."))
    port: int | None = Field(None, ge=1, le=65535, description=(
        "The listener port (or Service port) to attach to."))


class RouteRef(ApiModel):
    """The user's own route, whose rules sending traffic to the apex Service canary splits
    between the primary and the canary, leaving every other rule, filter and hostname as
    the user wrote them."""

    kind: Literal["HTTPRoute", "GRPCRoute"] = Field("HTTPRoute", description=(
        "HTTPRoute (the default) or GRPCRoute."))
    name: ObjectName = Field(description="The route's name, in the Canary's namespace.")


class GatewayImplementation(StrEnum):
    """The Gateway API implementations whose metrics canary knows (any other may serve
    the route; its metrics are then the user's MetricTemplates)."""

    ISTIO = "istio"
    ENVOY_GATEWAY = "envoy-gateway"


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
    hosts: list[str] | None = Field(None, description=(
        "Extra hosts of the VirtualService; the hostnames of canary's HTTPRoute or "
        "GRPCRoute (Gateway API)."))
    gateway_refs: list[GatewayRef] | None = Field(None, max_length=32, description=(
        "Gateway API: the Gateways (or, for mesh routing, the Service) canary's HTTPRoute "
        "or GRPCRoute attaches to (its parentRefs)."))
    route_ref: RouteRef | None = Field(None, description=(
        "Gateway API: route through the user's own HTTPRoute or GRPCRoute instead of one "
        "canary creates. canary edits only the rules whose backendRefs name the apex "
        "Service (and adds its own named rules for A/B testing and session affinity); "
        "other rules, filters and hostnames are left alone. With revertOnDeletion, "
        "deleting the Canary sends those rules to the apex Service again "
        "(docs/gateway-api.md)."))
    app_protocol: str | None = Field(None, max_length=253, description=(
        "The application protocol of the port, as Flagger's. Gateway API: grpc routes "
        "with a GRPCRoute instead of an HTTPRoute."))
    gateway_implementation: str | None = Field(
        None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description=(
            "Gateway API: the implementation serving the route, whose metrics the built-in "
            "checks and the judge read: istio (the default) or envoy-gateway; any other "
            "name (e.g. contour) has no built-in metrics, so every check needs a "
            "templateRef and the judge is refused (docs/metrics.md)."))

    model_config = ApiModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!has(self.routeRef) || !has(self.gatewayRefs)",
         "message": "routeRef uses the parentRefs of the user's route: drop gatewayRefs"},
    ]}}

    @model_validator(mode="after")
    def _one_source_of_parents(self) -> CanaryService:
        if self.route_ref is not None and self.gateway_refs:
            raise ValueError("routeRef uses the parentRefs of the user's route: drop "
                             "gatewayRefs")
        return self
    traffic_policy: FreeForm | None = Field(None,
                                            description="Istio DestinationRule trafficPolicy.")
    retries: FreeForm | None = Field(None, description="Istio HTTPRetry.")
    timeout: Duration | None = Field(None, description="Istio route timeout.")
    headers: FreeForm | None = Field(None, description="Istio header operations.")
    cors_policy: FreeForm | None = Field(None, description="Istio CorsPolicy.")
    match: list[FreeForm] | None = Field(None, description="Istio HTTPMatchRequests of the route.")
    rewrite: FreeForm | None = Field(None, description="Istio HTTPRewrite.")


class ThresholdRange(ApiModel):
    """The bounds a metric's value must stay within; set min, max or both."""

    min: float | None = Field(None, description="Lowest value that passes.")
    max: float | None = Field(None, description="Highest value that passes.")

    model_config = ApiModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "has(self.min) || has(self.max)", "message": "set min, max or both"},
        {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
         "message": "min must not exceed max"},
    ]}}


class TemplateRef(ApiModel):
    """The MetricTemplate whose query a metric runs."""

    name: ObjectName = Field(description="The MetricTemplate's name.")
    namespace: NamespaceName | None = Field(None, description=(
        "Defaults to the Canary's namespace."))


#: The longest templateVariables value: room for a label value or a long alternation.
TEMPLATE_VARIABLE_MAX_LENGTH = 1024
#: A templateVariables value holds no control character: none belongs in a label value or a
#: pattern, and a YAML block scalar's trailing newline is an easy one to send by mistake.
#: Where a value may go is checked against the template's query when it is rendered.
TEMPLATE_VARIABLE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
TemplateVariable = Annotated[str, Field(max_length=TEMPLATE_VARIABLE_MAX_LENGTH,
                                        pattern=TEMPLATE_VARIABLE_PATTERN)]


class CanaryMetric(ApiModel):
    """One check of the analysis: a built-in metric or a MetricTemplate, and its bounds."""

    name: str = Field(min_length=1, description=(
        "request-success-rate (percent of non-5xx) or request-duration (P99, milliseconds) "
        "for built-ins; any name with templateRef."))
    interval: Duration | None = Field(None, description="Query window; defaults to the "
                                      "analysis interval.")
    threshold_range: ThresholdRange | None = Field(None, description=(
        "The bounds the value must stay within: min, max or both."))
    threshold: float | None = Field(None, description="Deprecated Flagger field: for "
                                    "request-success-rate a minimum, otherwise a maximum.")
    template_ref: TemplateRef | None = Field(None, description=(
        "The MetricTemplate whose query gives the value; needed by any metric but the "
        "built-ins."))
    template_variables: dict[str, TemplateVariable] | None = Field(
        None, description=(
            "Values for {{ variables.NAME }} in the template's query, checked where the "
            "query uses them: escaped in strings; in a regex matcher a literal, or literals "
            "separated by | with . for any character, unless the template marks the "
            "placeholder | regex; a duration in a range, a number elsewhere (docs/metrics.md)."
            " No control characters, at most 1024 characters."))

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


#: A minimum effect: a ratio ("1.5x"), a relative increase ("+50%") or an absolute one in
#: percentage points of the event rate ("+0.5pp").
EFFECT_PATTERN = r"^([0-9]+(\.[0-9]+)?x|\+[0-9]+(\.[0-9]+)?(%|pp))$"
#: The largest minimum effect as a ratio (``1000x``), and as a relative increase
#: (``+99900%``, the same ratio); the API server's rules and the models agree on both.
MAXIMUM_RATIO = 1000.0
MAXIMUM_PERCENT = (MAXIMUM_RATIO - 1) * 100


@dataclass(frozen=True)
class Effect:
    """A parsed ``minimumEffect``: a ratio of event rates, or an absolute increase of the
    event rate (a fraction of requests), which the judge converts to a ratio once, from
    the primary's rate before the analysis."""

    ratio: float | None = None
    absolute: float | None = None

    def __str__(self) -> str:
        if self.ratio is not None:
            return f"x{self.ratio:g}"
        return f"+{(self.absolute or 0) * 100:g}pp"


def parse_effect(text: str) -> Effect:
    """``"1.5x"`` -> ratio 1.5; ``"+50%"`` -> ratio 1.5; ``"+0.5pp"`` -> absolute 0.005."""
    if not re.fullmatch(EFFECT_PATTERN, text):
        raise ValueError(f"minimumEffect {text!r} must look like 1.5x, +50% or +0.5pp")
    if text.endswith("x"):
        ratio = float(text[:-1])
        if not 1 < ratio <= MAXIMUM_RATIO:
            raise ValueError(f"minimumEffect {text!r}: a ratio must be above 1 and at most "
                             f"{MAXIMUM_RATIO:g}")
        return Effect(ratio=ratio)
    if text.endswith("%"):
        percent = float(text[1:-1])
        if not 0 < percent <= MAXIMUM_PERCENT:
            raise ValueError(f"minimumEffect {text!r}: the increase must be above 0% and at "
                             f"most +{MAXIMUM_PERCENT:g}%")
        return Effect(ratio=1 + percent / 100)
    points = float(text[1:-2])
    if not 0 < points < 100:
        raise ValueError(f"minimumEffect {text!r}: percentage points must be in (0, 100)")
    return Effect(absolute=points / 100)


class JudgedMetricType(StrEnum):
    """What a judge metric counts as an event: errors, or requests slower than a bound."""

    ERROR_RATE = "errorRate"
    LATENCY = "latency"


class JudgeMetric(ApiModel):
    """One comparison of the canary with the primary, from Istio's standard metrics."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                      description="Names the metric in status and events.")
    type: JudgedMetricType = Field(description=(
        "errorRate: the fraction of 5xx responses and of gRPC calls failed on the server "
        "(istio_requests_total). latency: the "
        "fraction of requests slower than a bucket bound of "
        "istio_request_duration_milliseconds."))
    minimum_effect: str = Field("1.5x", max_length=16, pattern=EFFECT_PATTERN, description=(
        "The smallest regression that matters, as a ratio of the canary's event rate to "
        "the primary's (1.5x, or +50%), or as percentage points of the rate (+0.5pp, "
        "converted to a ratio once, from the primary's rate before the analysis). "
        "Default 1.5x."))
    bound: float | None = Field(None, gt=0, description=(
        "latency: a request slower than this many milliseconds is an event. Must be one of "
        "the histogram's bucket bounds (Istio's defaults include 5, 10, 25, 50, 100, 250, "
        "500, 1000, 2500, 5000)."))
    quantile: float | None = Field(None, gt=0, lt=1, description=(
        "latency, instead of bound: use the smallest bucket bound at or above this "
        "quantile of the primary's latency before the analysis (0.99: its P99)."))

    model_config = ApiModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "self.type != 'latency' || (has(self.bound) != has(self.quantile))",
         "message": "a latency metric needs bound or quantile (one of them)"},
        {"rule": "self.type != 'errorRate' || (!has(self.bound) && !has(self.quantile))",
         "message": "bound and quantile apply to latency metrics only"},
        {"rule": "!has(self.minimumEffect) || !self.minimumEffect.endsWith('x') || "
                 "(double(self.minimumEffect.substring(0, size(self.minimumEffect) - 1)) "
                 f"> 1.0 && double(self.minimumEffect.substring(0, "
                 f"size(self.minimumEffect) - 1)) <= {MAXIMUM_RATIO:.1f})",
         "message": f"a minimumEffect ratio must be above 1 and at most {MAXIMUM_RATIO:g} "
                    "(e.g. 1.5x)"},
        {"rule": "!has(self.minimumEffect) || !self.minimumEffect.endsWith('%') || "
                 "(double(self.minimumEffect.substring(1, size(self.minimumEffect) - 1)) "
                 f"> 0.0 && double(self.minimumEffect.substring(1, "
                 f"size(self.minimumEffect) - 1)) <= {MAXIMUM_PERCENT:.1f})",
         "message": f"a relative minimumEffect must be above +0% and at most "
                    f"+{MAXIMUM_PERCENT:g}%"},
        {"rule": "!has(self.minimumEffect) || !self.minimumEffect.endsWith('pp') || "
                 "(double(self.minimumEffect.substring(1, size(self.minimumEffect) - 2)) "
                 "> 0.0 && double(self.minimumEffect.substring(1, "
                 "size(self.minimumEffect) - 2)) < 100.0)",
         "message": "an absolute minimumEffect must be between +0pp and +100pp"},
    ]}}

    @field_validator("minimum_effect")
    @classmethod
    def _valid_effect(cls, value: str) -> str:
        parse_effect(value)
        return value

    @model_validator(mode="after")
    def _latency_needs_one_bound(self) -> JudgeMetric:
        if self.type == JudgedMetricType.LATENCY and \
                (self.bound is None) == (self.quantile is None):
            raise ValueError(f"judge metric {self.name}: a latency metric needs bound or "
                             "quantile (one of them)")
        if self.type == JudgedMetricType.ERROR_RATE and \
                (self.bound is not None or self.quantile is not None):
            raise ValueError(f"judge metric {self.name}: bound and quantile apply to latency "
                             "metrics only")
        return self

    def effect(self) -> Effect:
        return parse_effect(self.minimum_effect)


class CanaryJudge(ApiModel):
    """A sequential statistical comparison of the canary with the primary, valid however
    often it is checked: it rolls back when a regression is proven (false rollbacks at
    most alpha per rollout) and may promote early when no regression is proven."""

    alpha: float = Field(0.05, gt=0, le=0.5, description=(
        "Bound on the probability of rolling back a canary that is not worse than the "
        "primary, per rollout, across all judged metrics together. Default 0.05."))
    beta: float = Field(0.2, gt=0, le=0.5, description=(
        "Bound on the probability of proving no regression for a metric whose canary is "
        "worse by the minimum effect or more. Default 0.2."))
    promote_early: bool = Field(False, description=(
        "Once every judged metric has proven no regression (and the threshold metrics "
        "pass), skip the remaining steps and promote. Default false."))
    bake_time: Duration | None = Field(None, description=(
        "With promoteEarly: once every judged metric has proven no regression, the canary "
        "goes straight to maxWeight and bakes there; it is promoted once it has served "
        "at maxWeight for bakeTime and the evidence gathered there alone proves no "
        "regression again, so that a canary that degrades after healthy minutes is not "
        "promoted on them. A regression found meanwhile rolls back; if the skipped steps' "
        "time runs out first, the schedule's own promotion follows. Default: half of the "
        "analysis's schedule (steps times interval)."))
    check_interval: Duration | None = Field(None, description=(
        "How often the judge also reads the counters between analysis steps, so that a "
        "proven regression is rolled back without waiting for the step to end, e.g. 10s "
        "(the test stays valid however often it is checked). Default: once per step. "
        "Proofs of no regression still act at the end of a step; checks more frequent "
        "than Prometheus scrapes find no new requests and wait for them."))
    metrics: list[JudgeMetric] = Field(min_length=1, max_length=8, description=(
        "The comparisons to make, 1 to 8, with unique names."))
    exclude_sources: list[Annotated[str, Field(
        min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]] | None = \
        Field(None, max_length=16, description=(
            "Source workloads (Istio's source_workload label) whose requests the judge "
            "leaves out on both sides, e.g. a load tester that sends its requests straight "
            "to the canary's Service: the judge needs requests that reach either version "
            "at random."))

    model_config = ApiModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
         "message": "judge metric names must be unique"},
    ]}}

    @model_validator(mode="after")
    def _unique_names(self) -> CanaryJudge:
        names = [m.name for m in self.metrics]
        if len(names) != len(set(names)):
            raise ValueError("judge metric names must be unique")
        return self

    def check_interval_seconds(self) -> float | None:
        return None if self.check_interval is None else parse_duration(self.check_interval)

    def bake_seconds(self) -> float | None:
        return None if self.bake_time is None else parse_duration(self.bake_time)


class WebhookType(StrEnum):
    """When a webhook is called, and whether its answer gates the rollout."""

    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"
    EVENT = "event"


class SecretKeyRef(ApiModel):
    """A Secret whose keys are sent as HTTP headers."""

    name: ObjectName = Field(description="A Secret in the Canary's namespace.")


class CanaryWebhook(ApiModel):
    """A gate or a notification: canary POSTs {name, namespace, phase, checksum, metadata,
    timeout} and any 2xx answer counts as success."""

    name: str = Field(min_length=1, description="Names the webhook in events and status.")
    type: WebhookType = Field(WebhookType.ROLLOUT, description=(
        "confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, "
        "confirm-promotion, post-rollout, rollback or event; default rollout."))
    url: str = Field(pattern=r"^https?://", description="The http(s) URL canary POSTs to.")
    timeout: Duration | None = Field(None, description="Per attempt; default 10s.")
    retries: int | None = Field(None, ge=0, le=10, description="Extra attempts on failure.")
    mute_alert: bool | None = Field(None, description=(
        "Flagger's field, accepted for compatibility: canary does not act on it yet."))
    metadata: dict[str, str] | None = Field(None, description=(
        "Strings sent in the request's metadata (e.g. cmd for the load tester)."))
    secret_ref: SecretKeyRef | None = Field(
        None, description="Each key of this Secret is sent as an HTTP header (e.g. "
        "Authorization), so credentials never live in the Canary.")


class ProviderRef(ApiModel):
    """The AlertProvider an alert goes to."""

    name: ObjectName = Field(description="The AlertProvider's name.")
    namespace: NamespaceName | None = Field(None, description=(
        "Defaults to the Canary's namespace."))


class CanaryAlert(ApiModel):
    """A subscription of an AlertProvider to this Canary's alerts."""

    name: str = Field(min_length=1, description="Names the subscription.")
    severity: Literal["info", "warn", "error"] = Field("info", description=(
        "The lowest severity sent: info hears everything, warn warnings and errors, error "
        "errors only. Default info."))
    provider_ref: ProviderRef = Field(description="The AlertProvider that sends the alerts.")


class SessionAffinity(ApiModel):
    """Sticky sessions: a user who reached the canary keeps reaching it."""

    cookie_name: str = Field(min_length=1, description=(
        "The cookie set on users routed to the canary."))
    max_age: int | None = Field(None, ge=1, description="Seconds; defaults to 86400.")
    primary_cookie_name: str | None = Field(None, description=(
        "Flagger's field, accepted for compatibility: canary does not use it yet."))


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
    mirror: bool | None = Field(None, description=(
        "Blue/green: copy requests to the canary during the analysis (responses "
        "discarded)."))
    mirror_weight: Percent | None = Field(None, description=(
        "Percent of requests mirrored; default 100."))
    primary_ready_threshold: Percent | None = Field(None, description=(
        "Percent of the primary's replicas that must be available for it to count as "
        "ready; default 100."))
    canary_ready_threshold: Percent | None = Field(None, description=(
        "Percent of the canary's replicas that must be available for it to count as "
        "ready; default 100."))
    session_affinity: SessionAffinity | None = Field(None, description=(
        "Weighted canary: a user who reached the canary keeps reaching it."))
    metrics: list[CanaryMetric] | None = Field(None, max_length=32, description=(
        "The checks of every step, at most 32: a value outside its bounds is a failed "
        "check."))
    webhooks: list[CanaryWebhook] | None = Field(None, max_length=32, description=(
        "Gates and notifications, at most 32."))
    alerts: list[CanaryAlert] | None = Field(None, max_length=16, description=(
        "The AlertProviders that hear about this Canary, at most 16."))
    judge: CanaryJudge | None = Field(None, description=(
        "Compare the canary with the primary with a sequential statistical test, alongside "
        "the threshold metrics (see docs/judge.md)."))

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
        {"rule": "!has(self.judge) || !has(self.iterations) || "
                 "(has(self.mirror) && self.mirror && !has(self.match))",
         "message": "the judge compares versions that share the same traffic at random: use "
                    "it with a weighted canary or blue/green mirroring, not A/B testing or "
                    "blue/green without mirroring"},
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


class Provider(StrEnum):
    """What routes a Canary's traffic (Flagger's ``spec.provider`` values canary knows)."""

    ISTIO = "istio"
    GATEWAY_API = "gatewayapi:v1"
    KUBERNETES = "kubernetes"


#: The analysis fields a ``kubernetes`` provider cannot route, with the CEL condition that
#: they ask for what Services alone cannot do: a weighted split, matched users, mirrored
#: or sticky traffic (its apex Service sends all traffic to one version at a time). Set
#: means truthy: an empty match or ``mirror: false`` asks for nothing.
NEEDS_A_MESH = {
    "stepWeight": "has(self.analysis.stepWeight)",
    "stepWeights": "has(self.analysis.stepWeights)",
    "stepWeightPromotion": "has(self.analysis.stepWeightPromotion)",
    "match": "has(self.analysis.match) && size(self.analysis.match) > 0",
    "mirror": "has(self.analysis.mirror) && self.analysis.mirror",
    "sessionAffinity": "has(self.analysis.sessionAffinity)",
}


def needs_a_mesh(field: str) -> str:
    """Why a ``kubernetes`` Canary cannot set the analysis field ``field``."""
    return (f"spec.provider kubernetes routes all traffic to the primary or all to the "
            f"canary (blue/green with analysis.iterations): spec.analysis.{field} needs a "
            "provider with a mesh")


def _kubernetes_provider_rules() -> list[JsonValue]:
    """One rule per field, so the refusal names the field the manifest sets."""
    return [{"rule": f"!has(self.provider) || self.provider != 'kubernetes' || !({needs})",
             "message": needs_a_mesh(field)} for field, needs in NEEDS_A_MESH.items()]


#: The metrics canary writes the queries of (per data plane: canary.metrics.builtins).
BUILTIN_METRICS = ("request-success-rate", "request-duration")


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _gateway_metrics_rules() -> list[JsonValue]:
    """A Gateway API Canary naming an implementation whose metrics canary does not know
    can have neither built-in checks nor a judge: refused at apply, naming the field."""
    unknown = (f"(!has(self.provider) || self.provider == '{Provider.GATEWAY_API.value}') && "
               "has(self.service.gatewayImplementation) && "
               "!(self.service.gatewayImplementation in "
               f"{_cel_list(tuple(i.value for i in GatewayImplementation))})")
    builtin = (f"self.analysis.metrics.exists(m, !has(m.templateRef) && "
               f"m.name in {_cel_list(BUILTIN_METRICS)})")
    known = ", ".join(i.value for i in GatewayImplementation)
    return [
        {"rule": f"!({unknown}) || !has(self.analysis.metrics) || !({builtin})",
         "message": f"spec.analysis.metrics: {' and '.join(BUILTIN_METRICS)} are built in "
                    f"for the metrics of {known} only; spec.service.gatewayImplementation "
                    "names another implementation: give the metric a templateRef"},
        {"rule": f"!({unknown}) || !has(self.analysis.judge)",
         "message": f"spec.analysis.judge reads the metrics of {known} only; "
                    "spec.service.gatewayImplementation names another implementation"},
        *_grpc_on_envoy_gateway_rules(),
    ]


def _grpc_on_envoy_gateway_rules() -> list[JsonValue]:
    """Envoy Gateway's cluster stats count responses by HTTP status, and a failed gRPC
    call is an HTTP 200: a gRPC Canary there cannot be judged on errors by the built-ins.
    Refused at apply rather than promoted on calls that failed unseen."""
    grpc = (f"has(self.provider) && self.provider == '{Provider.GATEWAY_API.value}' && "
            "has(self.service.gatewayImplementation) && self.service.gatewayImplementation "
            f"== '{GatewayImplementation.ENVOY_GATEWAY.value}' && "
            "has(self.service.appProtocol) && self.service.appProtocol.lowerAscii() == 'grpc'")
    return [
        {"rule": f"!({grpc}) || !has(self.analysis.metrics) || !self.analysis.metrics.exists("
                 "m, !has(m.templateRef) && m.name == 'request-success-rate')",
         "message": "spec.analysis.metrics: request-success-rate on Envoy Gateway counts "
                    "HTTP statuses, and a failed gRPC call is HTTP 200: give the metric a "
                    "templateRef with a query on your gRPC status metrics"},
        {"rule": f"!({grpc}) || !has(self.analysis.judge) || "
                 "!self.analysis.judge.metrics.exists(m, m.type == 'errorRate')",
         "message": "spec.analysis.judge: errorRate on Envoy Gateway counts HTTP statuses, "
                    "and a failed gRPC call is HTTP 200; judge latency only, or use a "
                    "MetricTemplate check for errors"},
    ]


class CanarySpec(ApiModel):
    """What to deliver, how to expose it, and how to judge each new revision."""

    provider: Provider | None = Field(None, description=(
        "What routes the traffic: istio, gatewayapi:v1 (a Gateway API HTTPRoute) or "
        "kubernetes (Services only: blue/green, the apex Service switching from the "
        "primary to the canary at once); defaults to the controller's --mesh-provider. A "
        "provider the controller does not implement leaves the Canary not Ready "
        "(UnsupportedProvider) with nothing written."))
    target_ref: TargetRef = Field(description=(
        "The Deployment to deliver: each change of its pod template is a new revision."))
    autoscaler_ref: AutoscalerRef | None = Field(None, description=(
        "The target's HorizontalPodAutoscaler; the primary gets a copy of it."))
    service: CanaryService = Field(description=(
        "The Services and the Istio routing canary generates for the target."))
    analysis: CanaryAnalysis = Field(description=(
        "How traffic moves to the new revision and which checks it must pass: choose "
        "stepWeight or stepWeights (weighted canary), or iterations (A/B testing with "
        "match, blue/green)."))
    progress_deadline_seconds: int | None = Field(
        None, ge=1, description="Seconds to wait for a rollout before failing; default 600.")
    skip_analysis: bool | None = Field(None, description="Promote without running checks.")
    suspend: bool | None = Field(None, description="Freeze where it is.")
    revert_on_deletion: bool | None = Field(
        None, description="On deletion, route traffic back to the target and restore it.")

    model_config = ApiModel.model_config | {"json_schema_extra": {
        "x-kubernetes-validations": _kubernetes_provider_rules() + _gateway_metrics_rules()}}


class Phase(StrEnum):
    """Where a Canary is in its rollout."""

    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    QUEUED = "Queued"
    PROGRESSING = "Progressing"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


class Condition(ApiModel):
    """A metav1.Condition."""

    type: str = Field(description=(
        "The condition: Ready, Promoted, Reconciling, Stalled, Paused or TrafficSufficient."))
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(None, description=(
        "The Canary's generation the condition was set from."))
    last_transition_time: str = Field(description=(
        "When the status last changed (RFC 3339)."))
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", description=(
        "Why, in one CamelCase word (e.g. MissingReference, WaitingForPrimary)."))
    message: str = Field("", max_length=32768, description="Why, in words.")


class MetricResult(ApiModel):
    """One metric of the last analysis: what was measured, against what, and the verdict."""

    name: str = Field(description="The metric's name in the analysis.")
    value: float | None = Field(None, description="Absent when the query returned no values.")
    min: float | None = Field(None, description="The lowest value that passes, if any.")
    max: float | None = Field(None, description="The highest value that passes, if any.")
    verdict: Literal["Passed", "Failed", "NoValues", "Error", "Unavailable"] = Field(
        description=("Passed, Failed (out of bounds), NoValues (the query returned "
                     "nothing), Error (the query failed) or Unavailable (the metrics "
                     "server could not answer: no evidence, the step holds)."))
    message: str | None = Field(None, description="Why it did not pass.")
    query: str | None = Field(None, description="The query as it was run.")


class AnalysisRecord(ApiModel):
    """The checks of the last analysis step."""

    time: str = Field(description="When the step was checked (RFC 3339).")
    revision: str = Field(description="The revision analysed.")
    weight: int = Field(description="The canary weight during the step, percent.")
    results: list[MetricResult] = Field(default_factory=list, description=(
        "One result per metric."))


class JudgeCounts(ApiModel):
    """Requests and events (errors, or requests slower than the bound) of both versions."""

    canary_requests: int = Field(ge=0, description="Requests to the canary.")
    canary_events: int = Field(ge=0, description="Events of the canary.")
    primary_requests: int = Field(ge=0, description="Requests to the primary.")
    primary_events: int = Field(ge=0, description="Events of the primary.")


class JudgeStateRecord(ApiModel):
    """The judge's memory of one metric (``JudgeState.to_dict()``): its design, the
    totals since the analysis started, and a running log likelihood ratio per grid ratio.
    Bounded: two lists of at most 64 numbers however long the analysis runs."""

    minimum_effect: float = Field(description="The smallest regression, as a ratio.")
    maximum_effect: float = Field(description="The largest regression weighed, as a ratio.")
    points: int = Field(description="Ratios the regression test weighs.")
    proof_points: int = Field(description="Ratios the no-regression test weighs.")
    between_points: int = Field(description=(
        "Ratios between 1 and the minimum effect that refine the confidence sequence."))
    steps: int = Field(description="Steps whose counts entered the test.")
    canary_requests: int = Field(description="Requests to the canary since the start.")
    canary_events: int = Field(description="Events of the canary since the start.")
    primary_requests: int = Field(description="Requests to the primary since the start.")
    primary_events: int = Field(description="Events of the primary since the start.")
    log_likelihood_ratios: list[float] = Field(max_length=64, description=(
        "The running log likelihood ratio of each ratio weighed, at most 64."))
    recent_log_likelihood_ratios: list[float] | None = Field(None, max_length=64, description=(
        "For each regression ratio, the log of the likelihood ratios of the steps since "
        "each start step, mixed over the start steps: the evidence of a change during "
        "the analysis."))


#: The judge's outcomes, as the status spells them.
JudgeOutcome = Literal["regression", "no_regression_proven", "continue"]


class JudgeEvidence(ApiModel):
    """The verdict on one metric at the last step, with what it rests on."""

    outcome: JudgeOutcome = Field(description=(
        "regression, no_regression_proven or continue (neither yet)."))
    steps: int = Field(description="Steps whose counts entered the test.")
    canary_requests: int = Field(description="Requests to the canary in those steps.")
    canary_events: int = Field(description="Events of the canary in those steps.")
    primary_requests: int = Field(description="Requests to the primary in those steps.")
    primary_events: int = Field(description="Events of the primary in those steps.")
    ratio: float | None = Field(None, description=(
        "The canary's event rate over the primary's (absent while undefined)."))
    ratio_lower: float = Field(description="Lower end of the confidence sequence.")
    ratio_upper: float | None = Field(None, description=(
        "Upper end of the confidence sequence; absent when unbounded."))
    log_regression: float = Field(description="Log of the regression test's statistic.")
    log_regression_bound: float = Field(description="log(1/alpha): a regression at or above.")
    log_no_regression: float = Field(description="Log of the no-regression statistic.")
    log_no_regression_bound: float = Field(description="log(1/beta): proven at or above.")


class JudgePower(ApiModel):
    """Whether the traffic measured before the rollout, or in the last step, can decide
    within the analysis."""

    measured: Literal["BeforeRollout", "LastStep"] = Field("LastStep", description=(
        "Where the rates come from: BeforeRollout, the interval before the analysis "
        "started (until the first judged step); LastStep, the last judged step."))
    detectable: bool = Field(description=(
        "Whether the minimum effect can be detected within the analysis."))
    seconds_to_detect: float | None = Field(None, description=(
        "Expected seconds from the analysis start to detect the minimum effect; absent "
        "when it never would."))
    seconds_to_prove: float | None = Field(None, description=(
        "Expected seconds from the analysis start to prove a healthy canary; absent when "
        "it never would."))
    analysis_seconds: float = Field(description="How long the analysis lasts.")
    canary_rps: float = Field(description="The canary's requests per second.")
    primary_rps: float = Field(description="The primary's requests per second.")
    base_rate: float = Field(description="The primary's event rate used for the estimate.")
    message: str = Field(description="The estimate, in words.")


class JudgedMetricStatus(ApiModel):
    """One judged metric in the current analysis."""

    name: str = Field(description="The judge metric's name.")
    type: JudgedMetricType = Field(description="errorRate or latency.")
    spec: str = Field(description=(
        "The metric's settings this evidence was gathered under; changing them restarts "
        "the metric's evidence."))
    minimum_effect: float | None = Field(None, description=(
        "The minimum effect as a ratio, fixed for the analysis (absent until the primary's "
        "rate is known when minimumEffect is absolute)."))
    bound: float | None = Field(None, description=(
        "latency: the bucket bound in milliseconds, fixed for the analysis."))
    baseline: JudgeCounts | None = Field(None, description=(
        "Cumulative counters at the first reading: the primary's give the rate before the "
        "analysis (for +pp effects and quantile bounds)."))
    reading: JudgeCounts | None = Field(None, description=(
        "The cumulative counters at the last step: the next step's counts are the "
        "difference (absent after a step without data: the next reading starts afresh)."))
    reading_at: str | None = Field(None, description=(
        "When Prometheus evaluated the reading (RFC 3339, milliseconds): the next reading "
        "checks every series against this instant."))
    state: JudgeStateRecord | None = Field(None, description=(
        "The test's memory: its design, the totals since the analysis started and a "
        "running log likelihood ratio per ratio weighed."))
    evidence: JudgeEvidence | None = Field(None, description=(
        "The verdict at the last step, with what it rests on."))
    proven_at_step: int | None = Field(None, description=(
        "The step at which no regression was first proven."))
    skipped_steps: int = Field(0, description=(
        "Steps that gave no evidence (no data, a counter reset)."))
    message: str | None = Field(None, description="Why the last step gave no evidence.")
    power: JudgePower | None = Field(None, description=(
        "Whether the measured traffic can decide within the analysis."))
    bake_start: list[float] | None = Field(None, max_length=64, description=(
        "While the canary bakes at maxWeight: the running log likelihood ratios when the "
        "bake began, so that the bake's own evidence is the difference."))
    bake_log_no_regression: float | None = Field(None, description=(
        "While the canary bakes: the log no-regression statistic of the evidence gathered "
        "during the bake alone (proven at or above logNoRegressionBound)."))


class JudgeBake(ApiModel):
    """An early promotion under way: the canary serves at maxWeight until its evidence
    there proves no regression by itself."""

    started_at: str = Field(description="When the bake began (RFC 3339).")
    seconds: float = Field(ge=0, description="The bake time in force, in seconds.")
    steps_left: int = Field(ge=0, description=(
        "Steps of the schedule the bake still stands in for; at 0 the schedule's own "
        "promotion follows."))


class JudgeStatus(ApiModel):
    """The judge's progress on the revision being analysed; reset for every revision."""

    revision: str = Field(description="The revision being judged.")
    outcome: JudgeOutcome = Field("continue", description=(
        "regression: a metric proved the canary worse (rolled back). no_regression_proven: "
        "every metric proved it is not worse by its minimum effect. continue: neither yet."))
    alpha: float = Field(description="Each metric's share of the false-rollback budget.")
    beta: float = Field(description=(
        "Each metric's bound on the probability of proving no regression wrongly."))
    steps: int = Field(0, description="Analysis steps judged so far.")
    last_reading_at: str | None = Field(None, description=(
        "When Prometheus evaluated the last reading (RFC 3339)."))
    metrics: list[JudgedMetricStatus] = Field(default_factory=list, max_length=8, description=(
        "One entry per judge metric."))
    bake: JudgeBake | None = Field(None, description=(
        "With promoteEarly, after every metric proved no regression: the bake at maxWeight "
        "before the promotion."))


class CanaryStatus(ApiModel):
    """Where the rollout stands, written by the controller: phase, weight, failed checks,
    the last analysis and the conditions (Ready, Promoted, Reconciling, Stalled)."""

    phase: Phase | None = Field(None, description=(
        "Initializing, Initialized, Waiting, Queued, Progressing, Promoting, Finalising, "
        "Succeeded, Failed, Terminating or Terminated."))
    strategy: str | None = Field(None, description=(
        "Canary, ABTesting, BlueGreen or BlueGreenMirroring, as inferred from the "
        "analysis."))
    canary_weight: int | None = Field(None, description=(
        "Percent of traffic routed to the canary."))
    failed_checks: int | None = Field(None, description=(
        "Failed checks of the current analysis; at the analysis threshold it rolls back."))
    iterations: int | None = Field(None, description=(
        "Analysis steps done (A/B testing, blue/green)."))
    last_applied_spec: str | None = Field(None, description="Revision being delivered.")
    last_promoted_spec: str | None = Field(None, description="Revision last promoted.")
    last_transition_time: str | None = Field(None, description=(
        "When the phase last changed (RFC 3339)."))
    observed_generation: int | None = Field(None, description=(
        "The Canary's generation this status was written from."))
    queued_at: str | None = Field(None, description=(
        "While a new revision waits for a rollout slot (phase Queued, under the "
        "controller's --max-concurrent-rollouts): when it joined the queue (RFC 3339). "
        "Queued rollouts start in this order; a newer revision arriving meanwhile keeps "
        "the place."))
    step_started_at: str | None = Field(None, description=(
        "When the current step started (RFC 3339): analysis timing and the deadlines of "
        "initialization and promotion."))
    canary_unready_since: str | None = Field(None, description=(
        "Since when the canary has not been ready during analysis (RFC 3339): its "
        "progress deadline."))
    no_requests_since: str | None = Field(None, description=(
        "Since when the analysis steps have seen no request to the canary (RFC 3339): the "
        "weight holds meanwhile, and the rollout is rolled back once this lasts the "
        "progress deadline."))
    no_evidence_since: str | None = Field(None, description=(
        "Since when the judge's readings at the steps' ends have been unusable (a failed "
        "query, counters that are no counts, a counter reset, and the reading after one) "
        "(RFC 3339): the weight holds meanwhile, and the rollout is rolled back once this "
        "lasts the progress deadline."))
    metrics_unavailable_since: str | None = Field(None, description=(
        "Since when the metrics server has not answered at the steps' ends (RFC 3339): "
        "the weight holds meanwhile, and the rollout is rolled back once this lasts the "
        "progress deadline."))
    analysis_started_at: str | None = Field(None, description=(
        "When traffic (or mirrored, or matched traffic) first reached the ready canary "
        "(RFC 3339)."))
    last_analysis: AnalysisRecord | None = Field(None, description=(
        "The checks of the last analysis step: each metric's value, bounds and verdict."))
    judge: JudgeStatus | None = Field(None, description=(
        "The statistical judge's evidence on the current revision (when the analysis has a "
        "judge)."))
    conditions: list[Condition] | None = Field(None, description=(
        "Ready (whether the released revision is delivered: False during a rollout, after "
        "a rollback, or for a problem such as a missing reference), Promoted (the "
        "rollout's outcome), and kstatus's Reconciling (a rollout under way) and Stalled "
        "(a rollback, or a problem no wait fixes), present only while True."))


class Canary(ApiObject):
    """A progressive delivery of one Deployment."""

    kind: Literal["Canary"] = "Canary"
    spec: CanarySpec
    status: CanaryStatus = Field(default_factory=CanaryStatus)
