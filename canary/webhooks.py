"""Webhooks: gates and notifications over HTTP (httpx).

Every call POSTs ``{name, namespace, phase, checksum, metadata, timeout}`` (plus
``eventMessage`` and ``eventType`` for event hooks); ``timeout`` is how long the answer is
waited for, so a hook that runs something can stop it in time. Any 2xx answer is a
success; a redirect is a failure and is not followed (:mod:`canary.outbound` bounds
each call in time and memory whatever the hook does). A hook's ``secretRef``
names a Secret whose keys are sent as headers, so tokens never live in the Canary.

A hook's answer becomes a message in the Canary's status, its events, the controller's
log and alerts, so no message this module produces holds a header value from a Secret:
a gate that echoes the request, or an error quoting a header, is shown with ``***``
in its place. A failed hook's message starts with its URL, without the credentials in
it and with its query values shown as ``***`` (nor are those shown elsewhere in the
message). A value that is not a valid header value is refused before anything is
sent, with a message naming the Secret and the key, never the value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import json
import re
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import structlog

from canary import outbound
from canary.backoff import Backoff
from canary.core.observation import HookResult
from canary.errors import CanaryError
from canary.kube import KubeClient, KubeError
from canary.kube import resources as r
from canary.kube.reads import CachedGet, read
from canary.models.base import format_duration, parse_duration
from canary.models.canary import Canary, CanaryWebhook
from canary.redact import excerpt, redact, shown_url, url_secrets

log = structlog.get_logger("canary.webhooks")

#: Seconds one attempt may take when a hook sets no timeout.
DEFAULT_TIMEOUT = 10.0
#: Seconds before the first retry (0.5); each next retry waits twice as long, at most 5.
RETRY_BACKOFF = Backoff(0.5, 5.0)
#: Characters of a failed answer's body kept in its message.
BODY_EXCERPT = 200
#: What replaces a header value from a Secret in a message.
REDACTED = "***"
#: Words of a header value at least this long are also redacted on their own (a gate may
#: echo the token without its scheme); the whole value always is.
_MIN_WORD = 4
#: Authorization schemes: the words of a value that are not secret.
_SCHEMES = frozenset({"basic", "bearer", "digest", "token", "apikey", "api-key",
                      "negotiate"})
#: An HTTP header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class SecretHeaderError(CanaryError, ValueError):
    """A Secret's key or value cannot be sent as a header; the text never holds the value."""


def secret_forms(value: str) -> set[str]:
    """Every form of a header value that must not be shown: as stored and stripped, its
    long words but the scheme, and the credentials in a Basic value; each also as an
    echoing server may have escaped it (Python and JSON quoting, ``\\/``, ``\\u`` escapes,
    percent-encoding, HTML entities)."""
    plain = {value, value.strip()}
    words = value.split()
    plain.update(w for w in words if len(w) >= _MIN_WORD and w.lower() not in _SCHEMES)
    if len(words) == 2 and words[0].lower() == "basic":
        try:
            credentials = base64.b64decode(words[1], validate=True).decode()
        except (binascii.Error, ValueError):
            credentials = ""
        plain.add(credentials)
        plain.add(credentials.partition(":")[2])
    forms = set(plain)
    for form in plain:
        forms.update({repr(form)[1:-1], json.dumps(form)[1:-1],
                      json.dumps(form, ensure_ascii=False)[1:-1].replace("/", "\\/"),
                      "".join(f"\\u{ord(c):04x}" if not c.isalnum() else c for c in form),
                      quote(form, safe=""), quote_plus(form), html.escape(form)})
    return {form for form in forms if form}


def header_value(secret: str, key: str, raw: str) -> str:
    """The header a Secret's base64 ``raw`` value becomes, stripped; SecretHeaderError
    (naming the Secret and the key only) when it is not one."""
    where = f"Secret {secret}, key {key}"
    if not _HEADER_NAME.fullmatch(key):
        raise SecretHeaderError(f"{where}: not a valid HTTP header name")
    try:
        value = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, TypeError):
        raise SecretHeaderError(f"{where}: the value is not base64-encoded UTF-8 text"
                                ) from None
    value = value.strip()
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise SecretHeaderError(f"{where}: the value holds a control character (a line "
                                "break?), which a header cannot carry")
    if not value.isascii():
        raise SecretHeaderError(f"{where}: the value holds non-ASCII characters, which "
                                "a header cannot carry")
    return value


class WebhookCaller:
    def __init__(self, client: KubeClient, http: httpx.AsyncClient | None = None,
                 cached: CachedGet | None = None) -> None:
        self.client = client
        self.cached = cached
        self.http = http or outbound.client()
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
                "metadata": dict(hook.metadata or {}),
                "timeout": hook.timeout or format_duration(DEFAULT_TIMEOUT)}

    async def _headers(self, canary: Canary, hook: CanaryWebhook
                       ) -> tuple[dict[str, str], set[str]]:
        """The headers from the hook's Secret, and every form of their values to keep
        out of messages."""
        if hook.secret_ref is None:
            return {}, set()
        name = hook.secret_ref.name
        secret = await read(self.client, self.cached, r.SECRETS, name, canary.namespace)
        headers: dict[str, str] = {}
        secrets: set[str] = set()
        for key, raw in (secret.get("data") or {}).items():
            headers[key] = header_value(name, key, raw)
            secrets |= secret_forms(headers[key])
        return headers, secrets

    async def call(self, canary: Canary, hook: CanaryWebhook,
                   extra: dict[str, Any] | None = None) -> HookResult:
        """POST to one hook, retrying ``hook.retries`` times; never raises. Each attempt
        may take the hook's timeout in all, its answer's body included (of which at most
        :data:`canary.outbound.BODY_LIMIT` bytes are read); any 2xx answer passes, and a
        redirect fails, not followed."""
        timeout = parse_duration(hook.timeout) if hook.timeout else DEFAULT_TIMEOUT
        body = self.payload(canary, hook) | (extra or {})
        try:
            headers, secrets = await self._headers(canary, hook)
        except SecretHeaderError as exc:
            return _failed(hook, str(exc))
        except KubeError as exc:
            name = hook.secret_ref.name if hook.secret_ref else ""
            return _failed(hook, f"Secret {name}: {exc}")
        for part in url_secrets(hook.url):
            secrets |= secret_forms(part)
        attempts = (hook.retries or 0) + 1
        message = ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(RETRY_BACKOFF.delay(attempt))
            try:
                answer = await outbound.post(self.http, hook.url, body, timeout, headers)
            except outbound.TimedOut as exc:
                message = str(exc)
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                message = _excerpt(outbound.describe(exc), secrets)
                continue
            if answer.ok:
                return HookResult(hook.name, str(hook.type), True, f"HTTP {answer.status}")
            message = answer.summary(lambda part: redact(part, secrets, REDACTED),
                                     BODY_EXCERPT)
        if attempts > 1:
            message += f" ({attempts} attempts)"
        return _failed(hook, message)

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


def _failed(hook: CanaryWebhook, message: str) -> HookResult:
    """A failed call: its message says where the hook was called."""
    return HookResult(hook.name, str(hook.type), False,
                      f"{shown_url(hook.url, REDACTED)}: {message}")


def _excerpt(text: str, secrets: set[str]) -> str:
    """``text`` on one line, without any of ``secrets``, cut to BODY_EXCERPT characters."""
    return excerpt(text, lambda part: redact(part, secrets, REDACTED), BODY_EXCERPT)
