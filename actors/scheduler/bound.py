"""The scheduler's watch of bound pods, keeping no copy of them: the cache is what the scheduler keeps.

An informer keeps every object it sees so that a relist can tell what changed and what went. The scheduler
needs none of a bound pod but what its cache accounts (a ``PodInfo`` per pod, whose fields the pods of a
workload share): keeping the pods too cost ~3.7 KiB a pod even as a trimmed view, most of the scheduler's
memory at 150,000 pods. This reflector hands every change to ``on_change`` and keeps nothing; a relist
(chunk by chunk, never the whole list at once) reports each listed pod, then ``on_gone`` for every pod
``known`` returns that the list no longer holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from protocol.objects import Obj, ref
from runtime.client import ApiClient
from runtime.informer import Reflector

BOUND = "spec.nodeName!="


class BoundPods(Reflector):
    def __init__(self, client: ApiClient, on_change: Callable[[str, Obj], None], known: Callable[[], Iterable[str]],
                 on_gone: Callable[[str], None], *, log: Any = None) -> None:
        super().__init__(client, "Pod", field_selector=BOUND, log=log)
        self.on_change = on_change
        self.known = known
        self.on_gone = on_gone

    def _report(self, event: str, obj: Obj) -> None:
        try:
            self.on_change(event, obj)
        except Exception:
            if self.log is not None:
                self.log.error("bound-pods handler failed", pod=ref(obj), exc_info=True)

    def apply(self, event: str, obj: Obj) -> None:
        self._report(event, obj)

    async def _relist(self) -> None:
        seen: set[str] = set()
        version = 0
        async for chunk, last in self.client.list_chunks(self.info, self.namespace, field_selector=self.field_selector,
                                                         min_resource_version=self.resource_version or None):
            for obj in chunk:
                seen.add(ref(obj))
                self._report("ADDED", obj)
            version = last or version
        for key in [k for k in self.known() if k not in seen]:
            self.on_gone(key)
        self.resource_version = max(self.resource_version, version)
