"""The notifier: takes alerts from the controller and delivers them in the background.

The controller calls :meth:`Notifier.notify`, which only filters and enqueues: it never
waits, never does I/O and never raises for a delivery problem. Each AlertProvider has its
own bounded queue and worker, so alerts reach one provider in order and a provider that
hangs or refuses delays nobody else; when a queue is full the alert is dropped, counted
and logged rather than held in memory. A worker looks the provider and its Secret up at
sending time (so edits and rotated Secrets apply at once), builds the payload, and POSTs
it with retries (:mod:`canary.notify.delivery`). An alert that cannot be delivered, and a
provider template naming unknown variables, are handed to the ``on_failure`` callback
(the controller makes each a Warning event on the Canary).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import httpx
import structlog
from pydantic import ValidationError

from canary import __version__, outbound
from canary.models.canary import CanaryAlert
from canary.models.problems import describe
from canary.models.templates import AlertProvider, AlertProviderSpec
from canary.notify.address_redaction import RedactingFilter, redact_addresses
from canary.notify.alert import Alert, accepts
from canary.notify.delivery import DeliveryResult, RetryPolicy, Sleep, post
from canary.notify.errors import AddressUnavailable, NotifyError, ProviderUnavailable
from canary.notify.payloads import build
from canary.notify.template import unknown_variables

log = structlog.get_logger("canary.notify")

T = TypeVar("T")
#: A Secret as the API returns it (``data`` base64-encoded).
SecretObject = Mapping[str, Any]
#: (namespace, name) -> the Secret, or None; may be a coroutine function.
SecretLookup = Callable[[str, str], SecretObject | Awaitable[SecretObject | None] | None]
#: An AlertProvider, as the model or as the API object.
ProviderObject = AlertProvider | Mapping[str, Any]
#: (namespace, name) -> the AlertProvider, or None; may be a coroutine function.
ProviderLookup = Callable[[str, str], ProviderObject | Awaitable[ProviderObject | None] | None]
#: Told about each alert that could not be delivered, and about a provider's template
#: naming unknown variables; may be a coroutine function.
FailureCallback = Callable[["DeliveryFailure | TemplateProblem"], Awaitable[None] | None]
#: proxy URL (or None for a direct connection) -> the client used for it.
ClientFactory = Callable[[str | None], httpx.AsyncClient]

#: Loggers whose records may name a request's URL.
_HTTP_LOGGERS = ("httpx", "httpcore")


@dataclass(frozen=True)
class DeliveryFailure:
    """An alert that did not reach a provider, and why (safe to publish: no address)."""

    alert: Alert
    #: The AlertProvider, ``namespace/name``.
    provider: str
    provider_type: str | None
    #: CamelCase, for an event: AlertDeliveryFailed, AlertProviderUnavailable or
    #: AlertAddressUnavailable.
    reason: str
    message: str
    attempts: int = 0

    def event_message(self) -> str:
        """A sentence for the Canary's Warning event."""
        kind = f" ({self.provider_type})" if self.provider_type else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return (f"Alert {self.alert.reason} ({self.alert.severity}) was not delivered to "
                f"AlertProvider {self.provider}{kind}{tries}: {self.message}")


@dataclass(frozen=True)
class TemplateProblem:
    """A provider's ``messageTemplate`` names variables that do not exist. The alert is
    still sent, with those names left as written; this says so where people look (a
    Warning event on the Canary), once per provider, template and Canary."""

    alert: Alert
    #: The AlertProvider, ``namespace/name``.
    provider: str
    provider_type: str | None
    #: The unknown names, in the order the template uses them.
    unknown: tuple[str, ...]
    reason: str = "AlertTemplateInvalid"

    def event_message(self) -> str:
        """A sentence for the Canary's Warning event."""
        kind = f" ({self.provider_type})" if self.provider_type else ""
        names = ", ".join(f"${name}" for name in self.unknown)
        plural = "s" if len(self.unknown) > 1 else ""
        return (f"The messageTemplate of AlertProvider {self.provider}{kind} uses unknown "
                f"variable{plural} {names}, sent as written; see docs/alerts.md for the "
                "variables")


