"""Whether the controller under a fault is still well: running, answering its liveness
probe, and with no reconcile that failed unexpectedly."""

from __future__ import annotations

import contextlib
import json

import httpx

from tests.e2e.controller_process import ControllerProcess


async def still_alive(controller: ControllerProcess) -> None:
    """The process runs and its liveness probe answers 200."""
    assert controller.running(), f"the controller exited:\n{controller.tail()}"
    async with httpx.AsyncClient(timeout=5) as http:
        alive = await http.get(f"{controller.probe_url}/healthz")
    assert alive.status_code == 200, f"/healthz answered {alive.status_code}: {alive.text}"


def unexpected_failures(controller: ControllerProcess, offset: int,
                        spaces: list[str]) -> list[str]:
    """Reconciles of Canaries in ``spaces`` that failed unexpectedly, logged after byte
    ``offset`` of the controller's log (an exception the controller did not expect is a
    bug: it is retried for ever, and the Canary says nothing)."""
    found = []
    with controller.log.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            line = raw.decode(errors="replace")
            if "unexpectedly" not in line and "Traceback" not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                where = str(entry.get("canary", ""))
                if where.split("/")[0] in spaces or not where:
                    found.append(f"{where}: {entry.get('event')}: "
                                 f"{str(entry.get('exception', ''))[-600:]}")
    return found
