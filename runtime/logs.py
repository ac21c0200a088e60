"""structlog set-up: JSON lines (``--log-format json``) or readable console output, one per process."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


def get_logger(**bound: Any) -> Any:
    """A logger bound to ``actor``, ``node`` and whatever else every line should carry."""
    return structlog.get_logger().bind(**bound)


class Throttle:
    """At most one line per ``every`` seconds for a message that can come in storms (an overloaded API
    actor's slow requests, every kubelet of a hollow process failing the same way): ``allow()`` returns
    None to stay silent, or how many lines were held back since the last one (for that line to say)."""

    def __init__(self, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last = float("-inf")
        self._held = 0

    def allow(self) -> int | None:
        now = self.clock()
        if now - self._last < self.every:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held

    def warning(self, log: Any, event: str, **fields: Any) -> None:
        """``log.warning(event, **fields)`` unless throttled, the line saying how many were held back
        (``not_logged``); a None ``log`` still counts."""
        held = self.allow()
        if held is not None and log is not None:
            log.warning(event, **fields, not_logged=held)
