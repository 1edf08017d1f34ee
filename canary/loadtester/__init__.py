"""``canary loadtester``: a small HTTP service for rollout hooks.

It generates ``hey``-style traffic when a ``rollout`` (or ``pre-rollout``) hook asks for
it, and answers gate endpoints (``/gate/check``, ``/rollback/check``, ...) whose state is
kept in a file so that it survives the load tester's restart.
"""

from canary.loadtester.gates import GateStore
from canary.loadtester.hey import LoadSpec, parse_hey
from canary.loadtester.server import LoadTester
from canary.loadtester.traffic import LoadReport, generate

__all__ = ["GateStore", "LoadReport", "LoadSpec", "LoadTester", "generate", "parse_hey"]
