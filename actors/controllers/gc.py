"""The garbage collector: deletes objects whose owners are gone and carries out foreground and orphan
deletion of owners (see ``gc_plan``).

The ownership graph (``gc_graph``) is built from informers of every kind but Event. Keys are
``Kind:namespace/name``. Caches decide only what to look at: before acting, the collector confirms
with live reads, so a stale cache never deletes anything:
- an owner absent from the graph is looked up through the API (NotFound, or found with another uid,
  means absent; found with the same uid means our cache lags) — an owner of a kind Shoal does not
  serve counts as present, since it cannot be checked;
- a dependent is read again and deleted with its resourceVersion as precondition, so one whose
  ownerReferences changed meanwhile is not deleted on old grounds;
- ownerReferences and finalizers are removed by read-modify-write updates pinned to the
  resourceVersion just read (a Conflict retries the key).
"""

from __future__ import annotations

import contextlib

from actors.controllers.base import ControllerContext
from actors.controllers.gc_graph import Graph, split_key
from actors.controllers.gc_plan import (
    Action,
    DeleteObject,
    Dependent,
    RemoveFinalizer,
    RemoveOwnerRefs,
    plan_dependent,
    plan_owner,
    without_finalizer,
    without_owners,
)
from actors.controllers.manager import register
from protocol.errors import BadRequest, NotFound
from protocol.kinds import KINDS
from protocol.objects import Obj, meta, namespace_of, uid_of
from runtime.client import kind_info
from runtime.informer import Informer
from runtime.workqueue import WorkQueue, run_workers

WATCHED_KINDS = tuple(k.kind for k in KINDS if k.kind != "Event")
"""Every kind that can own or be owned; Events are neither and are the most numerous."""


class GarbageCollector:
    name = "gc"

    def __init__(self) -> None:
        self.running = False
        self.queue = WorkQueue()
        self.graph = Graph()
        self.informers: dict[str, Informer] = {}
        self.deleted = 0
        self.orphaned = 0

    def setup(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.log = ctx.log.bind(controller=self.name)
        for kind in WATCHED_KINDS:
            informer = ctx.informers.informer(kind)
            informer.add_handler(self._on_change)
            self.informers[kind] = informer

    async def run(self) -> None:
        self.running = True
        await run_workers(self.queue, self.reconcile, workers=4, log=self.log)

    def _on_change(self, event: str, old: Obj | None, new: Obj | None) -> None:
        for key in self.graph.observe(event, old, new):
            self.queue.add(key)

    def _cached(self, key: str) -> Obj | None:
        kind, namespace, name = split_key(key)
        informer = self.informers.get(kind)
        if informer is None:
            return None
        return informer.get(f"{namespace}/{name}" if namespace else name)

    # -- reconcile ----------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        obj = self._cached(key)
        if obj is None:
            return None
        actions: list[Action] = []
        uid = uid_of(obj)
        dependents = [Dependent(d.key, d.uid, blocking=dict(d.refs).get(uid, False),
                                deleting=_deleting(self._cached(d.key)))
                      for d in self.graph.dependents_of(uid)]
        actions.extend(plan_owner(obj, key, dependents))
        owners = await self._owner_presence(obj)
        dependent_action = plan_dependent(obj, key, owners)
        if dependent_action is not None:
            actions.append(dependent_action)
        for action in actions:
            await self._execute(action)
        return None

    async def _owner_presence(self, obj: Obj) -> dict[str, bool]:
        present: dict[str, bool] = {}
        for owner in meta(obj).get("ownerReferences") or []:
            uid = str(owner.get("uid") or "")
            if not uid:
                continue
            present[uid] = uid in self.graph or await self._owner_exists(owner, namespace_of(obj))
        return present

    async def _owner_exists(self, owner: Obj, namespace: str | None) -> bool:
        try:
            info = kind_info(str(owner.get("kind", "")))
        except BadRequest:
            return True  # a kind we do not serve: cannot be checked, so never collected on its account
        try:
            live = await self.client.get(info, str(owner.get("name", "")), namespace if info.namespaced else None)
        except NotFound:
            return False
        return uid_of(live) == owner.get("uid")

    # -- executing ----------------------------------------------------------------------------------
    async def _live(self, key: str, uid: str) -> Obj | None:
        """The object as the API has it now, if it is still the one (same uid) we reasoned about."""
        kind, namespace, name = split_key(key)
        try:
            live = await self.client.get(kind, name, namespace)
        except NotFound:
            return None
        return live if uid_of(live) == uid else None

    async def _execute(self, action: Action) -> None:
        live = await self._live(action.key, action.uid)
        if live is None:
            return
        kind, namespace, name = split_key(action.key)
        if isinstance(action, DeleteObject):
            if action.owners_gone:  # decide again on the live object: its owners may have changed
                again = plan_dependent(live, action.key, await self._owner_presence(live))
                if not isinstance(again, DeleteObject):
                    if again is not None:
                        await self._execute(again)
                    return
            try:
                await self.client.delete(kind, name, namespace, propagation=action.propagation,
                                         resource_version=meta(live).get("resourceVersion"))
            except NotFound:
                return
            self.deleted += 1
            self.log.info("garbage collected", object=action.key, propagation=action.propagation)
        elif isinstance(action, RemoveOwnerRefs):
            updated = without_owners(live, action.owner_uids)
            if updated is not None:
                await self._update(updated)
                self.orphaned += 1
                self.log.info("removed owner references", object=action.key, owners=list(action.owner_uids))
        elif isinstance(action, RemoveFinalizer):
            updated = without_finalizer(live, action.finalizer)
            if updated is not None:
                await self._update(updated)
                self.log.info("removed finalizer", object=action.key, finalizer=action.finalizer)

    async def _update(self, obj: Obj) -> None:
        with contextlib.suppress(NotFound):
            await self.client.update(obj)


def _deleting(obj: Obj | None) -> bool:
    return obj is not None and bool(meta(obj).get("deletionTimestamp"))


register(GarbageCollector.name, GarbageCollector)