@dataclass
class ProviderStats:
    """Counts for one AlertProvider since the notifier started."""

    queued: int = 0
    delivered: int = 0
    failed: int = 0
    #: Alerts refused because the queue was full or the notifier was closing.
    dropped: int = 0


@dataclass
class _Lane:
    """One provider's queue, worker and counts."""

    queue: asyncio.Queue[Alert]
    stats: ProviderStats = field(default_factory=ProviderStats)
    worker: asyncio.Task[None] | None = None
    busy: bool = False


async def _resolved(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return await cast(Awaitable[T], value)
    return value


def _decoded(secret: Mapping[str, Any], key: str, where: str) -> str | None:
    raw = (secret.get("data") or {}).get(key)
    if not raw:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode().strip()
    except (ValueError, UnicodeDecodeError):
        raise AddressUnavailable(f"the `{key}` key of {where} is not base64 UTF-8 text") \
            from None


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class Notifier:
    """Alert delivery, one background worker per AlertProvider.

    ``secrets`` and ``providers`` find objects (sync or async; the controller passes its
    watch caches, so a lookup costs no API request). ``policy`` sets retries and
    timeouts; ``queue_size`` bounds each provider's backlog; ``drain_timeout`` bounds how
    long :meth:`aclose` waits for queued alerts. ``client_factory`` builds the HTTP client
    for a proxy URL or None (custom TLS, test transports); ``sleep`` is how retries wait.
    Call :meth:`notify` from the event loop the notifier was started in.
    """

    def __init__(self, secrets: SecretLookup, providers: ProviderLookup,
                 on_failure: FailureCallback | None = None, *,
                 policy: RetryPolicy | None = None, queue_size: int = 100,
                 drain_timeout: float = 5.0, client_factory: ClientFactory | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._secrets = secrets
        self._providers = providers
        self._on_failure = on_failure
        self.policy = policy or RetryPolicy()
        self._queue_size = max(1, queue_size)
        self._drain_timeout = drain_timeout
        self._client_factory = client_factory or self._default_client
        self._sleep = sleep
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._filter = RedactingFilter()
        #: (provider, template, canary namespace, canary name) already reported.
        self._reported_templates: set[tuple[str, str, str, str]] = set()
        self._started = False
        self._closed = False

    # Lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering (alerts accepted before this wait in their queues)."""
        if self._started or self._closed:
            return
        self._started = True
        for name in _HTTP_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)
        for key, lane in self._lanes.items():
            self._spawn(key, lane)

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop accepting alerts, deliver what is queued for at most ``timeout`` seconds
        (default ``drain_timeout``), then stop the workers and close the connections."""
        if self._closed:
            return
        self._closed = True
        limit = self._drain_timeout if timeout is None else timeout
        running = [lane for lane in self._lanes.values() if lane.worker is not None]
        if running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(lane.queue.join() for lane in running)), limit)
        left = sum(lane.queue.qsize() + lane.busy for lane in self._lanes.values())
        if left:
            log.warning("alerts not delivered before shutdown", alerts=left,
                        waited=limit)
        workers = [lane.worker for lane in self._lanes.values() if lane.worker is not None]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        if self._started:
            for name in _HTTP_LOGGERS:
                logging.getLogger(name).removeFilter(self._filter)

    async def __aenter__(self) -> Notifier:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    # Accepting alerts ----------------------------------------------------------------

    def notify(self, alert: Alert, subscriptions: Iterable[CanaryAlert] | None) -> int:
        """Queue ``alert`` for every provider whose subscription (a Canary's
        ``analysis.alerts`` entry) accepts its severity; returns how many were queued.

        Never blocks and never raises for delivery problems. A provider named by several
        accepting entries hears the alert once.
        """
        if alert.time is None:
            alert = replace(alert, time=datetime.now(UTC))
        keys: dict[tuple[str, str], None] = {}
        for subscription in subscriptions or ():
            if accepts(subscription.severity, alert.severity):
                ref = subscription.provider_ref
                keys[(ref.namespace or alert.namespace, ref.name)] = None
        queued = 0
        for key in keys:
            lane = self._lane(key)
            if self._closed:
                self._drop(key, lane, alert, "the notifier is shutting down")
                continue
            try:
                lane.queue.put_nowait(alert)
            except asyncio.QueueFull:
                self._drop(key, lane, alert, "the provider's queue is full")
                continue
            lane.stats.queued += 1
            queued += 1
        return queued

    @property
    def stats(self) -> Mapping[str, ProviderStats]:
        """Counts per AlertProvider (``namespace/name``)."""
        return {f"{ns}/{name}": lane.stats for (ns, name), lane in self._lanes.items()}

    @property
    def dropped(self) -> int:
        """Alerts dropped in all (queues full, or sent after :meth:`aclose`)."""
        return sum(lane.stats.dropped for lane in self._lanes.values())

    def pending(self) -> int:
        """Alerts queued or being delivered, across all providers."""
        return sum(lane.queue.qsize() + lane.busy for lane in self._lanes.values())

    def _lane(self, key: tuple[str, str]) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(asyncio.Queue(self._queue_size))
            if self._started and not self._closed:
                self._spawn(key, lane)
        return lane

    def _spawn(self, key: tuple[str, str], lane: _Lane) -> None:
        lane.worker = asyncio.get_running_loop().create_task(
            self._work(key, lane), name=f"notify:{key[0]}/{key[1]}")

    def _drop(self, key: tuple[str, str], lane: _Lane, alert: Alert, why: str) -> None:
        lane.stats.dropped += 1
        log.warning("alert dropped", why=why, provider=f"{key[0]}/{key[1]}",
                    canary=f"{alert.namespace}/{alert.canary}", reason=alert.reason,
                    severity=alert.severity, dropped=lane.stats.dropped)

    # Delivering ----------------------------------------------------------------------

    async def _work(self, key: tuple[str, str], lane: _Lane) -> None:
        while True:
            alert = await lane.queue.get()
            lane.busy = True
            try:
                await self._send(key, lane, alert)
            except Exception as exc:
                # One malformed alert or provider must not stop the provider's lane.
                lane.stats.failed += 1
                log.error("alert delivery failed unexpectedly", provider=f"{key[0]}/{key[1]}",
                          error=redact_addresses(f"{type(exc).__name__}: {exc}",
                                                 self._filter.secrets))
            finally:
                lane.busy = False
                lane.queue.task_done()

    async def _send(self, key: tuple[str, str], lane: _Lane, alert: Alert) -> None:
        namespace, name = key
        provider = f"{namespace}/{name}"
        spec: AlertProviderSpec | None = None
        try:
            spec = await self._provider(namespace, name)
            address, proxy = await self._address(namespace, spec)
        except NotifyError as exc:
            await self._fail(lane, DeliveryFailure(
                alert, provider, spec.type if spec else None, exc.reason, str(exc)))
            return
        context = {"provider": provider, "type": spec.type,
                   "canary": f"{alert.namespace}/{alert.canary}", "reason": alert.reason}
        await self._check_template(lane, provider, spec, alert)
        outcome: DeliveryResult = await post(
            self._client(proxy), address, build(spec, alert), self.policy,
            secrets=self._filter.secrets, sleep=self._sleep, context=context)
        if outcome.delivered:
            lane.stats.delivered += 1
            log.info("alert delivered", attempts=outcome.attempts, **context)
            return
        await self._fail(lane, DeliveryFailure(alert, provider, spec.type,
                                               "AlertDeliveryFailed", outcome.detail,
                                               outcome.attempts))

    async def _check_template(self, lane: _Lane, provider: str, spec: AlertProviderSpec,
                              alert: Alert) -> None:
        """Report a template's unknown variables, once per provider, template and Canary
        (a typo would otherwise only show in the channel, as the literal ``$name``)."""
        template = spec.message_template
        if not template:
            return
        key = (provider, template, alert.namespace, alert.canary)
        if key in self._reported_templates:
            return
        self._reported_templates.add(key)
        unknown = tuple(dict.fromkeys(unknown_variables(template)))
        if unknown:
            await self._report(TemplateProblem(alert, provider, spec.type, unknown))

    async def _provider(self, namespace: str, name: str) -> AlertProviderSpec:
        try:
            found = await _resolved(self._providers(namespace, name))
        except Exception as exc:
            raise ProviderUnavailable(f"AlertProvider {namespace}/{name} could not be read: "
                                      f"{type(exc).__name__}") from None
        if found is None:
            raise ProviderUnavailable(f"AlertProvider {namespace}/{name} not found")
        if isinstance(found, AlertProvider):
            return found.spec
        try:
            return AlertProvider.model_validate(found).spec
        except ValidationError as exc:
            raise ProviderUnavailable(
                f"AlertProvider {namespace}/{name} does not match its schema: "
                f"{describe(exc, every=True)}") from None

    async def _address(self, namespace: str, spec: AlertProviderSpec) -> tuple[str, str | None]:
        """The URL and proxy from the provider's Secret; both are registered for
        redaction before anything can log them."""
        where = f"Secret {namespace}/{spec.secret_ref.name}"
        try:
            secret = await _resolved(self._secrets(namespace, spec.secret_ref.name))
        except Exception as exc:
            raise AddressUnavailable(f"{where} could not be read: {type(exc).__name__}") \
                from None
        if secret is None:
            raise AddressUnavailable(f"{where} not found")
        address = _decoded(secret, "address", where)
        if not address:
            raise AddressUnavailable(f"{where} has no `address` key")
        self._filter.add(address)
        if not _is_http_url(address):
            raise AddressUnavailable(f"the `address` key of {where} is not an http(s) URL")
        proxy = _decoded(secret, "proxy", where) or spec.proxy
        if proxy:
            self._filter.add(proxy)
            if not _is_http_url(proxy):
                raise AddressUnavailable(f"the proxy of {where} is not an http(s) URL")
        return address, proxy

    def _client(self, proxy: str | None) -> httpx.AsyncClient:
        client = self._clients.get(proxy)
        if client is None:
            client = self._clients[proxy] = self._client_factory(proxy)
        return client

    def _default_client(self, proxy: str | None) -> httpx.AsyncClient:
        return outbound.client(proxy=proxy, timeout=self.policy.timeout,
                               headers={"User-Agent": f"canary/{__version__}"})

    async def _fail(self, lane: _Lane, failure: DeliveryFailure) -> None:
        lane.stats.failed += 1
        log.warning("alert not delivered", provider=failure.provider,
                    type=failure.provider_type, reason=failure.reason,
                    canary=f"{failure.alert.namespace}/{failure.alert.canary}",
                    alert=failure.alert.reason, error=failure.message,
                    attempts=failure.attempts)
        await self._report(failure)

    async def _report(self, problem: DeliveryFailure | TemplateProblem) -> None:
        if isinstance(problem, TemplateProblem):
            log.warning("alert template uses unknown variables", provider=problem.provider,
                        type=problem.provider_type,
                        canary=f"{problem.alert.namespace}/{problem.alert.canary}",
                        unknown=list(problem.unknown))
        if self._on_failure is None:
            return
        try:
            await _resolved(self._on_failure(problem))
        except Exception as exc:
            log.error("reporting an alert problem failed",
                      error=redact_addresses(f"{type(exc).__name__}: {exc}", self._filter.secrets))
