"""List-then-watch caches: the only way canary reads objects it has to follow.

A :class:`Reflector` lists a resource once, then watches from the list's resourceVersion
with bookmarks, so an idle cluster costs one open stream and no polling. It lists by a
watch-list (a watch that starts with every object, ``sendInitialEvents``), which the API
server always answers from its watch cache; a server that refuses one (the WatchList
feature gate off, as by default in Kubernetes 1.33) is listed in pages instead. Pages
after the first come from etcd once its compaction has passed the resource's last write
(5-10 minutes after it): 20,000 ConfigMaps' metadata then take 1.2 s in pages against
0.3 s by a watch-list (``benchmarks/scale/list_pages.py``).
Every object passes through a transform (:mod:`canary.kube.trim`) before it is stored,
so the cache holds only what decisions read, and its keys and short strings are shared
with the other objects' (:mod:`canary.kube.compact`). When the server
says the resourceVersion is gone (410) it lists again and reports the difference as
events; when the connection breaks it reconnects from the last resourceVersion it saw,
backing off exponentially with jitter. The pauses grow only with failures since the
stream last made progress, and a 410 (the cache known stale) lists again after the
first pause unless 410s keep coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import structlog

from canary.backoff import Backoff
from canary.kube.client import JSON, KubeClient
from canary.kube.compact import compact
from canary.kube.errors import (
    ApiError,
    Gone,
    KubeError,
    NotFound,
    TooManyRequests,
    WatchListRefused,
)
from canary.kube.resources import Resource
from canary.kube.trim import Transform, is_trimmed, lean, metadata_only

log = structlog.get_logger("canary.kube.watch")

ObjectKey = tuple[str, str]
EventHandler = Callable[[str, JSON], None]
#: 0.2 s before reconnecting after a failure, doubled for each further one in a row up
#: to 5 s, spread by a fifth either way. The controller has a dozen watches: retrying
#: each every 5 s costs an API server nothing, and one back from an outage is watched
#: again within about 6 s (a 30 s cap, client-go's, left it unseen for up to 36 s).
RECONNECT_BACKOFF = Backoff(0.2, 5.0, jitter=0.2)
#: Seconds a reopened watch must stay open, or deliver something, before its copy counts
#: as current again: the server replays what was missed right after it accepts the watch.
REOPEN_GRACE = 1.0
#: The annotation of the bookmark that ends a watch-list's initial events.
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
#: Seconds a list's work (a page's objects through the transform, its events through
#: the handlers) may hold the event loop before the other tasks get a turn.
SLICE_SECONDS = 0.02


@dataclass(frozen=True)
class WatchSettings:
    """How long watches run and how reconnects back off."""

    #: Shortest and longest server-side watch timeout, in seconds; each watch picks a
    #: random value in between so that many reflectors do not reconnect in step. The
    #: normal end of a watch counts as activity, so the longest timeout must stay well
    #: below the liveness probe's silence limit (``HealthSettings.watch_silence_seconds``,
    #: 300 s): then a healthy stream in a namespace where nothing happens shows activity
    #: in time even if the API server sends it no bookmark.
    min_timeout_seconds: int = 120
    max_timeout_seconds: int = 240
    #: Pauses before reconnecting after failures in a row.
    backoff: Backoff = RECONNECT_BACKOFF
    #: Objects per page of a list (client-go's pager asks for 500): the API server never
    #: builds, and canary never decodes, one answer of every object of a large cluster.
    list_page_size: int = 500
    #: List by a watch-list, served from the API server's watch cache whatever the time
    #: since the last write; False lists in pages (as does a server that refuses one).
    watch_list: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_timeout_seconds <= self.max_timeout_seconds:
            raise ValueError("watch timeouts need 0 < min_timeout_seconds <= "
                             "max_timeout_seconds")
        if self.list_page_size < 1:
            raise ValueError("list_page_size must be at least 1")


@dataclass
class _Attempts:
    """What went wrong in a row since one stream last made progress (delivered an event
    or a bookmark, or ran to its timeout): each count sets the pause before the next
    try, so that one outage's failures do not lengthen the pauses of the next."""

    #: Failed lists and watches (a broken connection, an error status).
    failures: int = 0
    #: Watches answered 410 Gone.
    expired: int = 0

    def progress(self) -> None:
        self.failures = self.expired = 0


