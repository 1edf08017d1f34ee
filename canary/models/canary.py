"""The ``Canary`` resource (``canary.dev/v1beta1``).

Field names and meanings follow Flagger's ``flagger.app/v1beta1`` Canary, so a Flagger
manifest translates by changing its ``apiVersion``. These models are the single source of
truth: ``crds/`` is generated from them (``canary crds``), validation rules included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

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
    threshold_range: ThresholdRange | None = None
    threshold: float | None = Field(None, description="Deprecated Flagger field: for "
                                    "request-success-rate a minimum, otherwise a maximum.")
    template_ref: TemplateRef | None = None
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
    ERROR_RATE = "errorRate"
    LATENCY = "latency"


class JudgeMetric(ApiModel):
    """One comparison of the canary with the primary, from Istio's standard metrics."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                      description="Names the metric in status and events.")
    type: JudgedMetricType = Field(description=(
        "errorRate: the fraction of 5xx responses (istio_requests_total). latency: the "
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
    check_interval: Duration | None = Field(None, description=(
        "How often the judge also reads the counters between analysis steps, so that a "
        "proven regression is rolled back without waiting for the step to end, e.g. 10s "
        "(the test stays valid however often it is checked). Default: once per step. "
        "Proofs of no regression still act at the end of a step; checks more frequent "
        "than Prometheus scrapes find no new requests and wait for them."))
    metrics: list[JudgeMetric] = Field(min_length=1, max_length=8)
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
    """A gate or a notification: canary POSTs {name, namespace, phase, checksum, metadata,
    timeout} and any 2xx answer counts as success."""

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


class JudgeCounts(ApiModel):
    """Requests and events (errors, or requests slower than the bound) of both versions."""

    canary_requests: int = Field(ge=0)
    canary_events: int = Field(ge=0)
    primary_requests: int = Field(ge=0)
    primary_events: int = Field(ge=0)


class JudgeStateRecord(ApiModel):
    """The judge's memory of one metric (``JudgeState.to_dict()``): its design, the
    totals since the analysis started, and a running log likelihood ratio per grid ratio.
    Bounded: at most 64 numbers however long the analysis runs."""

    minimum_effect: float
    maximum_effect: float
    points: int
    proof_points: int
    between_points: int
    steps: int
    canary_requests: int
    canary_events: int
    primary_requests: int
    primary_events: int
    log_likelihood_ratios: list[float] = Field(max_length=64)


#: The judge's outcomes, as the status spells them.
JudgeOutcome = Literal["regression", "no_regression_proven", "continue"]


class JudgeEvidence(ApiModel):
    """The verdict on one metric at the last step, with what it rests on."""

    outcome: JudgeOutcome
    steps: int = Field(description="Steps whose counts entered the test.")
    canary_requests: int
    canary_events: int
    primary_requests: int
    primary_events: int
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
    detectable: bool
    seconds_to_detect: float | None = Field(None, description=(
        "Expected seconds from the analysis start to detect the minimum effect; absent "
        "when it never would."))
    seconds_to_prove: float | None = Field(None, description=(
        "Expected seconds from the analysis start to prove a healthy canary; absent when "
        "it never would."))
    analysis_seconds: float = Field(description="How long the analysis lasts.")
    canary_rps: float
    primary_rps: float
    base_rate: float = Field(description="The primary's event rate used for the estimate.")
    message: str


class JudgedMetricStatus(ApiModel):
    """One judged metric in the current analysis."""

    name: str
    type: JudgedMetricType
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
    state: JudgeStateRecord | None = None
    evidence: JudgeEvidence | None = None
    proven_at_step: int | None = Field(None, description=(
        "The step at which no regression was first proven."))
    skipped_steps: int = Field(0, description=(
        "Steps that gave no evidence (no data, a counter reset)."))
    message: str | None = Field(None, description="Why the last step gave no evidence.")
    power: JudgePower | None = None


class JudgeStatus(ApiModel):
    """The judge's progress on the revision being analysed; reset for every revision."""

    revision: str
    outcome: JudgeOutcome = Field("continue", description=(
        "regression: a metric proved the canary worse (rolled back). no_regression_proven: "
        "every metric proved it is not worse by its minimum effect. continue: neither yet."))
    alpha: float = Field(description="Each metric's share of the false-rollback budget.")
    beta: float
    steps: int = Field(0, description="Analysis steps judged so far.")
    last_reading_at: str | None = None
    metrics: list[JudgedMetricStatus] = Field(default_factory=list, max_length=8)


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
    #: The statistical judge's evidence on the current revision (when the analysis has a
    #: judge).
    judge: JudgeStatus | None = None
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
