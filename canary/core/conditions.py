"""Building a Canary's status conditions (metav1.Condition) as Kubernetes expects them.

A condition's ``lastTransitionTime`` says when its status last changed, not when it was
last written: it is kept while the status stays, whatever the reason or message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from canary.core.timefmt import format_time
from canary.models.canary import Condition

Status = Literal["True", "False", "Unknown"]

#: Ready=False reasons that say where a rollout stands (under way, or rolled back) rather
#: than a problem the Canary has.
ROLLOUT_REASONS = frozenset({"Initializing", "Waiting", "Queued", "Progressing",
                             "Promoting", "Finalising", "RolledBack"})

#: Ready=False reasons no wait resolves: the Canary cannot act until a person changes it,
#: or the objects it names (kstatus's Stalled).
STALLING_REASONS = frozenset({"Conflict", "InvalidSpec", "UnsupportedProvider",
                              "UnsupportedTarget"})


def condition(type_: str, status: Status, reason: str, message: str, *,
              previous: Condition | None, generation: int | None, now: datetime) -> Condition:
    """The condition ``type_`` as it now stands, ``previous`` being how it stood (None
    when it was not set)."""
    transition = (previous.last_transition_time
                  if previous is not None and previous.status == status
                  else format_time(now))
    return Condition(type=type_, status=status, reason=reason, message=message,
                     observed_generation=generation, last_transition_time=transition)
