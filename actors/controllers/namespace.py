"""The namespace controller: empties a terminating namespace, then lets the API complete its deletion.

A deleted Namespace keeps existing with ``deletionTimestamp`` and phase Terminating while
``spec.finalizers`` holds ``kubernetes``. Each pass lists every namespaced kind in it (live lists, not
caches: the decision to finalize must not rest on a stale view), deletes what is not yet being deleted
(background propagation, default grace), writes the ``NamespaceContentRemaining`` and
``NamespaceFinalizersRemaining`` conditions, and looks again after a back-off while anything remains.
When nothing is left it removes ``kubernetes`` from ``spec.finalizers`` with an update; the API then
deletes the namespace (or waits for other finalizers, such as the garbage collector's).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable

from actors.controllers.base import ControllerContext
from actors.controllers.manager import register
from actors.controllers.namespace_plan import NAMESPACED_KINDS, finalized, plan, status_with_conditions
from protocol.errors import NotFound
from protocol.objects import Obj, is_deleting, name_of
from runtime.workqueue import WorkQueue, run_workers

MAX_RECHECK = 5.0


class NamespaceController:
    name = "namespace"

    def __init__(self, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.wall_clock = wall_clock
        self.running = False
        self.queue = WorkQueue()
        self._passes: dict[str, int] = {}

    def setup(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.log = ctx.log.bind(controller=self.name)
        self.namespaces = ctx.informers.informer("Namespace")
        self.namespaces.add_handler(self._on_namespace)

    async def run(self) -> None:
        self.running = True
        await run_workers(self.queue, self.reconcile, workers=2, log=self.log)

    def _on_namespace(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        if event == "DELETED":
            self._passes.pop(name_of(obj), None)
        elif is_deleting(obj):
            self.queue.add(name_of(obj))

    async def reconcile(self, key: str) -> float | None:
        namespace = self.namespaces.get(key)
        if namespace is None or not is_deleting(namespace):
            return None
        contents = {info.kind: (await self.client.list(info, key)).items for info in NAMESPACED_KINDS}
        decision = plan(namespace, contents)
        if decision.finalize:
            try:
                await self.client.update(finalized(namespace))
            except NotFound:
                return None
            self.log.info("namespace emptied; finalized", namespace=key)
            self._passes.pop(key, None)
            return None
        if not decision.remaining:
            return None  # not ours to finalize (no "kubernetes" finalizer)
        passes = self._passes.get(key, 0)
        self._passes[key] = passes + 1
        if passes == 0:
            await self.ctx.recorder.record(namespace, "Normal", "NamespaceDeletionStarted",
                                           f"Deleting the contents of namespace {key}")
        for kind, name in decision.deletes:
            with contextlib.suppress(NotFound):
                await self.client.delete(kind, name, key)
        status = status_with_conditions(namespace, decision, self.wall_clock())
        if status is not None:
            with contextlib.suppress(NotFound):
                await self.client.update_status({**copy.deepcopy(namespace), "status": status})
        return min(0.25 * 2.0 ** min(passes, 5), MAX_RECHECK)


register(NamespaceController.name, NamespaceController)
