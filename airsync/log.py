"""Structured logging setup (structlog).

JSON lines when stderr is not a terminal (journald, files, CI), readable key=value lines on a
terminal. Under systemd (``JOURNAL_STREAM`` set) each JSON line is prefixed with the syslog
priority (``<3>`` for errors) so journald files it at the right level.
"""

from __future__ import annotations

import logging
import os
import sys

from airsync.imports import deferred, hidden

_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}



def _import_structlog():  # noqa: ANN202
    """structlog, imported without rich and asyncio.

    structlog's console renderer and tracebacks import rich (and through it pygments) whenever it
    is installed, for pretty exceptions airsync never prints: about 30 ms of every command's
    start-up, a fifth of a small mirror job's. Hidden only while structlog is first imported
    (structlog falls back to plain tracebacks); the progress display still imports rich itself.
    Its stdlib and native-logger modules import asyncio (14 ms) for async logging methods airsync
    never calls: they get a stand-in that would import asyncio if one ever were.
    """
    with hidden("rich"), deferred("asyncio"):
        import structlog
    return structlog


def setup(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog once for the process. ``fmt``: auto, json or console."""
    structlog = _import_structlog()  # here, not at the top: commands that never log skip its import cost
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    processors: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if os.environ.get("JOURNAL_STREAM"):
            processors.append(_prefix_priority)
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _prefix_priority(_logger, method_name, rendered: str) -> str:
    return f"<{_PRIORITY.get(method_name, 6)}>{rendered}"
