"""What the router tests share: the owning Canary, the names they generate, and analyses
the kubernetes provider cannot route."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

OWNER = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
         "metadata": {"name": "web", "uid": "u"}}
#: Service names and label values as Kubernetes allows them.
names = st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True)

#: An analysis that sets each field the kubernetes provider cannot route.
ASKING_FOR_A_MESH: dict[str, dict[str, Any]] = {
    "stepWeight": {"stepWeight": 10},
    "stepWeights": {"stepWeights": [10, 50]},
    "stepWeightPromotion": {"iterations": 3, "stepWeightPromotion": 20},
    "match": {"iterations": 3, "match": [{"headers": {"x-user": {"exact": "qa"}}}]},
    "mirror": {"iterations": 3, "mirror": True},
    "sessionAffinity": {"iterations": 3, "sessionAffinity": {"cookieName": "c"}},
}
