"""Webhooks: gates and notifications over HTTP (httpx).

Every call POSTs ``{name, namespace, phase, checksum, metadata}`` (plus ``eventMessage``
and ``eventType`` for event hooks); any 2xx answer is a success. A hook's ``secretRef``
names a Secret whose keys are sent as headers, so tokens never live in the Canary.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import structlog

from canary.core.observation import HookResult
from canary.kube import KubeClient, KubeError
from canary.kube import resources as r
from canary.kube.reads import CachedGet, read
from canary.models.base import parse_duration
from canary.models.canary import Canary, CanaryWebhook

log = structlog.get_logger("canary.webhooks")

#: Seconds one attempt may take when a hook sets no timeout.
DEFAULT_TIMEOUT = 10.0


class WebhookCaller:
    def __init__(self, client: KubeClient, http: httpx.AsyncClient | None = None,
                 cached: CachedGet | None = None) -> None:
        self.client = client
        self.cached = cached
        self.http = http or httpx.AsyncClient()
        self._background: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        """Cancel event hooks still in flight, then close the HTTP client."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.http.aclose()

    def payload(self, canary: Canary, hook: CanaryWebhook) -> dict[str, Any]:
        return {"name": canary.name, "namespace": canary.namespace,
                "phase": str(canary.status.phase or ""),
                "checksum": canary.status.last_applied_spec or "",
                "metadata": dict(hook.metadata or {})}

    async def _headers(self, canary: Canary, hook: CanaryWebhook) -> dict[str, str]:
        if hook.secret_ref is None:
            return {}
        secret = await read(self.client, self.cached, r.SECRETS, hook.secret_ref.name,
                            canary.namespace)
        return {key: base64.b64decode(value).decode().strip()
                for key, value in (secret.get("data") or {}).items()}

    async def call(self, canary: Canary, hook: CanaryWebhook,
                   extra: dict[str, Any] | None = None) -> HookResult:
        """POST to one hook, retrying ``hook.retries`` times; never raises."""
        timeout = parse_duration(hook.timeout) if hook.timeout else DEFAULT_TIMEOUT
        body = self.payload(canary, hook) | (extra or {})
        try:
            headers = await self._headers(canary, hook)
        except (KubeError, ValueError) as exc:
            return HookResult(hook.name, str(hook.type), False,
                              f"Secret {hook.secret_ref.name if hook.secret_ref else ''}: {exc}")
        message = ""
        for attempt in range((hook.retries or 0) + 1):
            if attempt:
                await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))
            try:
                response = await self.http.post(hook.url, json=body, headers=headers,
                                                timeout=timeout)
            except httpx.HTTPError as exc:
                message = f"{exc.__class__.__name__}: {exc}"
                continue
            if response.is_success:
                return HookResult(hook.name, str(hook.type), True, f"HTTP {response.status_code}")
            message = f"HTTP {response.status_code}: {response.text[:200]}"
        return HookResult(hook.name, str(hook.type), False, message)

    async def call_type(self, canary: Canary, type_: str) -> tuple[HookResult, ...]:
        hooks = [h for h in canary.spec.analysis.webhooks or [] if h.type == type_]
        return tuple(await asyncio.gather(*(self.call(canary, h) for h in hooks)))

    def send_event(self, canary: Canary, event_type: str, message: str) -> None:
        """Tell the event hooks, in the background: they never hold up a decision."""
        for hook in canary.spec.analysis.webhooks or []:
            if hook.type != "event":
                continue
            task = asyncio.create_task(self._event(canary, hook, event_type, message))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _event(self, canary: Canary, hook: CanaryWebhook, event_type: str,
                     message: str) -> None:
        result = await self.call(canary, hook, {"eventType": event_type,
                                                "eventMessage": message})
        if not result.passed:
            log.warning("event hook failed", hook=hook.name, error=result.message,
                        canary=f"{canary.namespace}/{canary.name}")
