"""The controller: watches, one worker per Canary, and the executor of decisions."""

from canary.controller.controller import Controller

__all__ = ["Controller"]
