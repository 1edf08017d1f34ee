"""Kubernetes Events (events.k8s.io/v1) about the objects canary manages."""

from __future__ import annotations

import secrets
import socket
from datetime import UTC, datetime

import structlog

from canary.kube.client import JSON, KubeClient
from canary.kube.errors import KubeError
from canary.kube.resources import EVENTS

log = structlog.get_logger("canary.kube.events")

#: The reportingController of every event canary writes.
REPORTING_CONTROLLER = "canary.dev/controller"


class EventRecorder:
    """Writes events; a failure to write one is logged, never raised: an event is a
    report about the work, not part of it."""

    def __init__(self, client: KubeClient, instance: str | None = None) -> None:
        self.client = client
        self.instance = instance or socket.gethostname()

    async def record(self, regarding: JSON, type_: str, reason: str, note: str,
                     action: str | None = None) -> None:
        meta = regarding.get("metadata") or {}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{secrets.token_hex(8)}",
                         "namespace": meta.get("namespace")},
            "eventTime": now, "type": type_, "reason": reason, "note": note[:1024],
            "action": action or reason, "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.instance[:128],
            "regarding": {"apiVersion": regarding.get("apiVersion"),
                          "kind": regarding.get("kind"), "name": meta.get("name"),
                          "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                          "resourceVersion": meta.get("resourceVersion")},
        }
        try:
            await self.client.create(EVENTS, event)
        except KubeError as exc:
            log.warning("could not record event", reason=reason, error=str(exc))
