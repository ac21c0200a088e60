"""resourceVersion as clients send it, parsed in one place with Kubernetes' meanings.

- On a write (update, status, patch, delete, bind): absent, ``""`` or ``0`` = no precondition; ``N`` = the
  write applies only if the object is still at version N (else Conflict).
- On a list: absent or ``""`` = a consistent read (every write acknowledged before the list is in it);
  ``"0"`` = any version: what the API actor's cache holds now; ``N`` = at least version N.
- On a watch: absent, ``""`` or ``"0"`` = the current objects as ADDED events, then changes; ``N`` = every
  change after version N (Expired when N is older than the servers' window).

A version is a non-negative integer or its decimal string; anything else is BadRequest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from protocol.errors import BadRequest


def _parse(value: Any) -> int | None:
    """None for absent/empty, else a non-negative integer (BadRequest otherwise)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRequest(f"resourceVersion must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"resourceVersion must be an integer, got {value!r}") from None
    if number < 0:
        raise BadRequest(f"resourceVersion must not be negative, got {value!r}")
    return number


def write_precondition(value: Any) -> int | None:
    """The version a write is conditioned on, or None for an unconditional write."""
    number = _parse(value)
    return number or None


class ReadFrom(StrEnum):
    CONSISTENT = "consistent"
    """Absent: the latest state (list: wait until the cache holds every acknowledged write)."""
    ANY = "any"
    """``"0"``: whatever version is at hand."""
    EXACT = "exact"
    """``N``: list at least version N; watch every change after N."""


@dataclass(frozen=True, slots=True)
class ReadVersion:
    read_from: ReadFrom
    version: int = 0


def read_version(value: Any) -> ReadVersion:
    """The version a list or watch asks for."""
    number = _parse(value)
    if number is None:
        return ReadVersion(ReadFrom.CONSISTENT)
    if number == 0:
        return ReadVersion(ReadFrom.ANY)
    return ReadVersion(ReadFrom.EXACT, number)
