"""Command-line flags that can also be set with environment variables.

Each flag ``--some-flag`` of a command has the variable ``<PREFIX>SOME_FLAG``; a flag given
on the command line wins, then a variable that is set and not empty, then the default.
Defaults are applied, and every value checked, when the values are read (not by
argparse, which never checks a default), so that an error can name where a bad value came
from: ``canary: error: CANARY_LOG_LEVEL: 'verbose' is not one of ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from canary.errors import ConfigError
from canary.models.base import parse_duration


class Flags:
    """The flags of one command: their variables' ``prefix`` and their ``defaults``."""

    def __init__(self, prefix: str, defaults: Mapping[str, str]) -> None:
        self.prefix = prefix
        self.defaults = dict(defaults)

    def env_var(self, flag: str) -> str:
        """The environment variable of ``--flag``: the prefix + the flag in upper snake
        case."""
        return self.prefix + flag.upper().replace("-", "_")

    def option(self, group: Any, flag: str, help_text: str, **kwargs: Any) -> None:
        """A flag with a value; its help names its variable."""
        group.add_argument(f"--{flag}", default=None,
                           help=f"{help_text} [env {self.env_var(flag)}]", **kwargs)

    def switch(self, group: Any, flag: str, help_text: str) -> None:
        """An on/off flag (``--flag`` / ``--no-flag``); its variable reads true or false."""
        group.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                           help=f"{help_text} [env {self.env_var(flag)}: true or false]")

    def values(self, args: argparse.Namespace) -> Values:
        return Values(self, args)


class Values:
    """Each flag's text: from the command line, else its environment variable (when set
    and not empty), else its default; with the name of where it came from, which every
    error message starts with."""

    def __init__(self, flags: Flags, args: argparse.Namespace) -> None:
        self.flags = flags
        self.args = args

    def __call__(self, flag: str) -> tuple[str, str]:
        given = getattr(self.args, flag.replace("-", "_"))
        if given is not None:
            return str(given), f"--{flag}"
        text = os.environ.get(self.flags.env_var(flag))
        if text:
            return text, self.flags.env_var(flag)
        return self.flags.defaults.get(flag, ""), f"--{flag}"

    def switch(self, flag: str) -> bool:
        """A boolean flag, else its environment variable, else off."""
        given = getattr(self.args, flag.replace("-", "_"))
        if given is not None:
            return bool(given)
        variable = self.flags.env_var(flag)
        text = os.environ.get(variable)
        if text is None or text == "":
            return False
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{variable}: {text!r} is not true or false")

    def checked(self, flag: str, check: Callable[[str], object]) -> str | None:
        """The text, or None when empty; ConfigError naming its source when ``check``
        raises ValueError."""
        text, source = self(flag)
        if not text:
            return None
        with named(source):
            check(text)
        return text

    def duration(self, flag: str) -> float:
        text, source = self(flag)
        with named(source):
            return parse_duration(text)

    def count(self, flag: str) -> int:
        """A whole number, 0 or more."""
        text, source = self(flag)
        if re.fullmatch(r"[0-9]+", text.strip()) is None:
            raise ConfigError(f"{source}: {text!r} is not a whole number, 0 or more")
        return int(text)

    def choice(self, flag: str, allowed: tuple[str, ...]) -> str:
        text, source = self(flag)
        if text not in allowed:
            raise ConfigError(f"{source}: {text!r} is not one of {', '.join(allowed)}")
        return text

    def items(self, flag: str, check: Callable[[str], object]) -> tuple[str, ...]:
        """A comma-separated list, each item checked."""
        text, source = self(flag)
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        with named(source):
            for item in items:
                check(item)
        return items


@contextlib.contextmanager
def named(source: str | None) -> Iterator[None]:
    """A ValueError raised inside becomes a one-line ConfigError, starting with
    ``source`` (the flag or variable the bad value came from) when one is given."""
    try:
        yield
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
