"""Who else owns the target's replicas, read from the cached managedFields.

The Deployment cache keeps of ``metadata.managedFields`` who wrote when and whether they
own ``spec.replicas`` (:func:`canary.kube.trim.replica_managers`). The decision needs
the one manager that sets the replicas behind canary's back (see
``canary.core.decide.field_conflict``): not canary itself, whose scaling is written
under its field manager, and not an autoscaler, which writes through the ``scale``
subresource (as ``kubectl scale`` does, a one-off).
"""

from __future__ import annotations

from datetime import datetime

from canary.core.observation import FieldOwner
from canary.core.timefmt import parse_time
from canary.kube import JSON
from canary.kube.trim import FieldManager, replica_managers

#: The subresource an autoscaler (or ``kubectl scale``) writes replicas through.
SCALE = "scale"


def replicas_owner(deployment: JSON | None, own_manager: str) -> FieldOwner | None:
    """The field manager other than ``own_manager`` and the scale subresource that owns
    the Deployment's ``spec.replicas``, the latest to write when several share it
    (server-side apply lets appliers of one value share a field); None if there is none."""
    if deployment is None:
        return None
    others = [m for m in replica_managers(deployment) if m.owns_replicas
              and m.manager != own_manager and m.subresource != SCALE]
    if not others:
        return None
    latest = max(others, key=lambda m: m.time)  # RFC 3339 in UTC sorts as text
    return FieldOwner(latest.manager or "an unnamed field manager", latest.operation,
                      _when(latest))


def _when(entry: FieldManager) -> datetime | None:
    """The entry's time, None when it has none or cannot be read."""
    try:
        return parse_time(entry.time) if entry.time else None
    except ValueError:
        return None
