"""Which delivery strategy a Canary's analysis describes, inferred as Flagger users expect.

- ``Canary``: stepWeight or stepWeights; traffic moves to the canary step by step.
- ``ABTesting``: iterations with match; matched users go to the canary for the whole
  analysis, everyone else stays on the primary.
- ``BlueGreen``: iterations without match; the primary takes all traffic during the
  analysis, then traffic switches at once.
- ``BlueGreenMirroring``: as BlueGreen, with requests copied to the canary (responses
  discarded) during the analysis; ``mirrorWeight`` sets the copied share (default 100).
"""

from __future__ import annotations

from enum import StrEnum

from canary.models.canary import CanaryAnalysis


class Strategy(StrEnum):
    CANARY = "Canary"
    AB_TESTING = "ABTesting"
    BLUE_GREEN = "BlueGreen"
    BLUE_GREEN_MIRRORING = "BlueGreenMirroring"

    @property
    def iterative(self) -> bool:
        """Runs a number of iterations instead of walking weights."""
        return self is not Strategy.CANARY


def infer(analysis: CanaryAnalysis) -> Strategy:
    if analysis.iterations is None:
        return Strategy.CANARY
    if analysis.match:
        return Strategy.AB_TESTING
    if analysis.mirror:
        return Strategy.BLUE_GREEN_MIRRORING
    return Strategy.BLUE_GREEN
