"""Keeping alert addresses out of logs and events.

A chat webhook's URL is its credential: anyone who has it can post to the channel. The
notifier never logs one, but text it passes on (an httpx error, a response body echoing
the request) might contain it, and httpx itself logs every request's URL at INFO level.
:func:`redact_addresses` scrubs text canary emits; :class:`RedactingFilter` scrubs httpx's records.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from canary.redact import redact as replace_secrets

#: What replaces a secret or a URL.
REDACTED = "<redacted>"
#: Path and query segments at least this long are treated as tokens (Slack's are 24
#: characters, Discord's 68, a Teams Workflows signature 43).
_TOKEN_LENGTH = 16
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def variants(address: str) -> set[str]:
    """The parts of an address that must not be shown: the URL as written and as httpx
    normalises it, its path and query (receivers echo those), their long segments (the
    tokens), and a password in it (a proxy's credentials)."""
    address = address.strip()
    found = {address}
    with contextlib.suppress(httpx.InvalidURL, TypeError, ValueError):
        found.add(str(httpx.URL(address)))
    parts = urlsplit(address)
    if len(parts.path) > 1:
        found.add(parts.path)
        if parts.query:
            found.add(f"{parts.path}?{parts.query}")
    if parts.query:
        found.add(parts.query)
    found.update(piece for piece in re.split(r"[/?&=#]", f"{parts.path}?{parts.query}")
                 if len(piece) >= _TOKEN_LENGTH)
    with contextlib.suppress(ValueError):
        if parts.password:
            found.add(parts.password)
    return {v for v in found if v}


def redact_addresses(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secrets and without any URL at all."""
    return _URL.sub(REDACTED, replace_secrets(text, secrets, REDACTED))


class RedactingFilter(logging.Filter):
    """Rewrites standard-library records that contain a registered secret.

    Installed on httpx's loggers while a notifier runs: their INFO line for each request
    names the full URL. Records without a secret pass unchanged, so the webhooks' URLs
    (which are not secret) still show in those logs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, address: str) -> None:
        self.secrets |= variants(address)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            record.msg = redact_addresses(message, self.secrets)
            record.args = None
        return True
