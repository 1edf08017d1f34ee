"""Alerts, subscriptions and a stand-in for the controller's watch caches."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

from canary.backoff import Backoff
from canary.models.canary import CanaryAlert
from canary.notify import Alert, Evidence, Notifier, RetryPolicy, Target
from canary.notify.notifier import DeliveryFailure, TemplateProblem

#: Retries in milliseconds, so delivery tests stay fast.
FAST = RetryPolicy(attempts=3, backoff=Backoff(0.01, 0.05, jitter=0), timeout=1.0)
NAMESPACE = "test"
TIME = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def make_alert(severity: str = "error", reason: str = "RolledBack", **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "canary": "podinfo", "namespace": NAMESPACE,
        "target": Target("Deployment", "podinfo"), "severity": severity, "reason": reason,
        "message": "Rolling back podinfo: request-success-rate 95.2 (must be >= 99) "
                   "(failed checks 5/5)",
        "phase": "Failed", "previous_phase": "Progressing", "weight": 0,
        "evidence": (Evidence("request-success-rate", 95.2, 99, None, "Failed"),
                     Evidence("request-duration", 230, None, 500, "Passed")),
        "revision": "7c9d5f", "time": TIME,
    }
    values.update(fields)
    return Alert(**values)


def subscribe(provider: str, severity: str = "info", namespace: str | None = None
              ) -> CanaryAlert:
    return CanaryAlert.model_validate({"name": f"to-{provider}", "severity": severity,
                                       "providerRef": {"name": provider,
                                                       "namespace": namespace}})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Cluster:
    """AlertProviders and Secrets as the watch caches would hold them. The Secret lookup
    is a coroutine function and the provider lookup a plain one: the notifier takes
    either."""

    def __init__(self) -> None:
        self.providers: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.failures: list[DeliveryFailure | TemplateProblem] = []

    def add(self, name: str, address: str, type_: str = "slack",
            namespace: str = NAMESPACE, secret: dict[str, str] | None = None,
            **spec: Any) -> None:
        """An AlertProvider ``name`` whose Secret ``name-url`` holds ``address``."""
        self.providers[(namespace, name)] = {
            "apiVersion": "canary.dev/v1beta1", "kind": "AlertProvider",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": type_, "secretRef": {"name": f"{name}-url"}, **spec}}
        data = {"address": b64(address)} | {k: b64(v) for k, v in (secret or {}).items()}
        self.secrets[(namespace, f"{name}-url")] = {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": f"{name}-url", "namespace": namespace}, "data": data}

    def provider(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.providers.get((namespace, name))

    async def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return self.secrets.get((namespace, name))

    def record(self, failure: DeliveryFailure | TemplateProblem) -> None:
        self.failures.append(failure)

    def notifier(self, **options: Any) -> Notifier:
        options.setdefault("policy", FAST)
        return Notifier(self.secret, self.provider, self.record, **options)
