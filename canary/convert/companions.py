"""What a Flagger manifest expects of the services Flagger installs beside it.

Flagger's chart installs a load tester (``flagger-loadtester``) that runs any command a
hook sends, and can install a Prometheus (``flagger-prometheus``). canary installs neither
under those names: its load tester (``canary loadtester``, Service ``canary-loadtester``
for a release of that name) generates ``hey`` load itself and runs other commands only
when started with ``--allow-commands``. A converted manifest still pointing at them
converts cleanly and then fails at the first analysis, so these notes say what to change.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from canary.convert.paths import Path

FLAGGER_LOADTESTER = "flagger-loadtester"
CANARY_LOADTESTER = "canary-loadtester"
FLAGGER_PROMETHEUS = "flagger-prometheus"
ALLOW_COMMANDS = ("canary's load tester runs hey commands only, unless started with "
                  "commands allowed (`canary loadtester --allow-commands`, chart value "
                  "loadtester.allowCommands)")


def _first_label(url: str) -> tuple[str, str]:
    """The first label of ``url``'s host, and the rest of the host (with its dot)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return "", ""
    first, dot, rest = host.partition(".")
    return first, dot + rest


def loadtester_url(url: str) -> str | None:
    """``url`` rewritten to canary's load tester, when it names Flagger's; else None."""
    first, rest = _first_label(url)
    if first != FLAGGER_LOADTESTER:
        return None
    return url.replace(FLAGGER_LOADTESTER + rest, CANARY_LOADTESTER + rest, 1)


def hook_notes(hook: dict[str, Any]) -> list[tuple[Path, str]]:
    """Notes (a path within the hook, the message) for one webhook of a Canary."""
    notes: list[tuple[Path, str]] = []
    url = hook.get("url")
    suggested = loadtester_url(url) if isinstance(url, str) else None
    if suggested is not None:
        notes.append((("url",), f"calls Flagger's load tester ({FLAGGER_LOADTESTER}), which "
                      f"canary does not install: change it to canary's load tester, e.g. "
                      f"{suggested} (Service {CANARY_LOADTESTER} of charts/canary-loadtester; "
                      "the /gate and /rollback paths are the same)"))
    metadata = hook.get("metadata")
    if not isinstance(metadata, dict):
        return notes
    command, kind = metadata.get("cmd"), metadata.get("type")
    if not isinstance(command, str) or not command.strip():
        return notes
    if kind not in (None, "", "cmd"):
        notes.append((("metadata", "type"), f"a {kind} command ({_short(command)}): "
                      f"{ALLOW_COMMANDS}"))
    elif command.split()[0] != "hey":
        notes.append((("metadata", "cmd"), f"{_short(command)} is not a hey command: "
                      f"{ALLOW_COMMANDS}"))
    return notes


def prometheus_note(address: Any) -> str | None:
    """The note for a MetricTemplate's ``spec.provider.address``, when it needs one."""
    if not isinstance(address, str) or _first_label(address)[0] != FLAGGER_PROMETHEUS:
        return None
    return (f"{address} is the Prometheus Flagger installs ({FLAGGER_PROMETHEUS}), which "
            "canary does not: point it to your Prometheus, or leave address out to use the "
            "controller's --metrics-server")


def _short(command: str) -> str:
    words = command.split()
    shown = " ".join(words[:3]) + (" ..." if len(words) > 3 else "")
    return f"`{shown}`"
