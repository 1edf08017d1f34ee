"""The ``canary`` command starts with the runtime dependencies alone, as in the image, where
the ``dev`` extra (test runners, the local Git server's dulwich, psutil...) is not installed.

A fresh interpreter imports the entry point with every module of a direct ``dev`` requirement
made unimportable (unless a runtime dependency needs it too), and runs ``--help``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(distribution: str, extra: str | None = None) -> set[str]:
    """The distributions ``distribution`` requires, without ``extra``, or only in it."""
    names = set()
    for requirement in metadata.requires(distribution) or []:
        marker = _EXTRA.search(requirement)
        if (marker.group(1) if marker else None) != extra:
            continue
        match = _NAME.match(requirement)
        assert match is not None, requirement
        names.add(_normalise(match.group()))
    return names


def _runtime_closure() -> set[str]:
    seen: set[str] = set()
    pending = _requirements("canary")
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            pending |= _requirements(name)
        except metadata.PackageNotFoundError:
            continue  # an environment marker left it out
    return seen


def _dev_only_modules() -> list[str]:
    dev_only = _requirements("canary", extra="dev") - _runtime_closure()
    return sorted(module for module, distributions in metadata.packages_distributions().items()
                  if {_normalise(d) for d in distributions} & dev_only)


_PROBE = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1:])
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (dev only)", name=name)
        return None
sys.meta_path.insert(0, Refuse())
from canary.cli import main
main(["--help"])
"""


def test_the_dev_extra_lists_modules_to_refuse() -> None:
    assert {"dulwich", "pytest", "psutil", "lupa"} <= set(_dev_only_modules())


def test_the_command_starts_without_the_dev_extra() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE, *_dev_only_modules()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: canary" in result.stdout
