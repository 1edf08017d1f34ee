"""Logging set-up: structlog, JSON lines by default, one line per event."""

from __future__ import annotations

import logging
import sys

import structlog

#: The levels and formats a command's --log-level and --log-format accept.
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "console")


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route structlog (and the standard library's logging) to stderr.

    ``fmt`` is ``json`` (for machines and log pipelines) or ``console`` (for people).
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r} ({' or '.join(LOG_FORMATS)})")
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr,
                        format="%(name)s %(levelname)s %(message)s")
