"""The import contracts of pyproject.toml are checked: lint-imports, run on a copy of the
package with one stray import added, reports the contract that import breaks (and only
that one), while the copy as it is keeps them all."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import importlinter.cli  # noqa: F401  (configures import-linter, as lint-imports does)
import pytest
from importlinter.application.use_cases import lint_imports

ROOT = Path(__file__).parents[2]

#: A module breaking each contract: (contract name, module path, source).
STRAYS = [
    ("The controller uses routing only through the port", "controller/stray.py",
     "from canary.router import istio\n"),
    ("The controller uses routing only through the port", "controller/stray.py",
     "from canary.router.port import Router\n"),
    ("The decision core and the models do no I/O", "core/stray.py", "import httpx\n"),
    ("Only canary.kube talks to the Kubernetes API", "metrics/stray.py",
     "import kubernetes_asyncio\n"),
    ("The ports do not import each other", "router/stray.py",
     "from canary.metrics import queries\n"),
    ("Only the composition root builds the controller", "console/stray.py",
     "from canary.controller import controller\n"),
]


def lint(tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
         ) -> tuple[bool, str]:
    """What lint-imports does with the project's configuration, on the package copied to
    ``tree`` (first on the path, the imported canary set aside until the test ends);
    through its use case, as the command would also reconfigure the logging of the
    whole process."""
    monkeypatch.syspath_prepend(str(tree))
    monkeypatch.delitem(sys.modules, "canary", raising=False)
    passed = lint_imports(config_filename=str(ROOT / "pyproject.toml"), cache_dir=None,
                          no_logo=True)
    return passed, capsys.readouterr().out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "canary", tmp_path / "canary",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp_path


def test_the_package_as_it_is_keeps_every_contract(
        tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    passed, out = lint(tree, monkeypatch, capsys)
    assert passed and "BROKEN" not in out, out


@pytest.mark.parametrize(("contract", "path", "source"), STRAYS,
                         ids=[f"{path}:{source.strip()}" for _, path, source in STRAYS])
def test_a_stray_import_breaks_its_contract(
        tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        contract: str, path: str, source: str) -> None:
    (tree / "canary" / path).write_text(source)
    passed, out = lint(tree, monkeypatch, capsys)
    assert not passed, out
    broken = [line.removesuffix(" BROKEN") for line in out.splitlines()
              if line.endswith(" BROKEN")]
    assert broken == [contract], out