def object_key(obj: JSON) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class Reflector:
    """A local, always-current copy of one resource type: across all namespaces, or in
    the namespaces given (one list and watch per namespace, one store)."""

    def __init__(self, client: KubeClient, resource: Resource,
                 namespace: str | Sequence[str] | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 on_event: EventHandler | None = None,
                 settings: WatchSettings | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 transform: Transform = lean,
                 on_listed: Callable[[], None] | None = None,
                 metadata_only: bool = False) -> None:
        self.client = client
        self.resource = resource
        #: Lists and watches ask for objects' metadata only (``PartialObjectMetadata``):
        #: what a reader needs of the rest it reads with :meth:`fetch`.
        self.metadata_only = metadata_only
        #: Applied to every object before it is stored (and handed to the handlers).
        self.transform = transform
        #: What is watched: (None,) for all namespaces, else each namespace.
        self.scopes: tuple[str | None, ...] = (
            (namespace,) if namespace is None or isinstance(namespace, str) else
            tuple(dict.fromkeys(namespace)))
        if not self.scopes:
            raise ValueError("give at least one namespace, or None for all")
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.settings = settings or WatchSettings()
        self.clock = clock
        self._handlers: list[EventHandler] = [on_event] if on_event else []
        #: Called once the first lists of every namespace have filled the store, and
        #: after each list again (410 Gone), once its events are handed out.
        self._on_listed = on_listed
        #: The objects by namespace, then name: a namespace's objects are found without
        #: going through the others' (handlers ask per namespace on every event).
        self._store: dict[str, dict[str, JSON]] = {}
        self._size = 0
        self._resource_versions: dict[str | None, str] = {}
        self._listed: set[str | None] = set()
        #: When :meth:`run` began: the first sync's log says how long the lists took
        #: (with handing out their events, and any retries).
        self._started: float | None = None
        #: Set once the first list of every namespace has filled the store.
        self.synced = asyncio.Event()
        #: Per namespace stream, the monotonic time of the last thing the server sent on
        #: it (an event, a bookmark, a list, the normal end of a watch). Its keys never
        #: change, so another thread may read it (see :attr:`last_activity`).
        self.activity: dict[str | None, float] = dict.fromkeys(self.scopes, clock())
        #: How many times the watch had to be re-established.
        self.restarts = 0
        #: Per namespace stream, what went wrong in a row: the pause before its next try.
        self._attempts = {scope: _Attempts() for scope in self.scopes}
        #: How many of those listed again because the server had forgotten the
        #: resourceVersion (410 Gone): each re-reports the differences as events.
        self.relists = 0
        #: Whether lists are watch-lists: until the server refuses one.
        self.watch_list = self.settings.watch_list
        #: Per namespace stream whose copy may be out of date (a list or watch failed and
        #: no watch has caught up since): the monotonic time it failed.
        self._stale_since: dict[str | None, float] = {}
        #: When each of those streams' watch was accepted again, if it has been.
        self._reopened: dict[str | None, float] = {}
        #: What canary's own writes returned, by object, until the watch (or a list)
        #: sends that version as metadata only (see :meth:`learn`).
        self._learned: dict[ObjectKey, JSON] = {}

    @property
    def last_activity(self) -> float:
        """The *oldest* of the streams' last activities: one hung namespace stream must
        show however busy the others are, so that the liveness probe sees it."""
        return min(list(self.activity.values()))

    def stale_seconds(self) -> float | None:
        """How long the copy has been possibly out of date, for the stream that has been
        so the longest; None when every stream is current. A stream is out of date from a
        failed list or watch until its watch is open again and has delivered something or
        stayed open :data:`REOPEN_GRACE` seconds: decisions on the absence of a change
        (a deadline) must wait for that, or they act on the cluster as it was before an
        outage."""
        now = self.clock()
        for scope, opened in list(self._reopened.items()):
            if now - opened >= REOPEN_GRACE:
                self._caught_up(scope)
        return now - min(self._stale_since.values()) if self._stale_since else None

    def _caught_up(self, scope: str | None) -> None:
        self._stale_since.pop(scope, None)
        self._reopened.pop(scope, None)

    def _fell_behind(self, scope: str | None) -> None:
        self._stale_since.setdefault(scope, self.clock())
        self._reopened.pop(scope, None)

    def add_handler(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def get(self, namespace: str, name: str) -> JSON | None:
        return self._store.get(namespace, {}).get(name)

    def covers(self, namespace: str) -> bool:
        """Whether objects of ``namespace`` are watched: only then does a miss in
        :meth:`get` mean the object does not exist (or fails the selectors)."""
        return None in self.scopes or namespace in self.scopes

    def items(self, namespace: str | None = None) -> Iterator[JSON]:
        if namespace is not None:
            yield from list(self._store.get(namespace, {}).values())
            return
        for objects in list(self._store.values()):
            yield from list(objects.values())

    def __len__(self) -> int:
        return self._size

    def _stored(self, obj: JSON) -> JSON:
        """What the store keeps of ``obj`` as the server sent it: compact. An object kept
        as its metadata only is built compact by its transform (``trim._identity``): tens
        of thousands of configs at start-up, whose uids and resourceVersions are worth no
        place among the shared strings."""
        kept = self.transform(obj)
        return kept if metadata_only(kept) else compact(kept)

    def _put(self, key: ObjectKey, obj: JSON) -> None:
        objects = self._store.setdefault(key[0], {})
        self._size += key[1] not in objects
        objects[key[1]] = obj

    def _drop(self, key: ObjectKey) -> None:
        objects = self._store.get(key[0])
        if objects is not None and objects.pop(key[1], None) is not None:
            self._size -= 1
            if not objects:
                del self._store[key[0]]

    async def run(self) -> None:
        """List and watch until cancelled."""
        self._started = self.clock()
        if len(self.scopes) == 1:
            await self._run_scope(self.scopes[0])
            return
        async with asyncio.TaskGroup() as tasks:
            for scope in self.scopes:
                tasks.create_task(self._run_scope(scope))

    async def _run_scope(self, scope: str | None) -> None:
        backoff = self.settings.backoff
        attempts = self._attempts[scope]
        must_list = True
        while True:
            try:
                if must_list:
                    await self._relist(scope)
                    must_list = False
                opened = self.clock()
                await self._watch_once(scope)
                # The server ended the stream at its timeout: it was there all along.
                self.activity[scope] = self.clock()
                if self.activity[scope] - opened < 1.0:
                    # A stream closed at once (a proxy, an overloaded server): back off
                    # rather than reconnect in a tight loop.
                    attempts.failures += 1
                    await asyncio.sleep(backoff.delay(attempts.failures))
                else:
                    attempts.progress()
            except Gone:
                log.info("watch expired, listing again", resource=self.resource.plural)
                must_list = True
                self._fell_behind(scope)
                self.restarts += 1
                self.relists += 1
                # The server answered, so the failures before (a broken connection) are
                # over, and until the list the cache is known to be stale: list soon.
                # Only 410s in a row, with no event in between, back off further, so a
                # 410 that keeps coming back does not become a tight list loop.
                attempts.failures = 0
                attempts.expired += 1
                await asyncio.sleep(backoff.delay(attempts.expired))
            except (KubeError, ValueError) as exc:
                self._fell_behind(scope)
                self.restarts += 1
                attempts.failures += 1
                report = getattr(log, failure_level(exc))
                report("watch failed, retrying", resource=self.resource.plural,
                       error=str(exc), retry_in=round(backoff.base(attempts.failures), 2))
                await asyncio.sleep(backoff.delay(attempts.failures))

    async def fetch(self, namespace: str, name: str) -> JSON | None:
        """The object as the API server holds it now, whole (None when it does not
        exist): for a reader that needs what the transform left out. When the cache holds
        the same version, it stores what the transform keeps of this one."""
        try:
            obj = await self.client.get(self.resource, name, namespace)
        except NotFound:
            return None
        cached = self.get(namespace, name)
        if cached is not None and _rv(cached) == _rv(obj):
            self._put(object_key(obj), self._stored(obj))
        return obj

    def learn(self, written: JSON) -> None:
        """Keep what a write of canary's returned (the object whole, at its new version)
        for the cache of metadata-only lists and watches, in place of the metadata the
        watch sends, or has sent, for that version: canary's own configs then cost no
        GET after it writes them. Nothing to do for a cache of whole objects."""
        if not self.metadata_only:
            return
        key = object_key(written)
        stored = self._stored(written)
        cached = self.get(*key)
        if cached is not None and _rv(cached) == _rv(written):
            self._put(key, stored)  # the watch was first
        else:
            self._learned[key] = stored  # its event is on the way

    def _as_known(self, key: ObjectKey, obj: JSON) -> JSON:
        """``obj`` as the server sent it, or what a write of that version returned."""
        learned = self._learned.get(key)
        if learned is None or _rv(learned) != _rv(obj) or not metadata_only(obj):
            return obj
        del self._learned[key]
        return learned

    async def complete(self, namespace: str, name: str,
                       lacks: Callable[[JSON], bool] = is_trimmed) -> JSON | None:
        """The cached object, read whole from the API (:meth:`fetch`) when ``lacks`` says
        the cache holds it without what the reader needs; None when the cache does not
        hold it (or it is gone)."""
        found = self.get(namespace, name)
        return await self.fetch(namespace, name) if found is not None and lacks(found) \
            else found

    async def _list_pages(self, scope: str | None, limit: int | None
                          ) -> tuple[dict[ObjectKey, JSON], str]:
        """Every object of ``scope`` (transformed, page by page, so that only one page is
        ever held whole) and the list's resourceVersion."""
        fresh: dict[ObjectKey, JSON] = {}
        token: str | None = None
        turns = _Turns(self.clock)
        while True:
            page = await self.client.list(self.resource, scope,
                                          label_selector=self.label_selector,
                                          field_selector=self.field_selector,
                                          limit=limit, continue_token=token,
                                          metadata_only=self.metadata_only)
            for obj in page.get("items") or []:
                fresh[object_key(obj)] = self._stored(obj)
                await turns.maybe()  # a page of large configs takes tens of ms to digest
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                return fresh, str(meta.get("resourceVersion", ""))

    async def _list(self, scope: str | None) -> tuple[dict[ObjectKey, JSON], str]:
        """Every object of ``scope`` and the list's resourceVersion: by a watch-list,
        or in pages from the first time the server refuses one."""
        if self.watch_list:
            try:
                return await self._streamed_list(scope)
            except WatchListRefused as exc:
                self.watch_list = False
                log.info("watch-list refused, listing in pages",
                         resource=self.resource.plural, reason=str(exc))
        return await self._paged_list(scope)

    async def _streamed_list(self, scope: str | None) -> tuple[dict[ObjectKey, JSON], str]:
        """Every object of ``scope`` as a watch-list's initial events (transformed one by
        one as they arrive) and the resourceVersion of the bookmark that ends them. The
        stream is closed there: the watch that follows starts from that version, from
        the watch cache too."""
        fresh: dict[ObjectKey, JSON] = {}
        turns = _Turns(self.clock)
        stream = self.client.watch(
            self.resource, scope, "", timeout_seconds=self.settings.max_timeout_seconds,
            label_selector=self.label_selector, field_selector=self.field_selector,
            metadata_only=self.metadata_only, initial_events=True)
        try:
            async with contextlib.aclosing(stream):
                async for event in stream:
                    kind, obj = str(event.get("type")), event.get("object") or {}
                    if kind == "BOOKMARK":
                        if _ends_initial_events(obj):
                            return fresh, _rv(obj)
                    elif kind == "ADDED":
                        fresh[object_key(obj)] = self._stored(obj)
                        await turns.maybe()
                    else:
                        raise WatchListRefused(f"a {kind} event before the initial "
                                               "events ended: the server ignores them")
        except ApiError as exc:
            if exc.status in (400, 422):  # BadRequest, Invalid: it knows no watch-list
                raise WatchListRefused(str(exc)) from exc
            raise
        raise WatchListRefused("the stream ended before its initial events did")

    async def _paged_list(self, scope: str | None) -> tuple[dict[ObjectKey, JSON], str]:
        """A paginated list. A continue token expires (410) when the server has compacted
        the list's snapshot away while the pages were being read: the list starts again,
        and if that expires too, one unpaginated list is made (as client-go's pager
        falls back to), which cannot expire."""
        limit = self.settings.list_page_size
        for _ in range(2):
            try:
                return await self._list_pages(scope, limit)
            except Gone:
                log.info("list expired between pages, listing again",
                         resource=self.resource.plural)
        return await self._list_pages(scope, None)

    async def _relist(self, scope: str | None) -> None:
        """Replace the scope's objects with a fresh list's, then report the differences
        as events. The store changes at once; the events are handed out in slices of
        :data:`SLICE_SECONDS`, the event loop getting a turn between them (the handlers
        of 20,000 ConfigMaps would hold it for about 0.1 s)."""
        listing = self.clock()
        fresh, version = await self._list(scope)
        count = len(fresh)
        old = {object_key(obj): obj for obj in self.items(scope)}
        for key in old:
            if key not in fresh:
                self._drop(key)
                self._learned.pop(key, None)
        for key, obj in fresh.items():
            self._put(key, _better_known(old.get(key), self._as_known(key, obj)))
        self._resource_versions[scope] = version
        self.activity[scope] = self.clock()
        changes = [("DELETED", obj) for key, obj in old.items() if key not in fresh]
        changes += [("ADDED" if previous is None else "MODIFIED", obj)
                    for key, obj in fresh.items()
                    if (previous := old.get(key)) is None or _rv(previous) != _rv(obj)]
        del old, fresh
        await self._emit_in_slices(changes)
        self._caught_up(scope)
        if scope in self._listed:
            log.info("listed again", resource=self.resource.plural, namespace=scope,
                     objects=count, seconds=round(self.clock() - listing, 3))
        self._listed.add(scope)
        if len(self._listed) == len(self.scopes):
            if not self.synced.is_set():
                began = listing if self._started is None else self._started
                log.info("listed", resource=self.resource.plural, objects=len(self),
                         seconds=round(self.clock() - began, 3))
            self.synced.set()
            if self._on_listed is not None:
                self._on_listed()

    async def _emit_in_slices(self, changes: list[tuple[str, JSON]]) -> None:
        turns = _Turns(self.clock)
        for kind, obj in changes:
            self._emit(kind, obj)
            await turns.maybe()

    async def _watch_once(self, scope: str | None) -> None:
        timeout = random.randint(self.settings.min_timeout_seconds,
                                 self.settings.max_timeout_seconds)
        async for event in self.client.watch(self.resource, scope,
                                             self._resource_versions[scope],
                                             timeout_seconds=timeout,
                                             label_selector=self.label_selector,
                                             field_selector=self.field_selector,
                                             on_open=lambda: self._reopen(scope),
                                             metadata_only=self.metadata_only):
            self.activity[scope] = self.clock()
            self._attempts[scope].progress()
            self._caught_up(scope)
            kind = str(event.get("type"))
            obj = event.get("object") or {}
            rv = _rv(obj)
            if rv:
                self._resource_versions[scope] = rv
            if kind == "BOOKMARK":
                continue
            key = object_key(obj)
            obj = self._as_known(key, self._stored(obj))
            if kind == "DELETED":
                self._drop(key)
                self._learned.pop(key, None)
            else:
                self._put(key, obj)
            self._emit(kind, obj)

    def _reopen(self, scope: str | None) -> None:
        if scope in self._stale_since:
            self._reopened[scope] = self.clock()

    def _emit(self, kind: str, obj: JSON) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj)
            except Exception:  # a bad handler must not kill the watch
                log.exception("watch handler failed", resource=self.resource.plural)


