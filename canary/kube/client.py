"""A small JSON client for the Kubernetes API.

kubernetes-asyncio does the hard parts (kubeconfig and in-cluster loading, TLS, token
refresh); this module sends plain JSON through its transport so that every resource,
built-in or custom, is handled the same way, as dicts, and every error comes back as one
of :mod:`canary.kube.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import aiohttp

from canary.kube import fence, transport
from canary.kube.errors import ApiError, KubeError, NotLeader, TransportError, api_error
from canary.kube.resources import Resource, for_object
from canary.kube.throttle import ThrottleSettings, wait_before_resending
from canary.kube.trim import METADATA_ONLY_FIELD

JSON = dict[str, Any]
Query = Mapping[str, str | int | bool | None]

_k8s = transport.load()

#: Seconds a plain (non-watch) request may take before it counts as a transport failure.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: What a list or a watch accepts to be sent objects' metadata only (as client-go's
#: metadata informers ask), or whole objects from a server that cannot send that.
METADATA_LIST_ACCEPT = ("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
                        "application/json")
METADATA_WATCH_ACCEPT = ("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,"
                         "application/json")
#: Connections open at most for requests, unless told otherwise (see
#: ``KubeSettings.max_connections``).
DEFAULT_MAX_CONNECTIONS = 64


class KubeClient:
    """Talks JSON to one API server. Use :meth:`connect` (or :meth:`with_token`) to build it."""

    def __init__(self, api_client: Any, throttle: ThrottleSettings | None = None,
                 watch_client: Any | None = None) -> None:
        #: Sends requests, over a pool of at most a given number of connections.
        self._api = api_client
        #: Sends watches, over a pool of its own (by default the same one).
        self._watch_api = watch_client if watch_client is not None else api_client
        #: How requests refused for load (429) are sent again.
        self.throttle = throttle or ThrottleSettings()
        #: Called before every write, and again at its last look (:mod:`canary.kube.fence`);
        #: raises to refuse it (see :meth:`fenced`).
        self._guard: fence.Guard | None = None
        #: Requests sent, by verb (``WATCH`` for watch streams): what a benchmark or the
        #: controller's own metrics read to see how much API traffic canary causes.
        self.requests: Counter[str] = Counter()
        #: Called with (verb, status code or "error") for every request once answered;
        #: the controller's metrics count API requests through it.
        self.on_response: Callable[[str, int | str], None] | None = None

    def fenced(self, guard: fence.Guard) -> KubeClient:
        """A client over the same connections, counting into the same :attr:`requests`
        and reporting to the same :attr:`on_response`, whose writes call ``guard``, which
        raises (:class:`~canary.kube.errors.NotLeader`) to refuse them: a replica that
        may have lost the leader Lease must not write, even in the moment before it
        notices (see :meth:`canary.kube.lease.LeaderElector.ensure_leading`). The guard is
        called before the request and again once its connection is in hand, just before
        its bytes are written (:mod:`canary.kube.fence`)."""
        fenced = KubeClient(self._api, self.throttle, self._watch_api)
        fenced.requests, fenced.on_response = self.requests, self.on_response
        fenced._guard = guard
        return fenced

    def with_own_connections(self, max_connections: int = 2) -> KubeClient:
        """A client over the same configuration (credentials, token refresh) with a
        pool of its own of at most ``max_connections``, counting into the same
        :attr:`requests`: for the leader Lease, whose renewals must not queue behind a
        burst of the controller's writes waiting for a connection (a thousand Canaries
        starting up), or the Lease would lapse. Close it with :meth:`close`."""
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        own = KubeClient(_api_client(self._api.configuration, max_connections), self.throttle)
        own.requests, own.on_response = self.requests, self.on_response
        return own

    @classmethod
    async def connect(cls, kubeconfig: str | Path | None = None, context: str | None = None,
                      *, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> KubeClient:
        """From a kubeconfig (argument, ``$KUBECONFIG`` or ``~/.kube/config``), else
        in-cluster; at most ``max_connections`` connections for requests (watches have
        their own)."""
        configuration = _k8s.Configuration()
        path = kubeconfig or os.environ.get("KUBECONFIG") or None
        default = Path.home() / ".kube" / "config"
        if path is None and default.exists():
            path = default
        elif (missing := missing_kubeconfig(kubeconfig)) is not None:
            raise KubeError(missing)
        try:
            if path is not None:
                await _k8s.config.load_kube_config(
                    config_file=str(path), context=context, client_configuration=configuration,
                    persist_config=False,
                )
            else:
                _k8s.config.load_incluster_config(
                    client_configuration=configuration)
        except (_k8s.config.ConfigException, OSError) as exc:
            where = f"kubeconfig {path}" if path is not None else "in-cluster configuration"
            raise KubeError(f"cannot load the {where}: {exc}") from exc
        return cls._over(configuration, max_connections)

    @classmethod
    def with_token(cls, host: str, token: str, ca_file: str | Path, *,
                   max_connections: int = DEFAULT_MAX_CONNECTIONS) -> KubeClient:
        """A client authenticated by a bearer token alone (e.g. a ServiceAccount's)."""
        configuration = _k8s.Configuration()
        configuration.host = host
        configuration.ssl_ca_cert = str(ca_file)
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return cls._over(configuration, max_connections)

    @classmethod
    def _over(cls, configuration: Any, max_connections: int) -> KubeClient:
        """Two pools over one configuration (and so one token refresh): requests share at
        most ``max_connections`` connections, a burst waiting for a free one; watches get
        a pool with no cap, as each holds a connection for minutes and their number is
        fixed by what is watched. A shared cap would have to be sized as watches + N,
        and a watch added later would silently eat into the N that the Lease renewals
        and status writes need."""
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        requests = _api_client(configuration, max_connections)
        fence.install(requests.rest_client.pool_manager)
        return cls(requests, watch_client=_api_client(configuration, 0))

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    async def close(self) -> None:
        await self._api.close()
        if self._watch_api is not self._api:
            await self._watch_api.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- the transport ------------------------------------------------------------------

    async def _send(self, method: str, path: str, query: Query | None, body: Any,
                    content_type: str, timeout: aiohttp.ClientTimeout,
                    accept: str = "application/json") -> aiohttp.ClientResponse:
        """Send a request, and again after the pause the server asks for while it
        refuses it for load (see :mod:`canary.kube.throttle`)."""
        params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        verb = "WATCH" if (query or {}).get("watch") else method
        attempt = 1
        while True:
            response = await self._send_once(verb, method, path, params, body,
                                             (content_type, accept), timeout)
            wait = wait_before_resending(response.status, response.headers.get("Retry-After"),
                                         attempt, self.throttle)
            if wait is None:
                return response
            response.release()
            attempt += 1
            await asyncio.sleep(wait)

    async def _send_once(self, verb: str, method: str, path: str,
                         params: list[tuple[str, str]], body: Any, types: tuple[str, str],
                         timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """Send once; ``types`` is the body's content type and what the answer may be."""
        guard = self._guard if method != "GET" else None
        if guard is not None:
            guard()
        self.requests[verb] += 1
        api = self._watch_api if verb == "WATCH" else self._api
        try:
            with fence.guarding(guard) if guard is not None else contextlib.nullcontext():
                response = await api.call_api(
                    path, method, query_params=params,
                    header_params={"Content-Type": types[0], "Accept": types[1]},
                    body=body, auth_settings=["BearerToken"], _preload_content=False,
                    _request_timeout=timeout,
                )
        except NotLeader:
            self.requests[verb] -= 1  # refused at the last look: never sent
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if (refused := fence.refusal(exc)) is not None:
                self.requests[verb] -= 1
                raise refused from None
            self._answered(verb, "error")
            raise TransportError(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
        result = cast(aiohttp.ClientResponse, response)
        self._answered(verb, result.status)
        return result

    def _answered(self, verb: str, code: int | str) -> None:
        if self.on_response is not None:
            self.on_response(verb, code)

    async def request(self, method: str, path: str, *, query: Query | None = None,
                      body: Any = None, content_type: str = "application/json",
                      timeout: float = DEFAULT_REQUEST_TIMEOUT,
                      accept: str = "application/json") -> JSON:
        """Send one request and return the decoded JSON body; raise :class:`ApiError` on non-2xx."""
        response = await self._send(method, path, query, body, content_type,
                                    aiohttp.ClientTimeout(total=timeout), accept)
        try:
            try:
                raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransportError(f"{method} {path}: {exc}") from exc
        finally:
            response.release()
        data = _decode(raw)
        if not 200 <= response.status < 300:
            raise api_error(response.status, data, raw.decode(errors="replace")[:500])
        return data

    # -- verbs --------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON:
        return _typed(resource, await self.request("GET", resource.path(namespace, name)))

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_token: str | None = None,
                   metadata_only: bool = False) -> JSON:
        """The List object: ``items`` (with apiVersion and kind filled in) and ``metadata``.
        With ``limit``, one page: ``metadata.continue`` then asks for the next
        (``continue_token``), and the server answers 410 Gone once it has expired. With
        ``metadata_only``, the items the server sends as metadata only are marked so
        (:func:`as_resource`)."""
        data = await self.request("GET", resource.path(namespace), query={
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "limit": limit or None, "continue": continue_token or None},
            accept=METADATA_LIST_ACCEPT if metadata_only else "application/json")
        data["items"] = [as_resource(resource, item) for item in data.get("items") or []]
        return data

    async def create(self, resource: Resource, body: JSON, namespace: str | None = None) -> JSON:
        namespace = namespace or _namespace_of(resource, body)
        return await self.request("POST", resource.path(namespace), body=body)

    async def replace(self, resource: Resource, body: JSON, namespace: str | None = None,
                      subresource: str | None = None) -> JSON:
        namespace = namespace or _namespace_of(resource, body)
        path = resource.path(namespace, body["metadata"]["name"])
        if subresource:
            path += f"/{subresource}"
        return await self.request("PUT", path, body=body)

    async def apply(self, body: JSON, *, field_manager: str, force: bool = True,
                    resource: Resource | None = None) -> JSON:
        """Server-side apply ``body`` as ``field_manager``, creating it if needed."""
        resource = resource or for_object(body)
        namespace = _namespace_of(resource, body)
        return await self.request(
            "PATCH", resource.path(namespace, body["metadata"]["name"]), body=body,
            query={"fieldManager": field_manager, "force": force},
            content_type="application/apply-patch+yaml")

    async def merge_patch(self, resource: Resource, name: str, patch: JSON,
                          namespace: str | None = None, subresource: str | None = None, *,
                          field_manager: str | None = None) -> JSON:
        """A JSON merge patch; ``field_manager`` names the writer in managedFields (else
        the API server derives one from the client's user agent)."""
        path = resource.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self.request("PATCH", path, body=patch,
                                  query={"fieldManager": field_manager},
                                  content_type="application/merge-patch+json")

    async def json_patch(self, resource: Resource, name: str, operations: Sequence[JSON],
                         namespace: str | None = None, subresource: str | None = None) -> JSON:
        path = resource.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self.request("PATCH", path, body=operations,
                                  content_type="application/json-patch+json")

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     propagation: str = "Background") -> JSON:
        return await self.request("DELETE", resource.path(namespace, name),
                                  body={"propagationPolicy": propagation})

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str, *,
                    timeout_seconds: int, label_selector: str | None = None,
                    field_selector: str | None = None, bookmarks: bool = True,
                    on_open: Callable[[], None] | None = None,
                    metadata_only: bool = False,
                    initial_events: bool = False) -> AsyncGenerator[JSON, None]:
        """One watch request: yield raw watch events until the server ends the stream.
        ``on_open`` is called once the server has accepted it, before any event. With
        ``metadata_only``, the objects come as metadata only, marked so (:func:`as_resource`).
        With ``initial_events`` (a watch-list, ``sendInitialEvents``), the stream starts
        with every object as an ADDED event, from the API server's watch cache, ended by a
        BOOKMARK annotated ``k8s.io/initial-events-end``; ``resource_version`` "" then
        asks for a state at least as fresh as a consistent list's.

        Raises :class:`~canary.kube.errors.Gone` when ``resource_version`` is too old, both
        when the server refuses the request and when it says so inside the stream.
        """
        query: dict[str, str | int | bool | None] = {
            "watch": True, "resourceVersion": resource_version,
            "allowWatchBookmarks": bookmarks, "timeoutSeconds": timeout_seconds,
            "labelSelector": label_selector, "fieldSelector": field_selector,
        }
        if initial_events:
            query |= {"sendInitialEvents": True, "resourceVersionMatch": "NotOlderThan",
                      "resourceVersion": resource_version or None}
        # The server closes the stream after timeout_seconds; a read that stalls well past
        # that means the connection died without telling us.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10,
                                        sock_read=timeout_seconds + 30)
        response = await self._send(
            "GET", resource.path(namespace), query, None, "application/json", timeout,
            METADATA_WATCH_ACCEPT if metadata_only else "application/json")
        try:
            if not 200 <= response.status < 300:
                raw = await response.read()
                raise api_error(response.status, _decode(raw), raw.decode(errors="replace"))
            if on_open is not None:
                on_open()
            while True:
                try:
                    line = await response.content.readline()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise TransportError(f"watch {resource.plural}: {exc}") from exc
                if not line:
                    return
                event = _decode(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise api_error(int(status.get("code") or 500), status)
                obj = event.get("object")
                if isinstance(obj, dict):
                    event["object"] = as_resource(resource, obj)
                yield event
        finally:
            response.release()


def _api_client(configuration: Any, max_connections: int) -> Any:
    """A kubernetes-asyncio client over ``configuration`` (and so its credentials and
    their refresh) with a connection pool of its own: at most ``max_connections``
    connections, 0 for no cap."""
    shared = configuration.connection_pool_maxsize
    configuration.connection_pool_maxsize = max_connections
    try:
        return _k8s.ApiClient(configuration=configuration)
    finally:
        configuration.connection_pool_maxsize = shared


def missing_kubeconfig(kubeconfig: str | Path | None, named_by: str = "--kubeconfig", *,
                       environ: Mapping[str, str] = os.environ,
                       exists: Callable[[Path], bool] = Path.exists) -> str | None:
    """The one-line complaint when the kubeconfig named by ``named_by`` (else by
    $KUBECONFIG, a list separated like $PATH whose missing entries kubectl skips) does not
    exist, else None: the loader would report a missing file as one without a context."""
    if kubeconfig:
        text = str(kubeconfig)
    else:
        text, named_by = environ.get("KUBECONFIG") or "", "KUBECONFIG"
    paths = [part for part in text.split(os.pathsep) if part]
    if not paths or any(exists(Path(part)) for part in paths):
        return None
    if len(paths) == 1:
        return f"the kubeconfig file {paths[0]} named by {named_by} does not exist"
    return f"none of the kubeconfig files named by {named_by} exists: {text}"


def _query_value(value: str | int | bool | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(raw: bytes) -> JSON:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {"items": data}


def _typed(resource: Resource, obj: JSON) -> JSON:
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    return obj


def as_resource(resource: Resource, obj: JSON) -> JSON:
    """An item of a list or a watch as an object of ``resource``: with its apiVersion and
    kind; one sent as ``PartialObjectMetadata`` keeps only its metadata, marked with
    :data:`~canary.kube.trim.METADATA_ONLY_FIELD` (its content is unknown, not empty)."""
    if obj.get("kind") != "PartialObjectMetadata":
        return _typed(resource, obj)
    return {"apiVersion": resource.api_version, "kind": resource.kind,
            "metadata": obj.get("metadata") or {}, METADATA_ONLY_FIELD: True}


def _namespace_of(resource: Resource, body: JSON) -> str | None:
    if not resource.namespaced:
        return None
    namespace = (body.get("metadata") or {}).get("namespace")
    if not namespace:
        name = (body.get("metadata") or {}).get("name")
        raise ValueError(f"{resource.kind} {name!r} needs a namespace")
    return str(namespace)


__all__ = ["JSON", "ApiError", "KubeClient"]
