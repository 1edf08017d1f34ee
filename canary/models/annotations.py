"""The annotations of a Canary by which people ask for manual decisions.

They belong to the Canary's API: ``canary promote | abort | pause | resume`` (or
kubectl) writes them, the controller reads them and removes a request it has served.
"""

from __future__ import annotations

#: Promote the named revision while its analysis runs.
PROMOTE_ANNOTATION = "canary.dev/promote"
#: Let the named revision, held before its analysis, start.
APPROVE_ANNOTATION = "canary.dev/approve"
#: Roll the named revision back.
ABORT_ANNOTATION = "canary.dev/abort"
#: "true": decide nothing until removed.
PAUSED_ANNOTATION = "canary.dev/paused"
