"""The command line of ``canary status | watch | describe | convert``."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from canary import convert as converting
from canary.console import describe, status, watch
from canary.console.render import Style
from canary.errors import CanaryError
from canary.logging import configure_logging

COMMANDS = ("status", "watch", "describe", "convert")
#: Exit status of ``canary convert --strict`` when a note was written.
LOSSY = 3


def add_parsers(commands: Any) -> None:
    """Register the commands on the ``canary`` parser's subparsers."""
    show = commands.add_parser(
        "status", help="a table of every Canary: phase, weight, failed checks, last decision")
    scope = show.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="every namespace (the default)")
    show.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    show.add_argument("--kubeconfig", type=Path, default=None)

    follow = commands.add_parser(
        "watch", help="follow a rollout live: steps, weight, checks against their bounds, "
        "events")
    follow.add_argument("name", help="the Canary")
    follow.add_argument("-n", "--namespace", default="default")
    follow.add_argument("--follow", action="store_true",
                        help="keep going after the rollout ends, through the next ones")
    follow.add_argument("--kubeconfig", type=Path, default=None)

    tell = commands.add_parser(
        "describe", help="a Canary's spec, status and decision history with evidence")
    tell.add_argument("name", help="the Canary")
    tell.add_argument("-n", "--namespace", default="default")
    tell.add_argument("--kubeconfig", type=Path, default=None)

    convert = commands.add_parser(
        "convert", help="turn Flagger manifests into canary's (YAML on stdout, notes on "
        "stderr)")
    convert.add_argument("files", nargs="*", metavar="FILE",
                         help="YAML files (default, or -: standard input)")
    convert.add_argument("--strict", action="store_true",
                         help=f"exit {LOSSY} when any note was written (anything not "
                         "carried over as written, or to change before it works)")


def run(args: argparse.Namespace, stdout: TextIO | None = None,
        stderr: TextIO | None = None, stdin: TextIO | None = None) -> int:
    try:
        return _run(args, stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin)
    except BrokenPipeError:
        # The reader went away (`canary watch ... | head`): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    if args.command == "convert":
        return run_convert(args.files, args.strict, out, err, stdin)
    # The reflectors log their reconnects; only errors reach stderr, never the screen.
    configure_logging("error", "console")
    width = shutil.get_terminal_size((100, 30)).columns if out.isatty() else None
    style = Style.for_stream(out)
    now = datetime.now(UTC)
    if args.command == "status":
        views = asyncio.run(status.fetch(args.namespace, args.kubeconfig))
        if args.output == "table":
            out.write(status.render_table(views, now, width, style))
        else:
            out.write(status.render_data(views, args.output))
        return 0
    if args.command == "describe":
        view, events = asyncio.run(describe.fetch(args.name, args.namespace, args.kubeconfig))
        out.write(describe.render(view, events, datetime.now(UTC), style, width))
        return 0
    if args.command == "watch":
        return asyncio.run(watch.run(args.name, args.namespace, args.kubeconfig, out,
                                     follow=args.follow))
    raise AssertionError(args.command)


def run_convert(files: list[str], strict: bool, out: TextIO, err: TextIO,
                stdin: TextIO) -> int:
    """Convert ``files`` (stdin for none or ``-``): YAML to ``out``, notes and errors to
    ``err``. Exit 1 and write nothing when the input is malformed."""
    inputs: list[tuple[str, str]] = []
    for name in files or ["-"]:
        if name == "-":
            text, source = stdin.read(), "<stdin>"
        else:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CanaryError(f"cannot read {name}: {exc}") from None
            source = name
        inputs.append((text, source))
    result = converting.convert_texts(inputs)
    order = {source: index for index, (_, source) in enumerate(inputs)}

    def where(note: converting.Note) -> tuple[int, int]:
        return order.get(note.source, 0), note.line or 0

    for note in sorted(result.notes, key=where):
        err.write(f"note: {note}\n")
    if result.errors:
        for error in sorted(result.errors, key=where):
            err.write(f"error: {error}\n")
        err.write(f"canary convert: {len(result.errors)} error"
                  f"{'s' if len(result.errors) != 1 else ''}: nothing written\n")
        return 1
    out.write(result.text())
    if strict and result.notes:
        err.write(f"canary convert: {len(result.notes)} note"
                  f"{'s' if len(result.notes) != 1 else ''} (--strict)\n")
        return LOSSY
    return 0
