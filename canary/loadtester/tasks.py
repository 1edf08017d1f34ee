"""What a rollout hook asks the load tester to do, read from its ``metadata``.

The ``type`` values are those of Flagger's load tester, so its hooks keep working:

- none or ``cmd``: a background task, answered at once. A ``hey`` command line is
  generated in-process; a ``ghz`` command line runs the ``ghz`` binary (no shell); any
  other command runs with ``sh -c``.
- ``bash``: ``bash -c <cmd>``, answered when it ends (the gate passes on exit status 0).
- ``helm`` / ``helmv3`` / ``kubectl``: that binary with the command's words as its
  arguments (no shell), answered when it ends.

Everything but ``hey`` executes a program with words a Canary's author chose, so it is
refused unless the load tester was started with ``--allow-commands``.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from typing import Any

from canary.errors import CanaryError, ConfigError
from canary.loadtester.hey import LoadSpec, parse_hey

#: Hook types that run a binary with the command's words as arguments, and that binary.
_BINARIES = {"helm": "helm", "helmv3": "helm", "kubectl": "kubectl"}
#: Flagger's hook types that this load tester does not run.
_UNSUPPORTED = ("concord", "ngrinder")
#: How to allow commands, quoted in every refusal.
HOW_TO_ALLOW = ("start it with --allow-commands (CANARY_LOADTESTER_ALLOW_COMMANDS=true; "
                "chart value allowCommands=true, loadtester.allowCommands=true in the "
                "canary chart)")


class Refused(CanaryError):
    """A hook that is not run: the HTTP status to answer and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Task:
    """One thing to run: a built-in ``hey`` load or a program's argv."""

    #: The hook's command text: a background task is not started twice while it runs.
    command: str
    #: Answer once it has ended (its exit status is the gate) rather than at once.
    blocking: bool
    load: LoadSpec | None = None
    argv: tuple[str, ...] = ()
    #: Log the command's output even when it succeeds.
    log_output: bool = False
    #: Put the command's output in the answer when it succeeds.
    return_output: bool = False


def plan(metadata: Any, allow_commands: bool) -> Task:
    """The task a hook's metadata describes; :class:`Refused` when it is not run."""
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise Refused(400, "metadata must be an object holding cmd")
    command = metadata.get("cmd")
    if not isinstance(command, str) or not command.strip():
        raise Refused(400, "metadata.cmd must hold a command line")
    kind = str(metadata.get("type") or "cmd")
    if kind in _UNSUPPORTED:
        raise Refused(400, f"metadata.type {kind!r} is not supported by this load tester")
    if kind not in ("cmd", "bash", *_BINARIES):
        known = ", ".join(("cmd", "bash", *_BINARIES))
        raise Refused(400, f"metadata.type {kind!r} is not one of {known}")
    words = _words(command)
    if kind == "cmd" and _program(words) == "hey":
        try:
            return Task(command, blocking=False, load=parse_hey(command))
        except ConfigError as exc:
            raise Refused(400, f"metadata.cmd: {exc}") from None
    if not allow_commands:
        raise Refused(403, f"commands ({kind}) are not allowed in this load tester "
                      f"(only hey loads and gates): {HOW_TO_ALLOW}")
    if kind == "cmd":
        argv = tuple(words) if _program(words) == "ghz" else ("sh", "-c", command)
    elif kind == "bash":
        argv = ("bash", "-c", command)
    else:
        argv = (_BINARIES[kind], *words)
    return Task(command, blocking=kind != "cmd", argv=_installed(argv),
                log_output=_flag(metadata, "logCmdOutput"),
                return_output=_flag(metadata, "returnCmdOutput"))


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise Refused(400, f"metadata.cmd: cannot read the command: {exc}") from None


def _program(words: list[str]) -> str:
    return words[0].rsplit("/", 1)[-1] if words else ""


def _flag(metadata: dict[str, Any], key: str) -> bool:
    return str(metadata.get(key, "")).strip().lower() in ("1", "true", "yes", "on")


def _installed(argv: tuple[str, ...]) -> tuple[str, ...]:
    """``argv`` when its program can be found, else a refusal naming the missing binary."""
    if shutil.which(argv[0]) is None:
        raise Refused(500, f"{argv[0]} is not installed in the load tester "
                      "(not found on its PATH); use an image that has it")
    return argv
