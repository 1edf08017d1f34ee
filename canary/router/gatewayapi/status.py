"""Whether the data plane took a Gateway API route: every parent (Gateway, or Service for
mesh routing) the route names reports, for the route's current generation, that it
accepted the route (``Accepted``) and resolved its backends (``ResolvedRefs``).

Until then the weights canary wrote are not the weights traffic follows: the rollout
should wait, and a refusal belongs in a condition of the Canary, in the parent's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from canary.router.gatewayapi.matches import JSON

_REQUIRED = ("Accepted", "ResolvedRefs")


@dataclass(frozen=True)
class Acceptance:
    """``Accepted``: every parent took the current generation; ``Pending``: some parent has
    not reported on it yet; ``Refused``: a parent said no, ``reason`` and ``message`` in
    its words (the message names the parent)."""

    state: Literal["Accepted", "Pending", "Refused"]
    reason: str = ""
    message: str = ""


def _key(ref: JSON, namespace: str) -> tuple[str, str, str, str, str, int | None]:
    """A parentRef with the Gateway API's defaults filled in, for comparing."""
    return (ref.get("group", "gateway.networking.k8s.io"), ref.get("kind", "Gateway"),
            ref.get("namespace") or namespace, ref.get("name", ""),
            ref.get("sectionName", ""), ref.get("port"))


def _describe(ref: JSON, namespace: str) -> str:
    _, kind, ns, name, section, port = _key(ref, namespace)
    where = "".join(f" {part}" for part in (section and f"listener {section}",
                                            port and f"port {port}") if part)
    return f"{kind} {ns}/{name}{where}"


def _verdict(ref: JSON, namespace: str, reports: list[JSON], generation: int) -> Acceptance:
    """One parent's verdict, from every controller's report on it."""
    described = _describe(ref, namespace)
    if not reports:
        return Acceptance("Pending", "NotReported",
                          f"{described} has not reported on the route yet")
    for report in reports:
        conditions = {c.get("type"): c for c in report.get("conditions") or []}
        for required in _REQUIRED:
            condition = conditions.get(required)
            if condition is None or condition.get("observedGeneration", generation) < generation:
                return Acceptance("Pending", "NotReported", f"{described} has not reported "
                                  f"{required} for generation {generation} yet")
            if condition.get("status") != "True":
                reason = condition.get("reason") or required
                return Acceptance("Refused", reason, f"{described} refused the route: "
                                  f"{reason}: {condition.get('message', '')}".rstrip(": "))
    return Acceptance("Accepted")


def acceptance(route: JSON) -> Acceptance:
    """Whether every parent of ``route`` accepted its current generation: the first refusal,
    else the first parent yet to report, else Accepted."""
    namespace = route.get("metadata", {}).get("namespace", "")
    generation = int(route.get("metadata", {}).get("generation") or 0)
    parents = (route.get("status") or {}).get("parents") or []
    verdicts = []
    for ref in route.get("spec", {}).get("parentRefs") or []:
        key = _key(ref, namespace)
        reports = [p for p in parents if _key(p.get("parentRef") or {}, namespace) == key]
        verdicts.append(_verdict(ref, namespace, reports, generation))
    for state in ("Refused", "Pending"):
        if found := next((v for v in verdicts if v.state == state), None):
            return found
    return Acceptance("Accepted")
