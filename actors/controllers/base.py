"""What a controller is: it registers its informers and handlers, then reconciles keys.

Controllers follow the same shape: watch handlers only enqueue keys; ``reconcile(key)`` reads desired
and actual state from the informers' caches, calls a pure planning function, and executes the actions
through the API. Expectations (``expectations.Expectations``) stop a controller from acting twice on a
cache that has not yet seen its own writes; ``controllerref`` claims the objects an owner controls.

``QueueController`` is the wiring most controllers share: the context bound with a logger naming the
controller, one primary informer whose objects' keys are the work, the worker loop, and the primary's
handler (queue the key; on deletion ``forget`` what the controller kept about it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from protocol.objects import Obj, ref
from runtime.client import ApiClient
from runtime.events import EventRecorder
from runtime.informer import Informer
from runtime.informers import InformerFactory
from runtime.supervisor import Supervisor
from runtime.workqueue import WorkQueue, run_workers


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


class QueueController:
    """A controller whose work is the keys (``namespace/name``) of one primary kind's objects.

    A subclass sets ``name``, calls ``bind`` and ``watch_primary`` in its ``setup`` (registering the
    handlers it wants, ``on_primary`` or its own) and implements ``reconcile``."""

    name: str

    def __init__(self, *, workers: int) -> None:
        self.workers = workers
        self.queue = WorkQueue()
        self.running = False

    def bind(self, ctx: ControllerContext) -> None:
        """Keep the context, its client, and its logger bound to this controller's name."""
        self.ctx = ctx
        self.client = ctx.client
        self.log = ctx.log.bind(controller=self.name) if hasattr(ctx.log, "bind") else ctx.log

    def watch_primary(self, kind: str) -> Informer:
        """The informer of the kind whose keys are queued; ``run`` starts with every object it holds."""
        self.primary: Informer = self.ctx.informers.informer(kind)
        return self.primary

    def enqueue_all(self) -> None:
        for obj in self.primary.items():
            self.queue.add(ref(obj))

    async def run(self) -> None:
        self.enqueue_all()
        self.running = True
        try:
            await run_workers(self.queue, self.reconcile, workers=self.workers, log=self.log)
        finally:
            self.running = False
            self.queue.close()

    def on_primary(self, event: str, old: Obj | None, new: Obj | None) -> None:
        """Informer handler of the primary kind: queue the object's key, ``forget`` it when it went."""
        obj = new if new is not None else old
        if obj is None:
            return
        key = ref(obj)
        if event == "DELETED":
            self.forget(key)
        self.queue.add(key)

    def forget(self, key: str) -> None:
        """Drop what is kept about the object ``key`` (it was deleted); nothing by default."""

    async def reconcile(self, key: str) -> float | None:
        """Bring the object ``key`` to its desired state; seconds until it is looked at again, or None."""
        raise NotImplementedError
