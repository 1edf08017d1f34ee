"""``canary loadtester``: flags (each also CANARY_LOADTESTER_<FLAG>) and the process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from canary.errors import ConfigError
from canary.loadtester.gates import GateStore
from canary.loadtester.server import LoadTester, serve
from canary.logging import configure_logging


def _env(flag: str) -> str | None:
    return os.environ.get("CANARY_LOADTESTER_" + flag.upper().replace("-", "_"))


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "loadtester", help="run the load tester for rollout hooks and gates",
        description="Serve hey-style load for rollout hooks and approval/rollback gates. "
        "Every flag can also be set with CANARY_LOADTESTER_<FLAG>.")
    parser.add_argument("--bind-address", default=_env("bind-address") or "0.0.0.0:8080",
                        help="host:port to listen on (default 0.0.0.0:8080)")
    parser.add_argument("--state-file", type=Path, default=_env("state-file"),
                        help="JSON file keeping gate state across restarts (default: none, "
                        "gates are forgotten on restart)")
    parser.add_argument("--log-level", default=_env("log-level") or "info",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default=_env("log-format") or "json",
                        choices=["json", "console"])


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--bind-address: {text!r} is not host:port")
    return host or "0.0.0.0", int(port)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, args.log_format)
    host, port = address(args.bind_address)
    gates = GateStore(Path(args.state_file) if args.state_file else None)
    asyncio.run(_main(LoadTester(gates), host, port))
    return 0


async def _main(tester: LoadTester, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await serve(tester, host, port, stop)
