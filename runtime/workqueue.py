"""A keyed work queue, as in Kubernetes controllers: duplicates collapse, a key is never processed by
two workers at once, failures are retried with per-key exponential back-off (and logged at most once a
second per process)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.cancel import stop_if_cancelled
from runtime.logs import Throttle

FAILURE_LOG = Throttle(1.0)
"""One per process: a hollow process runs thousands of queues that fail together when the API sheds load."""


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.05, max_delay: float = 30.0) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.base_delay = base_delay
        self.max_delay = max_delay

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: str) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        timer = self._timers.get(key)
        loop = asyncio.get_running_loop()
        if timer is not None and timer.when() <= loop.time() + delay:
            return  # an earlier retry is already due
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def retry(self, key: str) -> float:
        """Re-add ``key`` after its back-off; returns the delay chosen."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay: float = min(self.base_delay * (2**failures), self.max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        key = await self._queue.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


async def run_workers(queue: WorkQueue, reconcile: Callable[[str], Awaitable[float | None]], *,
                      workers: int, log: Any) -> None:
    """Process keys forever with ``workers`` concurrent workers.

    ``reconcile(key)`` returns None when done, or seconds after which to look at the key again.
    An exception retries the key with back-off.
    """

    async def worker() -> None:
        while True:
            key = await queue.get()
            try:
                stop_if_cancelled()  # never act on another key once asked to stop (runtime/cancel.py)
            except asyncio.CancelledError:
                queue.done(key)
                raise
            try:
                again = await reconcile(key)
                queue.forget(key)
                if again is not None:
                    queue.add_after(key, again)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = queue.retry(key)
                FAILURE_LOG.warning(log, "reconcile failed; will retry", key=key, error=repr(exc),
                                    retry_in=round(delay, 3))
            finally:
                queue.done(key)

    async with asyncio.TaskGroup() as group:
        for i in range(workers):
            group.create_task(worker(), name=f"worker-{i}")
