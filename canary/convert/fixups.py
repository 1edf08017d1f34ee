"""What a Flagger object needs besides carrying its fields over, kind by kind: values
translated to canary's, fields Flagger ignores or canary cannot honour left out, objects
canary cannot carry at all refused, each with a note. A fix-up edits the spec in place
before it is carried; :data:`~canary.convert.carrying.DROP` marks what it left out."""

from __future__ import annotations

import re
from typing import Any

from canary.convert import companions
from canary.convert.carrying import DROP, empty
from canary.convert.context import Context
from canary.convert.paths import Path
from canary.models.canary import BUILTIN_METRICS, Provider
from canary.models.problems import kind_of
from canary.router import supported

#: The query window Flagger gives a metric without ``interval``.
FLAGGER_METRIC_INTERVAL = "1m"


# -- Canary --


def canary(ctx: Context, spec: dict[str, Any]) -> bool:
    """Fix up a Canary's spec; False when the Canary is left out (or refused)."""
    provider = spec.get("provider")
    if provider is not None and not isinstance(provider, str):
        ctx.error(("spec", "provider"), f"expected a string, got {kind_of(provider)}")
        return False
    _provider(ctx, spec, provider)
    other_mesh = isinstance(provider, str) and provider not in ("", "istio")
    if "canaryAnalysis" in spec:
        _canary_analysis(ctx, spec)
    target = spec.get("targetRef")
    if isinstance(target, dict) and target.get("kind") not in (None, "Deployment"):
        ctx.note(("spec", "targetRef", "kind"), f"the Canary is left out: canary "
                 f"delivers Deployments only, not {target.get('kind')}")
        return False
    autoscaler = spec.get("autoscalerRef")
    if isinstance(autoscaler, dict):
        _autoscaler_ref(ctx, spec, autoscaler)
    analysis = spec.get("analysis")
    if isinstance(analysis, dict):
        _analysis(ctx, analysis, ctx.moved.get(("spec", "analysis"), ("spec", "analysis")),
                  other_mesh, provider)
    return True


def _provider(ctx: Context, spec: dict[str, Any], provider: str | None) -> None:
    """Keep a provider canary's CRD accepts, so the Canary is routed as on Flagger or
    refused by a controller that cannot route it; leave out the others."""
    if not provider:
        spec.pop("provider", None)
    elif provider not in {p.value for p in Provider}:
        ctx.note(("spec", "provider"), f"not carried over: the mesh provider {provider} "
                 "is not supported (spec.provider accepts "
                 f"{', '.join(p.value for p in Provider)}); without it, the controller's "
                 "--mesh-provider routes the traffic")
        spec["provider"] = DROP
    elif provider not in supported():
        ctx.note(("spec", "provider"), f"carried over, but this version of canary routes "
                 f"with {', '.join(supported())} only: the Canary stays not Ready "
                 "(UnsupportedProvider) until spec.provider names one of them",
                 lost=False)


def _canary_analysis(ctx: Context, spec: dict[str, Any]) -> None:
    """The deprecated ``spec.canaryAnalysis``: ``spec.analysis`` unless that is set."""
    old = spec.pop("canaryAnalysis")
    if "analysis" in spec:
        if not empty(old):
            ctx.note(("spec", "canaryAnalysis"), "not carried over: Flagger ignores "
                     "it when spec.analysis is set")
    else:
        spec["analysis"] = old
        ctx.note(("spec", "canaryAnalysis"), "moved to spec.analysis (its "
                 "replacement in flagger.app/v1beta1)", lost=False)
        ctx.moved[("spec", "analysis")] = ("spec", "canaryAnalysis")


def _autoscaler_ref(ctx: Context, spec: dict[str, Any], autoscaler: dict[str, Any]) -> None:
    if autoscaler.get("kind") not in (None, "HorizontalPodAutoscaler"):
        ctx.note(("spec", "autoscalerRef"), f"not carried over: canary supports "
                 f"HorizontalPodAutoscalers only, not {autoscaler.get('kind')}")
        spec["autoscalerRef"] = DROP
    elif str(autoscaler.get("apiVersion", "")).startswith("autoscaling/v2beta"):
        ctx.note(("spec", "autoscalerRef", "apiVersion"),
                 f"{autoscaler['apiVersion']} changed to autoscaling/v2 (the "
                 "version canary reads)", lost=False)
        autoscaler["apiVersion"] = "autoscaling/v2"


def _analysis(ctx: Context, analysis: dict[str, Any], path: Path, other_mesh: bool,
              provider: Any) -> None:
    if other_mesh and analysis.get("mirror"):
        ctx.note((*path, "mirror"), f"not carried over: Flagger mirrors traffic only on "
                 f"Istio, so with {provider} this Canary ran as plain blue/green; it "
                 "stays so")
        analysis["mirror"] = DROP
        if "mirrorWeight" in analysis:
            analysis["mirrorWeight"] = DROP
    metrics = analysis.get("metrics")
    if isinstance(metrics, list):
        _metrics(ctx, metrics, path)
    webhooks = analysis.get("webhooks")
    if isinstance(webhooks, list):
        _webhooks(ctx, webhooks, path)


