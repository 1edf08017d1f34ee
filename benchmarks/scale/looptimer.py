"""``canary run`` with a clock on its event loop: how long the loop stood still, measured
inside the process, which nothing outside it can see.

    python -m benchmarks.scale.looptimer REPORT run --kubeconfig ...

runs canary's command line (the arguments after REPORT) with one more task on its event
loop, which sleeps 5 ms at a time and records how much later than that it woke: the
longest such delay is the longest the loop was held (a turn of the loop, a garbage
collection, a page decoded). On SIGUSR1 it writes to REPORT, as JSON, the longest delay
since the loop started and since the last report, and every delay over 50 ms with the
second it began. The task wakes 200 times a second: measure CPU without it.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

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


def main() -> None:
    report, args = Path(sys.argv[1]), sys.argv[2:]
    clock = LoopClock()
    run = asyncio.run

    def timed_run(main: Coroutine[Any, Any, Any], **options: Any) -> Any:
        async def with_clock() -> Any:
            ticking = asyncio.get_running_loop().create_task(clock.tick())
            try:
                return await main
            finally:
                ticking.cancel()
        return run(with_clock(), **options)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        clock.report(report)

    signal.signal(signal.SIGUSR1, on_signal)
    asyncio.run = timed_run
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run as a script: the benchmark's modules are not canary's
    sys.argv = ["canary", *args]
    runpy.run_module("canary", run_name="__main__")


if __name__ == "__main__":
    main()
