"""``canary run`` with a clock on its event loop: how long the loop stood still, measured
inside the process, which nothing outside it can see.

    python -m benchmarks.scale.looptimer REPORT run --kubeconfig ...

runs canary's command line (the arguments after REPORT) with one more task on its event
loop, which sleeps 5 ms at a time and records how much later than that it woke: the
longest such delay is the longest the loop was held (a turn of the loop, a garbage
collection, a page decoded). On SIGUSR1 it writes to REPORT, as JSON, the longest delay
since the loop started and since the last report, and every delay over 50 ms with the
second it began. The task wakes 200 times a second: measure CPU without it.

With ``LOOPTIMER_PROFILE=PATH`` in its environment, the process also runs under cProfile
for its first ``LOOPTIMER_PROFILE_SECONDS`` (default 20) and writes the statistics to
PATH (``python -m pstats PATH`` reads them): where a start-up's time goes. Profiling
slows every call, so a profiled process' timings are not compared with others'.

On SIGHUP every watch cache of the process lists again, all at once, as each does after
410 Gone, and when all are done the seconds that took are written to REPORT with the
suffix ``.relist.json``: the loop's delays meanwhile are in the next SIGUSR1 report.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import runpy
import signal
import sys
import tracemalloc
import weakref
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from canary.kube import Reflector

TICK = 0.005
NOTED = 0.05


@dataclass
class LoopClock:
    """The loop's delays as the ticking task saw them."""

    longest: float = 0.0
    longest_since_report: float = 0.0
    #: (seconds since the loop started, milliseconds held) of every delay over NOTED.
    noted: list[tuple[float, int]] = field(default_factory=list)

    async def tick(self) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            held = loop.time() - before - TICK
            self.longest = max(self.longest, held)
            self.longest_since_report = max(self.longest_since_report, held)
            if held > NOTED:
                self.noted.append((round(before - began, 2), round(held * 1000)))

    def report(self, path: Path) -> None:
        """Write the report whole (through a rename), so a reader never sees half."""
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({
            "longest_ms": round(self.longest * 1000, 1),
            "longest_since_last_report_ms": round(self.longest_since_report * 1000, 1),
            "over_50_ms": self.noted}))
        partial.replace(path)
        self.longest_since_report = 0.0


#: Every Reflector built since ``record_reflectors``: found without walking the heap,
#: which would mean unfreezing what canary moved out of the collector's scans.
BUILT: weakref.WeakSet[Reflector] = weakref.WeakSet()


def record_reflectors() -> None:
    """From now on, every Reflector built is noted in ``BUILT`` (held weakly, so a
    cache the process drops is not kept alive by the benchmark)."""
    from canary.kube import Reflector  # after main() has put canary's path first

    if getattr(Reflector.__init__, "recorded", False):
        return
    built = Reflector.__init__

    def noting(self: Reflector, *args: Any, **kwargs: Any) -> None:
        built(self, *args, **kwargs)
        BUILT.add(self)

    noting.recorded = True  # type: ignore[attr-defined]
    Reflector.__init__ = noting  # type: ignore[method-assign]


async def relist_all(path: Path, reflectors: Iterable[Reflector] = BUILT) -> None:
    """Each namespace of every Reflector (those built since ``record_reflectors`` by
    default) listed again, all at once, as after 410 Gone (the Reflector's own re-list,
    private to it); the seconds that took written to ``path``."""
    caches = list(reflectors)
    began = asyncio.get_running_loop().time()
    await asyncio.gather(*(c._relist(scope) for c in caches for scope in c.scopes))
    text = json.dumps({"seconds": round(asyncio.get_running_loop().time() - began, 3),
                       "caches": len(caches),
                       "objects": sum(len(c) for c in caches)})
    await asyncio.to_thread(path.write_text, text)


def deep_size(root: object, seen: set[int]) -> int:
    """Bytes of ``root`` and of every container and scalar reachable through dicts,
    lists and tuples, each counted once across calls sharing ``seen``."""
    total, stack = 0, [root]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return total


