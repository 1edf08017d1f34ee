"""Gate state that survives the load tester's restart.

Gates are keyed by the Canary (``namespace/name``). A closed gate is the default: a
``confirm-*`` hook pointing at ``/gate/check`` holds until someone opens it. The state is
written to a JSON file atomically (write, fsync, rename) before the request that changed
it is answered, so an acknowledged change is never lost.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Literal

from canary.errors import ConfigError

Kind = Literal["gate", "rollback"]


class GateStore:
    """Open/closed state per Canary for approval gates and rollback requests."""

    def __init__(self, path: Path | None) -> None:
        """``path`` None keeps the state in memory only (lost on restart)."""
        self.path = path
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, bool]] = {"gate": {}, "rollback": {}}
        if path is not None and path.exists():
            self._state = _load(path)

    def is_open(self, kind: Kind, namespace: str, name: str) -> bool:
        return self._state[kind].get(f"{namespace}/{name}", False)

    def set(self, kind: Kind, namespace: str, name: str, is_open: bool) -> None:
        """Change one gate; the change takes effect only once it is on disk."""
        with self._lock:
            key = f"{namespace}/{name}"
            state = {k: dict(gates) for k, gates in self._state.items()}
            if is_open:
                state[kind][key] = True
            else:
                state[kind].pop(key, None)
            self._save(state)
            self._state = state

    def snapshot(self) -> dict[str, dict[str, bool]]:
        return {kind: dict(gates) for kind, gates in self._state.items()}

    def _save(self, state: dict[str, dict[str, bool]]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".gates-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(state, out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            Path(temporary).replace(self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself is durable too
        finally:
            os.close(directory)


def _load(path: Path) -> dict[str, dict[str, bool]]:
    """Read a state file; a damaged one is an error, never an empty (all closed) state."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the gate state {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
            isinstance(data.get(kind), dict) for kind in ("gate", "rollback")):
        raise ConfigError(f"{path} is not a gate state file (expected 'gate' and 'rollback')")
    return {kind: {str(k): bool(v) for k, v in data[kind].items() if v}
            for kind in ("gate", "rollback")}
