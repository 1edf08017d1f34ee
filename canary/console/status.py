"""``canary status``: every Canary in one table (or as JSON/YAML), with its last decision."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from canary.console.render import Style, since, table
from canary.console.view import CanaryView
from canary.core.timefmt import format_time
from canary.kube import KubeClient
from canary.kube import resources as r

HEADERS = ("NAMESPACE", "NAME", "PHASE", "WEIGHT", "FAILED", "STRATEGY", "AGE",
           "LAST DECISION")


async def fetch(namespace: str | None, kubeconfig: Path | None = None) -> list[CanaryView]:
    """The Canaries of ``namespace`` (None: of every namespace), by namespace and name."""
    async with await KubeClient.connect(kubeconfig) as client:
        listing = await client.list(r.CANARIES, namespace)
    views = [CanaryView(item) for item in listing.get("items") or []]
    return sorted(views, key=lambda v: (v.namespace, v.name))


def row(view: CanaryView, now: datetime, style: Style) -> list[str]:
    progress = view.progress()
    strategy = view.strategy
    if progress.kind == "iteration" and view.phase not in ("Initialized", "Succeeded"):
        strategy += f" {progress.done}/{progress.total}"
    threshold = view.threshold
    failed = f"{view.failed_checks}/{threshold}" if threshold else str(view.failed_checks)
    if view.failed_checks:
        failed = style(failed, "red")
    decision = view.decision()
    return [view.namespace, view.name, style.phase(view.phase), str(view.weight), failed,
            strategy, since(view.created, now),
            f"{style(decision.reason, 'bold')}: {decision.message}"]


def render_table(views: Sequence[CanaryView], now: datetime, width: int | None = None,
                 style: Style | None = None) -> str:
    """The table ``canary status`` prints; the last column is cut to ``width``."""
    style = style or Style()
    if not views:
        return "No canaries found.\n"
    lines = table(HEADERS, [row(v, now, style) for v in views], width, style)
    return "\n".join(lines) + "\n"


def as_data(view: CanaryView) -> dict[str, Any]:
    """One Canary's summary for ``-o json`` and ``-o yaml``."""
    progress = view.progress()
    decision = view.decision()
    return {
        "namespace": view.namespace, "name": view.name, "phase": view.phase,
        "strategy": view.strategy, "canaryWeight": view.weight,
        "failedChecks": view.failed_checks, "threshold": view.threshold,
        "progress": {"kind": progress.kind, "done": progress.done, "total": progress.total},
        "revision": view.revision, "promotedRevision": view.promoted_revision,
        "lastDecision": {"reason": decision.reason, "message": decision.message,
                         "time": format_time(decision.time) if decision.time else None},
        "lastAnalysis": view.status.get("lastAnalysis"),
        "created": format_time(view.created) if view.created else None,
    }


def render_data(views: Sequence[CanaryView], output: str) -> str:
    data = {"canaries": [as_data(v) for v in views]}
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
