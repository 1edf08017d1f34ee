"""Every exception canary defines derives from CanaryError, and the tree drawn in
canary/errors.py is the tree in the code."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest

import canary
from canary import errors
from canary.errors import CanaryError

#: Exceptions defined in canary that deliberately do not derive from CanaryError, with why.
NOT_CANARY_ERRORS: dict[str, str] = {}

_BRANCH = re.compile(r"[├└]── ")


def modules() -> list[ModuleType]:
    """Every module of the package; ``__main__`` modules run a command when imported."""
    return [importlib.import_module(info.name)
            for info in pkgutil.walk_packages(canary.__path__, "canary.")
            if not info.name.endswith("__main__")]


def exception_classes() -> list[type[BaseException]]:
    """The exception classes defined (not just imported) in canary's modules."""
    return [value for module in modules() for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, BaseException)
            and value.__module__ == module.__name__]


def drawn_tree(doc: str) -> dict[str, str]:
    """Class name -> parent name, as the docstring's drawing shows them."""
    root_line = next(line for line in doc.splitlines() if line.strip() == "CanaryError")
    root_column = root_line.index("CanaryError")
    parents: dict[str, str] = {}
    stack = ["CanaryError"]
    for line in doc.splitlines():
        branch = _BRANCH.search(line)
        if branch is None:
            continue
        depth = (branch.start() - root_column) // 4 + 1
        column = re.split(r"\s{2,}", line[branch.end():].strip())[0]
        names = [re.sub(r"\(.*?\)", "", part).strip().rsplit(".", 1)[-1]
                 for part in column.split(",")]
        del stack[depth:]
        for name in filter(None, names):
            parents[name] = stack[depth - 1]
        stack.append(names[-1])
    return parents


class TestEveryExceptionIsACanaryError:
    def test_the_package_defines_exceptions(self) -> None:
        assert CanaryError in exception_classes()

    @pytest.mark.parametrize("cls", exception_classes(),
                             ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
    def test_derives_from_canary_error(self, cls: type[BaseException]) -> None:
        if cls.__name__ in NOT_CANARY_ERRORS:
            return
        assert issubclass(cls, CanaryError), \
            f"{cls.__module__}.{cls.__name__} should derive from canary.errors.CanaryError"


class TestTheDrawingMatchesTheCode:
    def test_every_exception_is_drawn_under_its_parent(self) -> None:
        drawn = drawn_tree(errors.__doc__ or "")
        actual = {cls.__name__: next(base.__name__ for base in cls.__bases__
                                     if issubclass(base, CanaryError))
                  for cls in exception_classes()
                  if issubclass(cls, CanaryError) and cls is not CanaryError}
        assert drawn == actual

    def test_the_reader_follows_depth_and_lists(self) -> None:
        doc = """
            CanaryError
            ├── a.B            text, with a comma
            │   └── C (1), D (2)
            │                  more text
            └── E
        """
        assert drawn_tree(doc) == {"B": "CanaryError", "C": "B", "D": "B", "E": "CanaryError"}
