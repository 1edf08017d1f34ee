"""Revisions: a stable hash of a pod template.

The hash is of a canonical form (JSON with sorted keys, no whitespace, UTF-8), so it does
not depend on how any library lays out an object in memory and stays the same across
controller upgrades. Changing this function changes every Canary's revision: don't.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def template_hash(template: Mapping[str, Any]) -> str:
    """16 hex characters identifying a pod template's content."""
    return hashlib.sha256(canonical(template)).hexdigest()[:16]
