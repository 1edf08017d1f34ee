"""The controller under test, run as a real process so it can be killed and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from canary.devenv import LocalEnvironment


class ControllerProcess:
    def __init__(self, env: LocalEnvironment, log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "canary", "run", "--kubeconfig", str(self.env.kubeconfig),
                 "--metrics-server", self.env.prometheus_url, "--min-interval", "1s",
                 "--default-progress-deadline", "60s", "--log-level", "debug"],
                stdout=handle, stderr=subprocess.STDOUT, env=dict(os.environ))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the controller exited with {self.process.returncode}; "
                                     f"log: {self.log}\n{self.tail()}")
            with self.log.open("rb") as handle:
                handle.seek(offset)
                if b"caches synced" in handle.read():
                    return
            time.sleep(0.1)
        raise AssertionError(f"the controller did not sync its caches in {timeout}s; "
                             f"log: {self.log}\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
