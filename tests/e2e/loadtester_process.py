"""``canary loadtester`` run as a real process, as the controller's hooks call it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from canary.devenv.process import free_port


class LoadTesterProcess:
    def __init__(self, state: Path, log: Path, *flags: str,
                 env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state, self.log, self.flags = state, log, flags
        #: Variables added to the process's environment (e.g. http_proxy).
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "canary", "loadtester", "--bind-address",
                 f"127.0.0.1:{self.port}", "--state-file", str(self.state), *self.flags],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        for _ in range(200):
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"the load tester did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
