"""Reading ``hey`` command lines, so hooks written for Flagger's load tester keep working.

Only the load itself is carried out (in-process, with httpx): a ``hey`` command line is
never executed, so it needs no ``--allow-commands``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from canary.errors import ConfigError
from canary.models.base import parse_duration

#: Flags that take a value, as ``hey`` spells them.
_VALUED = {"n", "c", "q", "z", "m", "H", "t", "d", "T", "A", "host", "a", "o", "x", "D"}
#: Boolean flags accepted (and ignored: they tune hey's own HTTP client).
_IGNORED_SWITCHES = {"disable-compression", "disable-keepalive", "disable-redirects", "h2"}


@dataclass(frozen=True)
class LoadSpec:
    """One load run. Defaults are hey's: 200 requests over 50 workers, no rate limit."""

    url: str
    requests: int = 200
    concurrency: int = 50
    #: Requests per second per worker (hey's ``-q``); None: as fast as possible.
    rate_per_worker: float | None = None
    #: Seconds to run (hey's ``-z``); when set, ``requests`` is ignored.
    duration: float | None = None
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    body: str | None = None
    #: Seconds before one request is given up (hey's ``-t``, default 20).
    timeout: float = 20.0

    @property
    def total_rate(self) -> float | None:
        return None if self.rate_per_worker is None else self.rate_per_worker * self.concurrency


def parse_hey(command: str) -> LoadSpec:
    """The load a ``hey ...`` command line describes; ConfigError naming the flag if not."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"cannot read the command: {exc}") from None
    if not words or words[0].rsplit("/", 1)[-1] != "hey":
        raise ConfigError("only `hey` commands are run by the load tester "
                          f"(got {words[0] if words else 'nothing'!r})")
    values: dict[str, list[str]] = {}
    url: str | None = None
    rest = words[1:]
    while rest:
        word = rest.pop(0)
        if not word.startswith("-") or word == "-":
            if url is not None:
                raise ConfigError(f"unexpected argument {word!r} after the URL {url!r}")
            url = word
            continue
        name, _, inline = word.lstrip("-").partition("=")
        if name in _IGNORED_SWITCHES:
            continue
        if name not in _VALUED:
            raise ConfigError(f"hey flag -{name} is not supported")
        if not inline:
            if not rest:
                raise ConfigError(f"hey flag -{name} needs a value")
            inline = rest.pop(0)
        values.setdefault(name, []).append(inline)
    if url is None:
        raise ConfigError("the hey command names no URL")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the URL {url!r} must start with http:// or https://")
    return _spec(url, values)


def _spec(url: str, values: dict[str, list[str]]) -> LoadSpec:
    def last(name: str) -> str | None:
        return values[name][-1] if name in values else None

    def number(name: str, text: str | None, kind: type[int] | type[float]) -> float | None:
        if text is None:
            return None
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(f"hey flag -{name}: {text!r} is not a number") from None
        if value <= 0:
            raise ConfigError(f"hey flag -{name} must be positive (got {text})")
        return value

    for unsupported in ("D", "o", "x", "a"):
        if unsupported in values:
            raise ConfigError(f"hey flag -{unsupported} is not supported")
    duration = None
    if (text := last("z")) is not None:
        try:
            duration = parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"hey flag -z: {exc}") from None
    headers = []
    for header in values.get("H", []):
        key, sep, value = header.partition(":")
        if not sep or not key.strip():
            raise ConfigError(f"hey flag -H: {header!r} is not 'Name: value'")
        headers.append((key.strip(), value.strip()))
    for flag, name in (("T", "Content-Type"), ("A", "Accept"), ("host", "Host")):
        if (text := last(flag)) is not None:
            headers.append((name, text))
    concurrency = int(number("c", last("c"), int) or 50)
    requests = int(number("n", last("n"), int) or 200)
    if duration is None and requests < concurrency:
        raise ConfigError(f"hey flag -n ({requests}) cannot be less than -c ({concurrency})")
    return LoadSpec(
        url=url, requests=requests, concurrency=concurrency,
        rate_per_worker=number("q", last("q"), float), duration=duration,
        method=(last("m") or "GET").upper(), headers=tuple(headers), body=last("d"),
        timeout=float(number("t", last("t"), float) or 20.0))
