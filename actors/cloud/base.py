"""What a cloud controller is: informers -> keyed work queue -> pure plan -> actions, over a provider.

The same shape as the controller manager's controllers (``actors/controllers/base.py``): ``setup``
registers informers and handlers that only enqueue keys, ``reconcile(key)`` reads the caches, asks
the provider what it must, calls its pure ``*_plan`` module and carries the actions out through the
API and the provider. ``run`` is started once every informer has synced.

A provider error is logged; it retries the key with back-off when ``retryable``, else the key is
dropped until its next event or resync (``guarded``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from actors.cloud.provider import CloudProvider, ProviderError
from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informers import InformerFactory
from runtime.workqueue import WorkQueue, run_workers

RESYNC = 30.0
"""Seconds after which a node and the route table are looked at again, events or not."""

WORKERS = 2
"""Concurrent reconciles per cloud controller."""

Reconcile = Callable[[str], Awaitable[float | None]]


@dataclass
class CloudContext:
    client: ApiClient
    informers: InformerFactory
    recorder: EventRecorder
    provider: CloudProvider
    log: Any
    resync: float = RESYNC
    counts: dict[str, int] = field(default_factory=dict)
    """What the controllers did, by name (``nodes_removed``, ``routes``...): the actor's health."""


class CloudController(Protocol):
    name: str

    def setup(self, ctx: CloudContext) -> None:
        """Create informers (through ``ctx.informers``) and register handlers. No I/O."""

    async def run(self) -> None:
        """Enqueue the initial keys and run the reconcile workers forever (after informers synced)."""


def guarded(reconcile: Reconcile, log: Any) -> Reconcile:
    """``reconcile`` with provider errors logged: retried when retryable, else dropped."""

    async def run(key: str) -> float | None:
        try:
            return await reconcile(key)
        except ProviderError as exc:
            log.warning("provider call failed", key=key, error=str(exc))
            if exc.retryable:
                raise
            return None

    return run


async def run_controller(queue: WorkQueue, reconcile: Reconcile, log: Any, *, workers: int = WORKERS) -> None:
    """Run ``reconcile`` over ``queue`` (guarded) until cancelled; the queue is closed afterwards."""
    try:
        await run_workers(queue, guarded(reconcile, log), workers=workers, log=log)
    finally:
        queue.close()
