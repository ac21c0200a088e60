"""Holes in the watch cache's feed: revisions the ordered consumer passed over.

The KV stream keeps one message per key, so a revision superseded before the feed read it is gone: the
feed jumps from revision ``r`` to ``r + k``. Which key each missing revision belonged to is known only
when that key's next write arrives (its ``Nats-Expected-Last-Subject-Sequence`` names the revision it
replaced). Until every hole is accounted for, no watch may be told it is current past it: the API actor
holds its watch messages and bookmarks while ``held``. A hole the feed never names (the superseding write
itself superseded, or the feed caught up without it) is reported by ``unattributed``: every watch that may
have missed it ends with ``Expired``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_HOLES = 10_000
"""Holes remembered at once; past this the feed is treated as having skipped everything up to now."""
HOLD_SECONDS = 2.0
"""How long watches wait for a hole to be named before every watch that may have missed it expires."""


class FeedGaps:
    def __init__(self, *, max_holes: int = MAX_HOLES, hold: float = HOLD_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_holes = max_holes
        self.hold = hold
        self.clock = clock
        self.last: int | None = None
        """The last revision the feed delivered since tracking started (None before)."""
        self.holes: set[int] = set()
        self.overflow_through = 0
        """Set when more than ``max_holes`` were open: everything up to it counts as unattributed."""
        self.since = 0.0
        """When the oldest open hole appeared."""
        self.found = 0
        self.attributed = 0

    def start(self, rev: int) -> None:
        """The cache is whole at ``rev``: holes after it count."""
        self.last = rev

    @property
    def held(self) -> bool:
        return bool(self.holes) or self.overflow_through > 0

    def see(self, rev: int, replaced: int | None) -> None:
        """The feed delivered ``rev``, a write that replaced revision ``replaced`` of its key."""
        if self.last is None:
            return
        if rev > self.last + 1:
            missing = rev - self.last - 1
            self.found += missing
            if not self.held:
                self.since = self.clock()
            if len(self.holes) + missing > self.max_holes:
                self.overflow_through = rev - 1
                self.holes.clear()
            else:
                self.holes.update(range(self.last + 1, rev))
        self.last = max(self.last, rev)
        if replaced is not None and replaced in self.holes:
            self.holes.discard(replaced)
            self.attributed += 1

    def unattributed(self, pending: int) -> int | None:
        """The revision through which holes stay unnamed and must expire every watch, or None to wait.

        Gives up on the open holes when the feed has caught up (``pending == 0``: every write that could
        name them was delivered), when they are older than ``hold``, or after an overflow."""
        if not self.held:
            return None
        if self.overflow_through == 0 and pending > 0 and self.clock() - self.since < self.hold:
            return None
        through = max(self.overflow_through, max(self.holes, default=0))
        self.holes.clear()
        self.overflow_through = 0
        return through
