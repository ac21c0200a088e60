"""Informers: a local, always-current copy of the objects of one kind, kept by list + resumable watch.

Handlers are called with (event, old, new) for every change and must only enqueue keys (reconcile by
key, level-triggered). An object that stops matching the informer's selectors (a pending pod that
gets bound, seen by a ``spec.nodeName=`` informer) arrives as DELETED carrying its new state.
On ``Expired`` the informer lists again and reports the differences, so a handler never misses a
change, only intermediate states.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from protocol.errors import Expired, ShoalError
from protocol.kinds import KindInfo
from protocol.objects import Obj, ref, resource_version
from runtime.cancel import stop_if_cancelled
from runtime.client import ApiClient, kind_info
from runtime.logs import Throttle

FAILURE_LOG = Throttle(1.0)
"""One per process: thousands of hollow kubelets' informers fail together when the API sheds load."""

Handler = Callable[[str, Obj | None, Obj | None], None]
"""(event, old, new): event is ADDED, MODIFIED or DELETED."""


class Reflector:
    """Kubernetes' reflector: list, then watch from the list's version, for ever. What a list and a change do
    with the objects is the subclass's (``_relist``, ``apply``): an informer keeps them, others keep less."""

    relist_on_error = False
    """Whether an unexpected exception (a bug, a lost connection) lists again instead of ending ``run``."""

    def __init__(self, client: ApiClient, kind: KindInfo | str, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 log: Any = None) -> None:
        self.client = client
        self.info = kind_info(kind)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.synced = asyncio.Event()
        self.resource_version = 0
        self.relists = 0
        self.log = log
        self.failure_log = FAILURE_LOG

    async def _relist(self) -> None:
        """List (from ``resource_version`` at least: a relist never goes back in time) and set
        ``resource_version`` to the list's."""
        raise NotImplementedError

    def apply(self, event: str, obj: Obj) -> None:
        """One change seen by the watch (event: ADDED, MODIFIED or DELETED)."""
        raise NotImplementedError

    async def run(self) -> None:
        """List, then watch from the list's version; a failed watch is watched again from the last version
        seen (no relist: a relist of a big kind is what an overloaded API actor can least afford), and only
        ``Expired`` (or a refusal that retrying cannot fix) lists again."""
        delay = 0.1
        need_list = True
        while True:
            stop_if_cancelled()
            try:
                if need_list:
                    await self._relist()
                    self.relists += 1
                    self.synced.set()
                    need_list = False
                watch = self.client.watch(self.info, self.namespace, label_selector=self.label_selector,
                                          field_selector=self.field_selector,
                                          resource_version=self.resource_version)
                try:
                    async for event in watch:
                        stop_if_cancelled()
                        self.apply(event.type, event.object)
                        self.resource_version = event.resource_version
                        delay = 0.1
                finally:
                    # bookmarks may have carried the watch past the last event
                    self.resource_version = max(self.resource_version, watch.resource_version or 0)
                    await watch.close()
            except Expired:
                need_list = True
                continue
            except ShoalError as exc:
                if not exc.retryable:
                    need_list = True
                self.failure_log.warning(self.log, "list/watch failed; retrying", kind=self.info.kind,
                                         error=str(exc))
            except Exception:
                if not self.relist_on_error:
                    raise
                if self.log is not None:
                    self.log.exception("list/watch failed; listing again", kind=self.info.kind)
                need_list = True
            else:
                continue  # the watch ended: watch again at once
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class Informer(Reflector):
    """A reflector that keeps every object (``store``) and tells handlers of each change."""

    def __init__(self, client: ApiClient, kind: KindInfo | str, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None, log: Any = None,
                 transform: Callable[[Obj], Obj] | None = None) -> None:
        super().__init__(client, kind, namespace, label_selector=label_selector, field_selector=field_selector,
                         log=log)
        self.transform = transform
        """Applied to every object before it is stored and handed to handlers (Kubernetes' SetTransform):
        an informer of a big kind keeps only the fields its owner reads."""
        self.store: dict[str, Obj] = {}
        self.handlers: list[Handler] = []

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def get(self, key: str) -> Obj | None:
        return self.store.get(key)

    def items(self) -> list[Obj]:
        return list(self.store.values())

    def _emit(self, event: str, old: Obj | None, new: Obj | None) -> None:
        for handler in self.handlers:
            try:
                handler(event, old, new)
            except Exception:
                if self.log is not None:
                    self.log.error("informer handler failed", kind=self.info.kind, exc_info=True)

    async def _relist(self) -> None:
        # a relist needs no datastore round trip: the last version seen is the floor (never back in time)
        listing = await self.client.list(self.info, self.namespace, label_selector=self.label_selector,
                                         field_selector=self.field_selector,
                                         min_resource_version=self.resource_version or None)
        items = listing.items if self.transform is None else map(self.transform, listing.items)
        fresh = {ref(obj): obj for obj in items}
        old_store, self.store = self.store, fresh
        for key, obj in fresh.items():
            before = old_store.get(key)
            if before is None:
                self._emit("ADDED", None, obj)
            elif resource_version(before) != resource_version(obj):
                self._emit("MODIFIED", before, obj)
        for key, obj in old_store.items():
            if key not in fresh:
                self._emit("DELETED", obj, obj)
        self.resource_version = listing.resource_version

    def apply(self, event: str, obj: Obj) -> None:
        if self.transform is not None:
            obj = self.transform(obj)
        key = ref(obj)
        old = self.store.get(key)
        if event == "DELETED":
            self.store.pop(key, None)
            self._emit("DELETED", old, obj)
        else:
            if old is not None and resource_version(old) >= resource_version(obj):
                return
            self.store[key] = obj
            self._emit("ADDED" if old is None else "MODIFIED", old, obj)
