"""``canary describe``: a Canary's spec in short, its status, and the history of its
decisions with their evidence (its events, oldest first, and the last analysis).

Webhooks are shown without anything that may be a credential: a URL loses its password
and query string, metadata shows its keys only, and a ``secretRef`` is named, never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from canary.console.render import Style, bound, clock, number, since, table
from canary.console.view import (
    JUDGE_HEADERS,
    CanaryView,
    EventView,
    events_in_order,
    judge_rows,
    parse_moment,
)
from canary.errors import CanaryError
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r
from canary.models.canary import BUILTIN_METRICS, Canary, CanaryWebhook


async def fetch(name: str, namespace: str, kubeconfig: Path | None = None
                ) -> tuple[CanaryView, list[EventView]]:
    """The Canary and its events (events.k8s.io/v1, ``regarding`` it), oldest first."""
    async with await KubeClient.connect(kubeconfig) as client:
        try:
            canary = await client.get(r.CANARIES, name, namespace)
        except NotFound:
            raise CanaryError(f"Canary {namespace}/{name} not found") from None
        events = await client.list(r.EVENTS, namespace,
                                   field_selector=regarding(name))
    uid = (canary.get("metadata") or {}).get("uid")
    mine = [e for e in events.get("items") or []
            if not uid or (e.get("regarding") or {}).get("uid") in (None, uid)]
    return CanaryView(canary), events_in_order(mine)


def regarding(name: str) -> str:
    """The field selector of the events about Canary ``name``."""
    return f"regarding.kind=Canary,regarding.name={name}"


def safe_url(url: str) -> str:
    """``url`` without a password or query string (either may hold a token)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else f"{user}@{host}"
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def render(view: CanaryView, events: Sequence[EventView], now: datetime,
           style: Style | None = None, width: int | None = None) -> str:
    """What ``canary describe`` prints."""
    style = style or Style()
    fields = [("Name", view.name), ("Namespace", view.namespace)]
    if view.created is not None:
        fields.append(("Created", f"{view.created.isoformat()} "
                                  f"({since(view.created, now)} ago)"))
    canary = view.canary
    lines: list[str] = []
    if canary is None:
        lines = [*_fields(fields, style), style(view.problem or "cannot read this Canary", "red")]
    else:
        lines = _fields(fields + _spec_fields(canary), style) + _spec_lists(canary, style,
                                                                           width)
    lines.append("")
    lines += _status(view, now, style, width)
    lines.append("")
    lines += _analysis(view, now, style, width)
    lines += _judge(view, style, width)
    lines.append("")
    lines += _history(events, now, style, width)
    return "\n".join(lines) + "\n"


def _fields(fields: Sequence[tuple[str, str]], style: Style, indent: str = "") -> list[str]:
    """``Label:   value`` lines, values aligned."""
    width = max(16, max(len(label) for label, _ in fields) + 2)
    return [f"{indent}{style(label + ':', 'bold')}{' ' * (width - len(label) - 1)}{value}"
            for label, value in fields]


def _spec_fields(canary: Canary) -> list[tuple[str, str]]:
    spec = canary.spec
    fields = [("Target", f"{spec.target_ref.kind} {spec.target_ref.name}")]
    if spec.autoscaler_ref is not None:
        fields.append(("Autoscaler", f"{spec.autoscaler_ref.kind} {spec.autoscaler_ref.name} "
                                     f"(the primary gets {spec.autoscaler_ref.name}-primary)"))
    service = spec.service
    name = service.name or spec.target_ref.name
    target_port = service.target_port if service.target_port is not None else service.port
    fields.append(("Service", f"{name} port {service.port} -> {target_port} "
                              f"({service.port_name or 'http'}); also {name}-primary and "
                              f"{name}-canary"))
    if service.gateways:
        fields.append(("Gateways", ", ".join(service.gateways)))
    if service.hosts:
        fields.append(("Hosts", ", ".join(service.hosts)))
    istio = [label for label, value in (
        ("trafficPolicy", service.traffic_policy), ("retries", service.retries),
        ("timeout", service.timeout), ("headers", service.headers),
        ("corsPolicy", service.cors_policy), ("match", service.match),
        ("rewrite", service.rewrite)) if value]
    if istio:
        fields.append(("Istio routing", ", ".join(istio)))
    fields.append(("Strategy", _strategy(canary)))
    deadline = spec.progress_deadline_seconds
    fields.append(("Deadline", f"{deadline}s to make progress" if deadline else
                               "600s to make progress (default)"))
    flags = [label for label, value in (
        ("skipAnalysis", spec.skip_analysis), ("suspend", spec.suspend),
        ("revertOnDeletion", spec.revert_on_deletion)) if value]
    if flags:
        fields.append(("Set", ", ".join(flags)))
    return fields


