"""The scheduling queue, after kube-scheduler's: an active heap, a back-off map and an unschedulable map.

* active: pods to try now, highest ``spec.priority`` first, then oldest first; a key is queued once.
* back-off: pods that failed recently wait ``initial * 2**(attempts-1)`` seconds (capped) before retrying.
* unschedulable: pods that fit nowhere wait for a cluster change (``move_all``: a node came or changed,
  a pod went away) or, at the latest, ``unschedulable_timeout`` seconds (``flush``).
The clock is injected so the timing rules are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable


class SchedulingQueue:
    def __init__(self, *, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 unschedulable_timeout: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self.clock = clock
        self._heap: list[tuple[int, int, str]] = []
        self._active: set[str] = set()
        self._backoff: dict[str, float] = {}
        """key -> when it may be tried again."""
        self._unschedulable: dict[str, float] = {}
        """key -> since when."""
        self._attempts: dict[str, tuple[int, float]] = {}
        """key -> (failed attempts, time of the last one)."""
        self._priority: dict[str, int] = {}
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()

    # -- sizes ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._active) + len(self._backoff) + len(self._unschedulable)

    def __contains__(self, key: str) -> bool:
        return key in self._active or key in self._backoff or key in self._unschedulable

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def backing_off(self) -> int:
        return len(self._backoff)

    @property
    def unschedulable(self) -> int:
        return len(self._unschedulable)

    def state(self, key: str) -> str | None:
        if key in self._active:
            return "active"
        if key in self._backoff:
            return "backoff"
        if key in self._unschedulable:
            return "unschedulable"
        return None

    # -- adding ---------------------------------------------------------------------------
    def _activate(self, key: str) -> None:
        self._backoff.pop(key, None)
        self._unschedulable.pop(key, None)
        if key not in self._active:
            self._active.add(key)
            heapq.heappush(self._heap, (-self._priority.get(key, 0), next(self._seq), key))
            self._wakeup.set()

    def _backoff_until(self, key: str) -> float:
        attempts, last = self._attempts.get(key, (0, 0.0))
        if attempts == 0:
            return 0.0
        delay: float = min(self.initial_backoff * 2 ** (attempts - 1), self.max_backoff)
        return last + delay

    def _requeue(self, key: str) -> None:
        """Active when its back-off is over, else into back-off."""
        due = self._backoff_until(key)
        if due <= self.clock():
            self._activate(key)
        else:
            self._unschedulable.pop(key, None)
            self._backoff[key] = due

    def add(self, key: str, priority: int = 0) -> None:
        """A new pod, or one seen again: schedule it (after any back-off it still owes)."""
        self._priority[key] = priority
        if key in self._active or key in self._backoff:
            return
        self._requeue(key)

    def update(self, key: str, priority: int = 0) -> None:
        """The pod's spec or labels changed: an unschedulable pod may fit now."""
        self._priority[key] = priority
        if key not in self._active and key not in self._backoff:
            self._requeue(key)

    def delete(self, key: str) -> None:
        self._active.discard(key)  # its heap entry is skipped when popped
        self._backoff.pop(key, None)
        self._unschedulable.pop(key, None)
        self._attempts.pop(key, None)
        self._priority.pop(key, None)

    def _failed(self, key: str) -> None:
        attempts, _ = self._attempts.get(key, (0, 0.0))
        self._attempts[key] = (attempts + 1, self.clock())

    def mark_unschedulable(self, key: str) -> None:
        """Nothing fits: wait for a cluster change or the timeout."""
        self._failed(key)
        self._active.discard(key)
        self._backoff.pop(key, None)
        self._unschedulable[key] = self.clock()

    def backoff(self, key: str) -> None:
        """A transient failure (bind error): retry after the pod's back-off."""
        self._failed(key)
        self._active.discard(key)
        self._unschedulable.pop(key, None)
        self._backoff[key] = self._backoff_until(key)

    def scheduled(self, key: str) -> None:
        """The pod is placed: forget its failures (it stays out of the queue)."""
        self._attempts.pop(key, None)

    # -- moving ---------------------------------------------------------------------------
    def move_all(self) -> int:
        """The cluster changed: every unschedulable pod gets another try (after its back-off)."""
        keys = list(self._unschedulable)
        for key in keys:
            self._requeue(key)
        return len(keys)

    def flush(self) -> None:
        """Back-offs that are over become active; pods unschedulable for too long are retried."""
        now = self.clock()
        for key in [k for k, due in self._backoff.items() if due <= now]:
            self._activate(key)
        timeout = self.unschedulable_timeout
        for key in [k for k, since in self._unschedulable.items() if now - since >= timeout]:
            self._requeue(key)

    # -- taking ---------------------------------------------------------------------------
    def pop_nowait(self) -> str | None:
        while self._heap:
            _, _, key = heapq.heappop(self._heap)
            if key in self._active:
                self._active.discard(key)
                return key
        return None

    async def pop(self) -> str:
        while True:
            key = self.pop_nowait()
            if key is not None:
                return key
            self._wakeup.clear()
            await self._wakeup.wait()