def _metrics(ctx: Context, metrics: list[Any], path: Path) -> None:
    """Keep each metric's query window; leave out the inline queries canary does not run."""
    for index, metric in enumerate(metrics):
        if isinstance(metric, dict):
            _metric_interval(ctx, metric, (*path, "metrics", index))
    for index, metric in enumerate(metrics):
        if not isinstance(metric, dict) or empty(metric.get("query")):
            continue
        here = (*path, "metrics", index)
        if metric.get("name") in BUILTIN_METRICS or metric.get("templateRef"):
            ctx.note((*here, "query"), "not carried over: canary does not run "
                     "inline queries (the built-in or the templateRef query is used)")
            metric["query"] = DROP
        else:
            ctx.note(here, f"not carried over: the metric {metric.get('name')!r} "
                     "has an inline query; put it in a MetricTemplate and refer to "
                     "it with templateRef")
            metrics[index] = DROP


def _metric_interval(ctx: Context, metric: dict[str, Any], here: Path) -> None:
    """Keep a metric's query window."""
    if empty(metric.get("interval")) and (metric.get("name") in BUILTIN_METRICS
                                          or metric.get("templateRef")):
        metric["interval"] = FLAGGER_METRIC_INTERVAL
        ctx.note((*here, "interval"), f"set to {FLAGGER_METRIC_INTERVAL}, Flagger's "
                 "default query window for a metric (canary's default is the analysis "
                 "interval)", lost=False)


def _webhooks(ctx: Context, webhooks: list[Any], path: Path) -> None:
    for index, hook in enumerate(webhooks):
        if not isinstance(hook, dict):
            continue
        if hook.get("type") == "":
            del hook["type"]  # Flagger's zero value: a rollout hook, canary's default
        for sub, message in companions.hook_notes(hook):
            ctx.note((*path, "webhooks", index, *sub), message, lost=False)
        if hook.get("muteAlert") is True:
            ctx.note((*path, "webhooks", index, "muteAlert"), "carried over, but "
                     "canary does not act on it yet: alerts about this hook are sent")


# -- MetricTemplate --


def metric_template(ctx: Context, spec: dict[str, Any]) -> bool:
    """Note what a MetricTemplate's query needs; False when it is left out."""
    provider = spec.get("provider")
    kind = provider.get("type") if isinstance(provider, dict) else None
    if isinstance(kind, str) and kind != "prometheus":
        ctx.note(("spec", "provider", "type"), f"the MetricTemplate is left out: canary "
                 f"queries Prometheus only, not {kind}")
        return False
    address_note = companions.prometheus_note(
        provider.get("address") if isinstance(provider, dict) else None)
    if address_note is not None:
        ctx.note(("spec", "provider", "address"), address_note, lost=False)
    query = spec.get("query")
    if isinstance(query, str) and re.search(r"\{\{\s*ingress\s*\}\}", query):
        ctx.note(("spec", "query"), "uses {{ ingress }}, which canary does not provide "
                 "(no ingress controllers): the query will fail until it is changed")
    return True


# -- AlertProvider --


def alert_provider(ctx: Context, spec: dict[str, Any], metadata: dict[str, Any]
                   ) -> tuple[bool, list[dict[str, Any]]]:
    """Fix up an AlertProvider's spec: whether it is kept, and the Secret its inline
    address moves into (canary reads addresses from Secrets only)."""
    if spec.get("type") == "gchat":
        spec["type"] = "googlechat"
        ctx.note(("spec", "type"), "gchat changed to googlechat (canary's name for "
                 "Google Chat)", lost=False)
    address = spec.pop("address", None)
    if empty(address):
        return True, []
    if not isinstance(address, str):
        ctx.error(("spec", "address"), f"expected a string, got {kind_of(address)}")
        return False, []
    if spec.get("secretRef"):
        ctx.note(("spec", "address"), "dropped: with secretRef set, Flagger reads the "
                 "address from the Secret's `address` key, and so does canary",
                 lost=False)
        return True, []
    secret = f"{metadata['name']}-address"
    namespace = metadata.get("namespace")
    ctx.note(("spec", "address"), f"moved into the Secret {secret} (key address) that "
             "precedes this AlertProvider, with secretRef naming it: canary reads "
             "addresses from Secrets only; keep that Secret out of Git", lost=False)
    spec["secretRef"] = {"name": secret}
    secret_meta: dict[str, Any] = {"name": secret}
    if namespace:
        secret_meta["namespace"] = namespace
    return True, [{"apiVersion": "v1", "kind": "Secret", "metadata": secret_meta,
                   "type": "Opaque", "stringData": {"address": address}}]
