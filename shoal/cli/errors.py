"""Errors of the admin tool and how every error is shown: one line on stderr, never a traceback.

Errors the server answered with (``protocol.errors.ShoalError``) read like kubectl's:
``Error from server (NotFound): pods "web" not found``. Local problems read ``error: ...``.
"""

from __future__ import annotations

import sys
from typing import TextIO

from protocol.errors import ShoalError


class CliError(Exception):
    """A local problem (bad file, unknown kind, unreachable cluster): exit status 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    """The command line itself is wrong: exit status 2, as argparse uses."""

    exit_code = 2


def format_error(exc: BaseException, context: str | None = None) -> str:
    """The one line describing ``exc``; ``context`` (``error when applying pod/web``) goes first."""
    prefix = f"{context}: " if context else ""
    if isinstance(exc, ShoalError):
        return f"Error from server ({exc.code}): {prefix}{exc.message}"
    if isinstance(exc, CliError):
        return f"error: {prefix}{exc.message}"
    return f"error: {prefix}{exc}"


def report(exc: BaseException, context: str | None = None, *, stream: TextIO | None = None) -> None:
    print(format_error(exc, context), file=stream or sys.stderr, flush=True)
