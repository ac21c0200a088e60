"""How many watches each user holds open through this gateway.

The API actors limit the watches of one NATS connection (500 not pinned to a node, ``actors/api/server.py``)
and a gateway's one connection carries the watches of all its clients: counted only there, one client with
a valid token could open them all and every other user's watch would be refused. The gateway is a
multiplexing client, so it counts per user (the authenticated name: a token's user, a certificate's common
name) and refuses a user's watch beyond ``limit`` with ``TooManyRequests`` (429, retry after closing some), as
the API actor answers a connection. The API's per-connection limit stays as it is, behind this one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from protocol.errors import TooManyRequests

WATCHES_PER_USER = 100
"""A user's open watches through one gateway: a fifth of the API's 500 per connection, so no one user takes
the gateway's share; a console tab holds 8 at most (the workloads view), kubectl one per ``-w``."""


class WatchSlots:
    def __init__(self, limit: int = WATCHES_PER_USER) -> None:
        if limit < 1:
            raise ValueError(f"a user's watch limit must be at least 1, not {limit}")
        self.limit = limit
        self.open: dict[str, int] = {}

    @contextlib.contextmanager
    def hold(self, user: str) -> Iterator[None]:
        """One of ``user``'s slots for the ``with`` block, or ``TooManyRequests`` when all are taken."""
        held = self.open.get(user, 0)
        if held >= self.limit:
            raise TooManyRequests(f"user {user!r} has {self.limit} watches open through this gateway already; "
                                  "close some first", {"limit": self.limit})
        self.open[user] = held + 1
        try:
            yield
        finally:
            left = self.open.get(user, 1) - 1
            if left > 0:
                self.open[user] = left
            else:
                self.open.pop(user, None)
