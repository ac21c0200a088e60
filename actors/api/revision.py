"""The datastore's latest revision for consistent lists, one round trip shared by every list waiting for it.

A list without a version must see every write acknowledged before it was asked, whichever API actor
acknowledged it: the API actor reads the stream's last revision and waits for its watch cache to reach it
(Kubernetes' "consistent reads from cache" does the same with etcd's current revision). Reading it once per
list costs a JetStream round trip each; here the lists arriving while no read is pending share the next one.
A list that arrives while a read is already in flight cannot use that read's answer (it may predate the
list), so it joins the following read, which starts as soon as the current one ends: at most two reads are
ever outstanding however many lists arrive, and each list's revision is read after the list arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class SharedRevision:
    def __init__(self, fetch: Callable[[], Awaitable[int]]) -> None:
        self.fetch = fetch
        self.reads = 0
        self.asked = 0
        self._next: asyncio.Future[int] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def latest(self) -> int:
        """A revision read from the datastore after this call began."""
        self.asked += 1
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        future = self._next
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="latest-revision")
        return await asyncio.shield(future)

    async def _read(self) -> None:
        while self._next is not None:
            future, self._next = self._next, None
            self.reads += 1
            try:
                future.set_result(await self.fetch())
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as exc:
                future.set_exception(exc)
                future.exception()  # retrieved by its waiters; none may be left to do it