class _Turns:
    """Gives the event loop a turn whenever :data:`SLICE_SECONDS` of work have gone by
    since the last one."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._since = clock()

    async def maybe(self) -> None:
        if self._clock() - self._since >= SLICE_SECONDS:
            await asyncio.sleep(0)
            self._since = self._clock()


def failure_level(exc: Exception) -> str:
    """How loudly a failed list or watch is logged before its retry. A 429 is the API
    server asking for patience (as while its storage initializes at start-up): info. A
    lost connection or a 5xx is worth a warning; anything else (403, a bad selector) will
    not mend by itself: error."""
    if isinstance(exc, TooManyRequests):
        return "info"
    if not isinstance(exc, ApiError) or exc.status >= 500:
        return "warning"
    return "error"


def _better_known(stored: JSON | None, listed: JSON) -> JSON:
    """What to keep of an object a list sent again: the stored copy when it is the same
    version and more of it is known (its content, read with ``fetch``, where the list
    sent metadata only), so that a re-list does not cost a GET per config read since."""
    if stored is not None and metadata_only(listed) and not metadata_only(stored) \
            and _rv(stored) == _rv(listed):
        return stored
    return listed


def _ends_initial_events(bookmark: JSON) -> bool:
    notes = (bookmark.get("metadata") or {}).get("annotations") or {}
    return notes.get(INITIAL_EVENTS_END) == "true"


def _rv(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
