"""``canary loadtester``: flags (each also CANARY_LOADTESTER_<FLAG>) and the process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

from canary.errors import ConfigError
from canary.flags import Flags, named
from canary.loadtester.gates import GateStore
from canary.loadtester.server import LoadTester, serve
from canary.logging import LOG_FORMATS, LOG_LEVELS, configure_logging

FLAGS = Flags("CANARY_LOADTESTER_", {"bind-address": "0.0.0.0:8080", "log-level": "info",
                                     "log-format": "json", "command-timeout": "1h"})


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "loadtester", help="run the load tester for rollout hooks and gates",
        description="Serve hey-style load for rollout hooks and approval/rollback gates, "
        "and with --allow-commands run the hooks' commands (bash, helm, ghz, ...). "
        "Every flag can also be set with its environment variable, "
        "CANARY_LOADTESTER_<FLAG>; a flag given on the command line wins.")
    FLAGS.option(parser, "bind-address", "host:port to listen on (default 0.0.0.0:8080)",
                 metavar="ADDRESS")
    FLAGS.option(parser, "state-file", "JSON file keeping gate state across restarts "
                 "(default: none, gates are forgotten on restart)", metavar="PATH")
    FLAGS.switch(parser, "allow-commands", "run hooks' commands (type bash, cmd, helm, "
                 "helmv3, kubectl; ghz): anyone who can write a Canary can then run "
                 "programs in the load tester (default off: only hey loads and gates)")
    FLAGS.option(parser, "command-timeout", "longest a command may run when its hook sets "
                 "no timeout, and a background one (default 1h)", metavar="DURATION")
    FLAGS.option(parser, "log-level", f"least severe level logged: {', '.join(LOG_LEVELS)} "
                 "(default info)", metavar="LEVEL")
    FLAGS.option(parser, "log-format", "json or console (default json)", metavar="FORMAT")


def address(text: str) -> tuple[str, int]:
    """``host:port`` (an empty host listens everywhere), else ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    return host or "0.0.0.0", int(port)


def run(args: argparse.Namespace) -> int:
    value = FLAGS.values(args)
    level = value.choice("log-level", LOG_LEVELS)
    fmt = value.choice("log-format", LOG_FORMATS)
    bind_address, source = value("bind-address")
    with named(source):
        host, port = address(bind_address)
    state_file = value.checked("state-file", str)
    allow_commands = value.switch("allow-commands")
    command_timeout = value.duration("command-timeout")
    if command_timeout <= 0:
        raise ConfigError(f"{value('command-timeout')[1]}: the timeout must be positive")
    configure_logging(level, fmt)
    gates = GateStore(Path(state_file) if state_file else None)
    tester = LoadTester(gates, allow_commands=allow_commands, command_timeout=command_timeout)
    asyncio.run(_main(tester, host, port))
    return 0


async def _main(tester: LoadTester, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await serve(tester, host, port, stop)
