"""Crash-loop and image-pull back-off arithmetic, as Kubernetes' ``flowcontrol.Backoff``. Pure.

A container that exits is restarted at once the first time; each later restart waits ``delay`` seconds
after the container finished, ``delay`` starting at ``base`` and doubling up to ``cap``. A container that
ran for ``reset_after`` seconds (10 min) before exiting starts a fresh history, as does one whose entry
was not touched for ``2 * cap`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffEntry:
    """The current back-off of one container (or one image pull): the delay to wait, set at ``updated``."""

    delay: float
    updated: float


def expired(entry: BackoffEntry | None, now: float, cap: float) -> bool:
    return entry is None or now - entry.updated > 2 * cap


def remaining(entry: BackoffEntry | None, since: float, now: float, cap: float) -> float:
    """Seconds still to wait before acting again on an event at ``since`` (0: go ahead)."""
    if entry is None or expired(entry, since, cap):
        return 0.0
    return max(0.0, since + entry.delay - now)


def next_entry(
    entry: BackoffEntry | None,
    now: float,
    *,
    base: float,
    cap: float,
    ran_for: float | None = None,
    reset_after: float = 600.0,
) -> BackoffEntry:
    """The entry after one more restart at ``now``; ``ran_for`` is how long the last attempt ran."""
    fresh = expired(entry, now, cap) or (ran_for is not None and ran_for >= reset_after)
    if entry is None or fresh:
        return BackoffEntry(delay=base, updated=now)
    return BackoffEntry(delay=min(entry.delay * 2, cap), updated=now)
