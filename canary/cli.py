"""The ``canary`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import NoReturn

from canary import __version__, app, backtest, demo, manual
from canary.console import cli as console_cli
from canary.devenv import cli as devenv_cli
from canary.errors import CanaryError
from canary.loadtester import cli as loadtester_cli
from canary.models.crds import write as write_crds


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``canary run: error: ...``), not usage plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="canary", description="Progressive delivery for Kubernetes.")
    parser.add_argument("--version", action="version", version=f"canary {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    app.add_parser(commands)
    devenv_cli.add_parser(commands)
    loadtester_cli.add_parser(commands)
    backtest.add_parser(commands)
    demo.add_parser(commands)
    console_cli.add_parsers(commands)
    for action, help_text in (("promote", "promote a rollout now, skipping the remaining "
                               "steps (or approve a held one)"),
                              ("abort", "roll a rollout back now"),
                              ("pause", "freeze a rollout where it is"),
                              ("resume", "continue a paused rollout")):
        gate = commands.add_parser(action, help=help_text)
        gate.add_argument("name", help="the Canary")
        gate.add_argument("-n", "--namespace", default="default")
        gate.add_argument("--kubeconfig", type=Path, default=None)
    crds = commands.add_parser("crds", help="write the CustomResourceDefinitions "
                               "generated from the API models")
    crds.add_argument("--output", type=Path, action="append",
                      help="directory to write into; repeatable (default: crds and "
                      "charts/canary/crds)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return app.run(args)
        if args.command == "devenv":
            return devenv_cli.run(args)
        if args.command == "loadtester":
            return loadtester_cli.run(args)
        if args.command == "backtest":
            return backtest.run(args)
        if args.command == "demo":
            return demo.run(args)
        if args.command in console_cli.COMMANDS:
            return console_cli.run(args)
        if args.command in manual.ACTIONS:
            print(asyncio.run(manual.request(args.command, args.name, args.namespace,
                                             args.kubeconfig)))
            return 0
        if args.command == "crds":
            for directory in args.output or [Path("crds"), Path("charts/canary/crds")]:
                for path in write_crds(directory):
                    print(path)
            return 0
    except CanaryError as exc:
        print(f"canary: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    raise AssertionError(args.command)