def _spec_lists(canary: Canary, style: Style, width: int | None) -> list[str]:
    """Metrics with their bounds, webhooks (without secrets) and alerts."""
    analysis = canary.spec.analysis
    lines = [""]
    lines.append(style("Metrics:", "bold"))
    if analysis.metrics:
        rows = []
        for metric in analysis.metrics:
            low, high = metric.bounds()
            if metric.template_ref is not None:
                ref = metric.template_ref
                source = f"MetricTemplate {ref.namespace or canary.namespace}/{ref.name}"
                if metric.template_variables:
                    source += " (" + ", ".join(f"{k}={v}" for k, v in
                                               sorted(metric.template_variables.items())) + ")"
            else:
                source = "built-in" if metric.name in BUILTIN_METRICS else "-"
            rows.append([metric.name, bound(low, high),
                         metric.interval or f"{analysis.interval}*", source])
        lines += _indent(table(("NAME", "BOUND", "WINDOW", "QUERY"), rows, _less(width),
                               style))
        if any(metric.interval is None for metric in analysis.metrics):
            lines.append("  * the analysis interval, or the controller's --min-interval if "
                         "longer")
    else:
        lines.append("  none: only readiness is checked")
    if analysis.webhooks:
        lines.append("")
        lines.append(style("Webhooks:", "bold"))
        lines += _indent(table(("TYPE", "NAME", "URL", "TIMEOUT", "DETAILS"),
                               [_webhook(h) for h in analysis.webhooks], _less(width), style))
    if analysis.alerts:
        lines.append("")
        lines.append(style("Alerts:", "bold"))
        rows = [[a.name, a.severity, f"AlertProvider "
                 f"{a.provider_ref.namespace or canary.namespace}/{a.provider_ref.name}"]
                for a in analysis.alerts]
        lines += _indent(table(("NAME", "SEVERITY", "PROVIDER"), rows, _less(width), style))
    return lines


def _strategy(canary: Canary) -> str:
    analysis = canary.spec.analysis
    every = f"every {analysis.interval}"
    then = f"rollback after {analysis.threshold} failed checks"
    if analysis.iterations is None:
        weights = ", ".join(str(w) for w in analysis.weight_steps())
        text = f"Canary: weights {weights} {every}"
        if analysis.mirror:
            text += f", after a first step on {analysis.mirror_weight or 100}% mirrored requests"
        if analysis.step_weight_promotion:
            text += f"; promotion returns {analysis.step_weight_promotion}% per step"
        if analysis.session_affinity:
            text += f"; sticky by cookie {analysis.session_affinity.cookie_name}"
        return f"{text}; {then}"
    if analysis.match:
        rules = len(analysis.match)
        return f"ABTesting: {analysis.iterations} iterations {every} for requests matching " \
               f"{rules} rule{'s' if rules != 1 else ''}; {then}"
    if analysis.mirror:
        return f"BlueGreenMirroring: {analysis.iterations} iterations {every}, " \
               f"{analysis.mirror_weight or 100}% of requests mirrored; {then}"
    return f"BlueGreen: {analysis.iterations} iterations {every}, then all traffic " \
           f"switches; {then}"


