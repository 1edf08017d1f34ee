"""Label keys with a meaning in canary's API, shared by the settings and the workload port."""

from __future__ import annotations

#: Label keys whose value is renamed for the primary (the first found selects pods);
#: Flagger's ``--selector-labels`` default, changed with canary's flag of that name.
DEFAULT_SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
