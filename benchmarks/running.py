"""What the benchmarks share about running things: waiting for a process to answer,
stopping a run cleanly on SIGTERM, and matplotlib when it is installed."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from types import ModuleType

import httpx

from canary.devenv import process


async def wait_http_ok(url: str, record: process.ProcessRecord, timeout: float) -> None:
    """Until ``url`` answers 200; fails fast if the process exits meanwhile."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if not record.alive():
                raise RuntimeError(f"{record.name} exited: {record.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{record.name} not ready after {timeout:.0f}s: "
                                   f"{record.log_tail()}")
            await asyncio.sleep(0.1)


def cancel_on_sigterm() -> None:
    """SIGTERM cancels the running task, so its cleanups (the environment's processes)
    run as on Ctrl-C."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def pyplot() -> ModuleType | None:
    """matplotlib's pyplot on a file backend, or None (said) when it is not installed:
    canary does not depend on it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (canary does not depend on it): no plot. "
              "`.venv/bin/pip install matplotlib`, then rerun with --plot-only.")
        return None
    module: ModuleType = plt  # typed whether or not matplotlib's stubs are installed
    return module
