"""Keeping CPython's cyclic garbage collector off what canary holds for good.

The collector's full collection scans every tracked container of the oldest generation,
and it runs one whenever that generation has grown by a quarter since the last. canary
holds most of its objects for its whole life: the modules it imports (some 1,700, most of
them kubernetes-asyncio's generated models) and its watch caches (at 1,000 Canaries in a
cluster of 50,000 objects, about a million dicts and lists). Filling the caches grows the
heap by quarter after quarter, and each full collection scanned all that was already
held: the event loop stood still for up to 280 ms at a time, and the collector took 40%
of the lists' CPU (``benchmarks/scale/cache_memory.py``).

Those objects need no cycle collection: a cached object is decoded JSON, a tree with no
cycles, freed by reference counting as soon as its cache lets go of it, and a module lives
as long as the process. So after the imports, and after each list has filled a cache, a
full collection reclaims the garbage there is, and what survived moves into the
permanent generation (:func:`gc.freeze`), which the collector never scans again. Each
full collection then spans only what was made since the last freeze.

While the first lists fill the caches (a restart's few seconds), automatic collection
is off (:class:`FirstLists`): its passes scanned the pages in flight and the caches not
yet frozen again and again, and took a fifth of the lists' CPU
(``benchmarks/scale/cache_memory.py``). Only the collection and freeze after each list
run then, each over what was made since the last; once every cache has listed, the
collector runs again. It runs again after :data:`HOLD_LIMIT_SECONDS` in any case, so
that a start that cannot list (an API server down) does not keep its garbage.

The price: an object that is still in use when frozen and later becomes part of an
unreachable cycle is never reclaimed. Freezing happens at start-up and after a list,
which once started means after a 410 Gone (rare: the API server's watch history outlived),
so what can stay behind is at most a few requests' worth of objects per list.

What the process frees goes back to the C allocator, which keeps it: glibc returns only
the free memory at the top of its heap to the system, and a burst (a thousand Canaries
initializing: their primaries, Services and routes created, each answer decoded) leaves
free pages all through it. So every minute :func:`giving_back` hands those pages back
(``malloc_trim``): after 1,000 Canaries had initialized, the resident set went from 364
to 306 MiB, at a cost of a few milliseconds a call.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
from collections.abc import Callable

#: Seconds between two returns of the C allocator's free pages to the system.
GIVE_BACK_SECONDS = 60.0
#: The longest automatic collection stays off while the first lists run, in seconds.
HOLD_LIMIT_SECONDS = 60.0


def freeze_survivors() -> None:
    """Collect every generation, then move whatever survived out of the collector's sight."""
    gc.collect()
    gc.freeze()


class FirstLists:
    """Automatic collection off from :meth:`hold` until :meth:`synced` (every cache has
    listed once) or ``limit`` seconds, whichever comes first; then whatever survived is
    frozen and the collector runs again. :meth:`listed`, called as each cache has
    listed (the first time, and after each 410 Gone), collects and freezes what was made
    since the last freeze: one collection after the whole start scanned every cache at
    once and held the event loop for 0.2-0.3 s."""

    def __init__(self, limit: float = HOLD_LIMIT_SECONDS) -> None:
        self.limit = limit
        self._release: asyncio.TimerHandle | None = None

    @property
    def held(self) -> bool:
        return self._release is not None

    def __enter__(self) -> FirstLists:
        self.hold()
        return self

    def __exit__(self, *_: object) -> None:
        self.synced()  # however the controller ended: never left off

    def hold(self) -> None:
        """Turn automatic collection off (on the running event loop's clock)."""
        if self.held:
            return
        gc.disable()
        self._release = asyncio.get_running_loop().call_later(self.limit, self.synced)

    def listed(self) -> None:
        freeze_survivors()

    def synced(self) -> None:
        """Freeze what survived the first lists and turn automatic collection back on."""
        if self._release is None:
            return
        self._release.cancel()
        self._release = None
        freeze_survivors()
        gc.enable()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None with a C library that has none (musl, macOS)."""
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


_TRIM = _malloc_trim()


def give_back() -> bool:
    """Return the C allocator's free pages to the system; False where it cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


async def giving_back(every: float = GIVE_BACK_SECONDS) -> None:
    """:func:`give_back` every ``every`` seconds, until cancelled."""
    if not give_back():
        return
    while True:
        await asyncio.sleep(every)
        give_back()
