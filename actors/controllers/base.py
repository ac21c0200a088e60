"""What a controller is: it registers its informers and handlers, then reconciles keys.

Controllers follow the same shape: watch handlers only enqueue keys; ``reconcile(key)`` reads desired
and actual state from the informers' caches, calls a pure planning function, and executes the actions
through the API. Expectations (see ``Expectations``) stop a controller from acting twice on a cache
that has not yet seen its own writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informers import InformerFactory
from runtime.supervisor import Supervisor


@dataclass
class ControllerContext:
    client: ApiClient
    informers: InformerFactory
    recorder: EventRecorder
    supervisor: Supervisor
    log: Any
    options: dict[str, Any] = field(default_factory=dict)
    """Per-controller settings from the command line (grace periods, eviction rate, ...)."""


class Controller(Protocol):
    name: str

    def setup(self, ctx: ControllerContext) -> None:
        """Create informers (through ``ctx.informers``) and register handlers. No I/O."""

    async def run(self) -> None:
        """Run the reconcile workers forever (started after every informer has synced)."""


class Expectations:
    """Counts of creations/deletions a controller has asked for and not yet seen in its cache."""

    def __init__(self, ttl: float = 300.0) -> None:
        self._pending: dict[str, tuple[int, int, float]] = {}
        self.ttl = ttl

    def expect(self, key: str, adds: int = 0, deletes: int = 0) -> None:
        a, d, _ = self._pending.get(key, (0, 0, 0.0))
        self._pending[key] = (a + adds, d + deletes, time.monotonic())

    def observed_add(self, key: str) -> None:
        self._lower(key, 1, 0)

    def observed_delete(self, key: str) -> None:
        self._lower(key, 0, 1)

    def _lower(self, key: str, adds: int, deletes: int) -> None:
        if key in self._pending:
            a, d, t = self._pending[key]
            self._pending[key] = (max(0, a - adds), max(0, d - deletes), t)

    def satisfied(self, key: str) -> bool:
        entry = self._pending.get(key)
        if entry is None:
            return True
        a, d, t = entry
        if (a <= 0 and d <= 0) or time.monotonic() - t > self.ttl:
            self._pending.pop(key, None)
            return True
        return False

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)