def _webhook(hook: CanaryWebhook) -> list[str]:
    details = []
    if hook.retries:
        details.append(f"{hook.retries} retries")
    if hook.metadata:
        details.append("metadata " + ", ".join(sorted(hook.metadata)))
    if hook.secret_ref is not None:
        details.append(f"headers from Secret {hook.secret_ref.name}")
    if hook.mute_alert:
        details.append("muteAlert")
    return [str(hook.type), hook.name, safe_url(hook.url), hook.timeout or "10s",
            "; ".join(details) or "-"]


def _status(view: CanaryView, now: datetime, style: Style, width: int | None) -> list[str]:
    moment = parse_moment(view.status.get("lastTransitionTime"))
    threshold = view.threshold
    progress = view.progress()
    fields = [("Phase", style.phase(view.phase)
               + (f" (since {since(moment, now)} ago)" if moment else "")),
              ("Strategy", view.strategy)]
    if progress.kind == "iteration":
        fields.append(("Iterations", f"{progress.done}/{progress.total}"))
    fields.append(("Weight", str(view.weight)))
    fields.append(("Failed checks", f"{view.failed_checks}"
                                    + (f"/{threshold}" if threshold else "")))
    if view.revision:
        promoted = view.promoted_revision
        fields.append(("Revision", view.revision + (
            " (promoted)" if promoted == view.revision else f" (promoted: {promoted or '-'})")))
    decision = view.decision()
    fields.append(("Last decision", f"{style(decision.reason, 'bold')}: {decision.message}"))
    lines = [style("Status:", "bold"), *_fields(fields, style, "  ")]
    if view.conditions:
        lines.append("")
        lines.append(style("Conditions:", "bold"))
        rows = [[c.type, c.status, c.reason,
                 since(parse_moment(c.last_transition_time), now), c.message]
                for c in view.conditions]
        lines += _indent(table(("TYPE", "STATUS", "REASON", "AGE", "MESSAGE"), rows,
                               _less(width), style))
    return lines


def _analysis(view: CanaryView, now: datetime, style: Style, width: int | None) -> list[str]:
    record = view.last_analysis
    if record is None:
        return [style("Last analysis:", "bold") + " none yet"]
    moment = parse_moment(record.time)
    head = (f"Last analysis: revision {record.revision}, weight {record.weight}, at "
            f"{clock(moment)} ({since(moment, now)} ago)")
    lines = [style(head, "bold")]
    rows = []
    for result in record.results:
        verdict = style(result.verdict, "green" if result.verdict == "Passed" else "red")
        rows.append([result.name, number(result.value), bound(result.min, result.max),
                     verdict, result.message or ""])
    if rows:
        lines += _indent(table(("CHECK", "VALUE", "BOUND", "VERDICT", "DETAIL"), rows,
                               _less(width), style))
    else:
        lines.append("  no checks")
    return lines


def _judge(view: CanaryView, style: Style, width: int | None) -> list[str]:
    rows = judge_rows(view)
    if not rows:
        return []
    head = ("Judge (canary against primary; the regression and no-regression statistics "
            "are logs, against their bounds):")
    return ["", style(head, "bold"),
            *_indent(table(JUDGE_HEADERS, rows, _less(width), style))]


def _history(events: Sequence[EventView], now: datetime, style: Style,
             width: int | None) -> list[str]:
    lines = [style("History", "bold") + " (events, oldest first; the API server keeps them "
             "for an hour by default):"]
    if not events:
        lines.append("  none")
        return lines
    rows = [[clock(e.time), since(e.time, now),
             style(e.type, "yellow") if e.type == "Warning" else e.type, e.reason, e.note]
            for e in events]
    lines += _indent(table(("TIME", "AGE", "TYPE", "REASON", "MESSAGE"), rows, _less(width),
                           style))
    return lines


def _indent(lines: list[str]) -> list[str]:
    return ["  " + line for line in lines]


def _less(width: int | None) -> int | None:
    return width - 2 if width is not None else None
