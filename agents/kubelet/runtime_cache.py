"""The kubelet's view of its runtime: one listing of the node's sandboxes and containers, shared.

``fresh()`` returns a listing that *started after* the call; concurrent callers share one listing instead
of each listing the runtime. ``view(key)`` lists one pod's objects, also after the call, so a reconcile
never acts on a state older than its own previous actions (no double creates). ``relist_changes()`` (the
PLEG of Kubernetes) compares successive listings and names the pod keys whose runtime state changed, e.g. a
container that exited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from agents.kubelet.cri import ContainerRuntime, PodKey
from agents.kubelet.plan import PodRuntimeView, runtime_views


def relist_pause(interval: float, took: float, share: float) -> float:
    """Seconds to wait before the next relist, after one that took ``took``: ``interval``, or longer so
    that listing takes at most ``share`` of the runtime's time."""
    return max(interval, took * (1.0 - share) / share) if 0 < share < 1 else interval


def _fingerprint(view: PodRuntimeView) -> tuple[object, ...]:
    return (
        tuple(sorted((s.id, s.state, s.ip) for s in view.sandboxes)),
        tuple(sorted((c.id, c.state, c.exit_code) for c in view.containers)),
    )


class RuntimeCache:
    def __init__(self, runtime: ContainerRuntime, node_name: str) -> None:
        self.runtime = runtime
        self.node_name = node_name
        self.views: Mapping[str, PodRuntimeView] = {}
        self._lock = asyncio.Lock()
        self._tickets = 0
        self._last_start = -1
        self._seen: dict[str, tuple[object, ...]] = {}
        self.listings = 0
        self.pod_listings = 0

    async def fresh(self) -> Mapping[str, PodRuntimeView]:
        """Pod views from a listing that started after this call."""
        ticket = self._tickets
        self._tickets += 1
        async with self._lock:
            if self._last_start > ticket:
                return self.views
            start = self._tickets
            self._tickets += 1
            self.views = await self._list()
            self._last_start = start
            self.listings += 1
            return self.views

    async def _list(self, pod: PodKey | None = None) -> Mapping[str, PodRuntimeView]:
        """Pod views from one listing of the node's sandboxes and containers (only ``pod``'s if given)."""
        # side by side: one round trip's wait instead of two (each listing is consistent on its own;
        # a container whose sandbox is not in the same listing is grouped with nothing, as before)
        sandboxes, containers = await asyncio.gather(self.runtime.list_sandboxes(self.node_name, pod=pod),
                                                     self.runtime.list_containers(self.node_name, pod=pod))
        return runtime_views(sandboxes, containers)

    async def view(self, key: str) -> PodRuntimeView:
        """The runtime objects of one pod key, listed after this call: only that pod's (the runtime
        filters), so a reconcile's listing does not grow with the pods the node runs. The first call waits
        for a whole listing (``views``: the addresses in use on the node, before any is handed out)."""
        if self.listings == 0:
            await self.fresh()
        namespace, _, name = key.partition("/")
        views = await self._list((namespace, name))
        self.pod_listings += 1
        view = views.get(key) or PodRuntimeView()
        # what a reconcile saw (and acted on) is no change for the relist: the kubelet's own creates and
        # starts do not queue the pod again
        if view.sandboxes:
            self._seen[key] = _fingerprint(view)
        else:
            self._seen.pop(key, None)
        return view

    async def relist_changes(self) -> list[str]:
        """List the runtime; return the pod keys whose objects changed since the last relist."""
        views = await self.fresh()
        changed = []
        current = {key: _fingerprint(view) for key, view in views.items()}
        for key, fp in current.items():
            if self._seen.get(key) != fp:
                changed.append(key)
        changed += [key for key in self._seen if key not in current]
        self._seen = current
        return changed