def heap_report(path: Path) -> None:
    """What the process holds: its watch caches, and the collector's objects by type."""
    memory = traced()  # before the walk below allocates its own bookkeeping
    gc.unfreeze()  # frozen objects are not listed otherwise
    try:
        objects = gc.get_objects()
        caches = [o for o in objects if type(o).__name__ == "Reflector"]
        seen: set[int] = set()
        sizes = {f"{r.resource.plural} {','.join(str(s) for s in r.scopes)}": {
            "objects": len(r), "mib": round(deep_size(r._store, seen) / 2**20, 2)}
            for r in caches}
        types = Counter(type(o).__qualname__ for o in objects)
    finally:
        gc.freeze()
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({
        "caches_mib": round(sum(c["mib"] for c in sizes.values()), 2),
        "caches": dict(sorted(sizes.items(), key=lambda kv: -kv[1]["mib"])),
        "tracked_objects": len(objects), "by_type": dict(types.most_common(25)),
        **memory}))
    partial.replace(path)


def traced() -> dict[str, Any]:
    """Live traced memory by package (the path's part after site-packages or the
    standard library) and the lines holding the most, when tracing."""
    if not tracemalloc.is_tracing():
        return {}
    stats = tracemalloc.take_snapshot().statistics("lineno")
    packages: Counter[str] = Counter()
    for stat in stats:
        packages[_package(stat.traceback[0].filename)] += stat.size
    return {"traced_mib": round(sum(s.size for s in stats) / 2**20, 2),
            "traced_by_package_mib": {k: round(v / 2**20, 2)
                                      for k, v in packages.most_common(30)},
            "traced_lines_mib": {str(s.traceback[0]): round(s.size / 2**20, 2)
                                 for s in stats[:30]}}


def _package(filename: str) -> str:
    parts = Path(filename).parts
    for anchor in ("site-packages", "python3.11"):
        if anchor in parts[:-1]:
            return parts[parts.index(anchor) + 1]
    return "canary" if "canary" in parts else filename


def profiling() -> cProfile.Profile | None:
    """A profiler already running, when ``LOOPTIMER_PROFILE`` asks for one; it stops and
    writes its statistics after ``LOOPTIMER_PROFILE_SECONDS``."""
    path = os.environ.get("LOOPTIMER_PROFILE")
    if not path:
        return None
    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def stop_profiling(profiler: cProfile.Profile) -> None:
    profiler.disable()
    profiler.dump_stats(os.environ["LOOPTIMER_PROFILE"])


def main() -> None:
    if os.environ.get("LOOPTIMER_TRACEMALLOC") == "1":
        tracemalloc.start()
    profiler = profiling()
    report, args = Path(sys.argv[1]), sys.argv[2:]
    clock = LoopClock()
    run = asyncio.run

    def timed_run(main: Coroutine[Any, Any, Any], **options: Any) -> Any:
        async def with_clock() -> Any:
            loop = asyncio.get_running_loop()
            if profiler is not None:
                loop.call_later(float(os.environ.get("LOOPTIMER_PROFILE_SECONDS", "20")),
                                stop_profiling, profiler)
            ticking = loop.create_task(clock.tick())
            relists: set[asyncio.Task[None]] = set()

            def relist() -> None:
                task = loop.create_task(relist_all(report.with_suffix(".relist.json")))
                relists.add(task)
                task.add_done_callback(relists.discard)

            loop.add_signal_handler(signal.SIGHUP, relist)
            try:
                return await main
            finally:
                ticking.cancel()
        return run(with_clock(), **options)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        clock.report(report)

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGUSR2,
                  lambda _n, _f: heap_report(report.with_suffix(".heap.json")))
    asyncio.run = timed_run
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run as a script: the benchmark's modules are not canary's
    record_reflectors()
    sys.argv = ["canary", *args]
    runpy.run_module("canary", run_name="__main__")


if __name__ == "__main__":
    main()
