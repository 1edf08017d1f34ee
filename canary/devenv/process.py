"""Background processes of the local environment: start, watch, stop by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if it is gone.

    Stored next to a PID so that a later ``down`` never signals an unrelated process that
    happens to have been given the same PID.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; it is closed by the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class ProcessRecord:
    """What is remembered of a started process, in the environment's state file."""

    name: str
    pid: int
    start_time: str
    log: str
    argv: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(name=str(data["name"]), pid=int(data["pid"]),
                   start_time=str(data["start_time"]), log=str(data["log"]),
                   argv=[str(a) for a in data["argv"]])

    def alive(self) -> bool:
        """Running, and still the same process (not a reused PID)."""
        if process_start_time(self.pid) != self.start_time:
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = Path(self.log).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def start(name: str, argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> ProcessRecord:
    """Start ``argv`` in its own session, with stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        process = subprocess.Popen(
            list(argv), stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, env=dict(env) if env is not None else None, start_new_session=True,
        )
    start_time = process_start_time(process.pid) or ""
    # The Popen object is dropped on purpose: the process outlives this Python process
    # when started by `canary devenv up`. Reaping happens in stop() or by init.
    process.returncode = 0  # keeps Popen.__del__ from warning about a running child
    return ProcessRecord(name=name, pid=process.pid, start_time=start_time, log=str(log),
                         argv=list(argv))


def stop(record: ProcessRecord, timeout: float = 10.0) -> None:
    """SIGTERM the process's group, then SIGKILL it after ``timeout`` seconds."""
    if not record.alive():
        _reap(record.pid)
        return
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not record.alive():
            return
        time.sleep(0.05)
    _signal_group(record.pid, signal.SIGKILL)
    for _ in range(100):
        _reap(record.pid)
        if not record.alive():
            return
        time.sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
