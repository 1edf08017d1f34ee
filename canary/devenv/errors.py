"""Errors of the local environment."""

from __future__ import annotations

from canary.errors import CanaryError


class DevenvError(CanaryError):
    """Something about the local environment went wrong."""


class NotInstalled(DevenvError):
    """A binary the environment needs is missing; ``canary devenv install`` builds it."""


class InstallFailed(DevenvError):
    """A build or download step failed; the message points at its log."""


class ComponentFailed(DevenvError):
    """A component did not start or become ready in time.

    The message names the component and carries the tail of its log; ``log_path`` is the
    whole log, which is kept.
    """

    def __init__(self, component: str, reason: str, log_path: str | None = None,
                 log_tail: str = "") -> None:
        text = f"{component}: {reason}"
        if log_path:
            text += f"\n  log: {log_path}"
        if log_tail:
            text += "\n  last lines:\n" + "\n".join(f"    {line}" for line in log_tail.splitlines())
        super().__init__(text)
        self.component = component
        self.log_path = log_path
