"""Who wrote what, and when, from the API server's audit log (fault 7).

The environment's API servers record every request of a ServiceAccount at the Metadata
level (``canary/devenv/components.py``): its user, verb, object, status code and times.
With each controller replica under its own ServiceAccount, the log proves (or refutes)
that only one replica wrote at a time: a write is a replica's only while it is the last
to have written the leader Lease successfully.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Write:
    user: str
    verb: str
    #: "resource/namespace/name" (subresource appended), for messages.
    what: str
    received: datetime
    completed: datetime
    code: int
    lease: bool


def writes_since(log: Path, offset: int, users: set[str], lease: tuple[str, str]
                 ) -> list[Write]:
    """The completed writes of ``users`` in ``log`` after byte ``offset``; those to the
    Lease ``(namespace, name)`` marked."""
    found: list[Write] = []
    with log.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            entry = json.loads(line)
            user = entry.get("user", {}).get("username")
            if entry.get("stage") != "ResponseComplete" or user not in users or \
                    entry.get("verb") not in MUTATING:
                continue
            found.append(_write(entry, user, lease))
    return sorted(found, key=lambda w: w.received)


def _write(entry: dict[str, Any], user: str, lease: tuple[str, str]) -> Write:
    ref = entry.get("objectRef") or {}
    what = "/".join(str(ref.get(k) or "") for k in ("resource", "namespace", "name"))
    if ref.get("subresource"):
        what += f"/{ref['subresource']}"
    return Write(user, str(entry["verb"]), what,
                 _time(entry["requestReceivedTimestamp"]), _time(entry["stageTimestamp"]),
                 int((entry.get("responseStatus") or {}).get("code") or 0),
                 ref.get("resource") == "leases" and
                 (ref.get("namespace"), ref.get("name")) == lease)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def two_actors(writes: list[Write]) -> tuple[list[str], int]:
    """Writes (other than to the Lease) received while another user held the Lease, as
    messages; and how many times the Lease changed hands. The holder at a moment is the
    user whose successful Lease write completed last before it."""
    takes = sorted((w for w in writes if w.lease and 200 <= w.code < 300),
                   key=lambda w: w.completed)
    handovers = sum(a.user != b.user for a, b in itertools.pairwise(takes))
    found = []
    for write in (w for w in writes if not w.lease):
        before = [t for t in takes if t.completed <= write.received]
        holder = before[-1].user if before else None
        if holder != write.user:
            found.append(f"{write.user} {write.verb} {write.what} ({write.code}) at "
                         f"{write.received.isoformat()} while {holder} held the Lease")
    return found, handovers
