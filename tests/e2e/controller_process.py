"""The controller under test, run as a real process so it can be killed and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from canary.devenv import LocalEnvironment
from canary.devenv.process import free_port


class ControllerProcess:
    def __init__(self, env: LocalEnvironment, log: Path, *extra_args: str,
                 kubeconfig: Path | None = None) -> None:
        self.env = env
        self.log = log
        self.extra_args = extra_args
        self.kubeconfig = kubeconfig or env.kubeconfig
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self.metrics_port = free_port()
        self.probe_port = free_port()

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def probe_url(self) -> str:
        return f"http://127.0.0.1:{self.probe_port}"

    def start(self, timeout: float = 60, wait_for: str | None = "caches synced") -> None:
        """Start; then wait until the log shows ``wait_for`` (None: do not wait)."""
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "canary", "run", "--kubeconfig", str(self.kubeconfig),
                 "--metrics-server", self.env.prometheus_url, "--min-interval", "1s",
                 "--default-progress-deadline", "60s", "--log-level", "debug",
                 "--metrics-bind-address", f"127.0.0.1:{self.metrics_port}",
                 "--health-probe-bind-address", f"127.0.0.1:{self.probe_port}",
                 *self.extra_args],
                stdout=handle, stderr=subprocess.STDOUT, env=dict(os.environ))
        if wait_for is not None:
            self.wait_for_log(wait_for, timeout)

    def logged(self, text: str) -> bool:
        """Whether this run of the process has logged ``text``."""
        with self.log.open("rb") as handle:
            handle.seek(self._offset)
            return text.encode() in handle.read()

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.logged(text):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"the controller exited with {self.process.returncode}; "
                                     f"log: {self.log}\n{self.tail()}")
            time.sleep(0.1)
        raise AssertionError(f"the controller did not log {text!r} in {timeout}s; "
                             f"log: {self.log}\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 20 s; the exit status."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return None if self.process is None else self.process.returncode

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
