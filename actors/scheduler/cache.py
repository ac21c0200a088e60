"""The scheduler's own view of the cluster: nodes and what the pods on them request, assumed pods included.

A decision is made against this cache with no round trip. The chosen pod is *assumed* on its node at
once (its requests count immediately), then bound asynchronously; the bound-pods informer *confirms*
it, a failed bind *forgets* it, and an assumption never confirmed expires after ``ASSUME_TTL``
seconds past its bind (as kube-scheduler's cache does). Each pod is accounted at most once, by key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from actors.scheduler.model import FitColumns, NodeInfo, PodInfo, add_usage

ASSUME_TTL = 30.0


@dataclass(slots=True)
class PodRecord:
    info: PodInfo
    node: str
    assumed: bool
    bound_at: float | None = None
    """For an assumed pod: when its bind succeeded (the TTL runs from there); None while in flight."""
    generation: int | None = None
    """The bound pod's ``metadata.generation`` when ``info`` was taken from it (the API bumps it on any
    change of the spec): a later version with the same generation and group needs no new ``PodInfo``."""


class SchedulerCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.pods: dict[str, PodRecord] = {}
        self.ready = asyncio.Event()
        """Set once the node and pod informers have listed (the test runner waits on it)."""
        self._order: list[NodeInfo] | None = None
        self._fits = FitColumns([])
        self._assumed: dict[str, float | None] = {}
        """Assumed pods -> when their bind succeeded (None while in flight): no scan of all pods."""
        self.next_start = 0

    # -- nodes ----------------------------------------------------------------------------
    def set_node(self, fresh: NodeInfo) -> bool:
        """Add or update a node's static facts, keeping its usage; True when scheduling may change."""
        current = self.nodes.get(fresh.name)
        if current is None:
            self.nodes[fresh.name] = fresh
            self._order = None
            return True
        before = current.static()
        if not current.present:
            self._order = None
        current.present = True
        current.labels, current.taints = fresh.labels, fresh.taints
        current.unschedulable, current.ready = fresh.unschedulable, fresh.ready
        current.alloc_cpu, current.alloc_memory = fresh.alloc_cpu, fresh.alloc_memory
        current.alloc_pods, current.alloc_other = fresh.alloc_pods, fresh.alloc_other
        current.refresh()
        return current.static() != before

    def remove_node(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            return
        self._order = None
        if node.pod_count > 0:
            node.present = False  # keep the pods' accounting until they go too
            node.refresh()
        else:
            del self.nodes[name]

    def schedulable_nodes(self) -> list[NodeInfo]:
        """Present nodes in a stable order (rebuilt only when nodes come or go)."""
        if self._order is None:
            order: list[NodeInfo] = []
            for node in self.nodes.values():
                node.fits = None
                if node.present:
                    node.slot = len(order)
                    order.append(node)
            self._fits = FitColumns(order)
            for node in order:
                node.fits = self._fits
            self._order = order
        return self._order

    @property
    def fits(self) -> FitColumns:
        """The fit columns of ``schedulable_nodes()`` (pass both to ``decide``)."""
        self.schedulable_nodes()
        return self._fits

    def _node_for(self, name: str) -> NodeInfo:
        node = self.nodes.get(name)
        if node is None:
            node = NodeInfo(name, present=False)
            self.nodes[name] = node
        return node

    # -- pods -----------------------------------------------------------------------------
    def _account(self, key: str, info: PodInfo, node: str, *, assumed: bool, generation: int | None = None) -> None:
        where = self._node_for(node)
        add_usage(where, info)
        self.pods[key] = PodRecord(info, where.name, assumed, None, generation)  # the node's name: one copy
        if assumed:
            self._assumed[key] = None

    def _unaccount(self, key: str) -> PodRecord | None:
        self._assumed.pop(key, None)
        record = self.pods.pop(key, None)
        if record is not None:
            node = self.nodes.get(record.node)
            if node is not None:
                add_usage(node, record.info, -1)
                if not node.present and node.pod_count <= 0:
                    del self.nodes[record.node]
        return record

    def assume(self, info: PodInfo, node: str) -> None:
        self._unaccount(info.key)
        self._account(info.key, info, node, assumed=True)

    def finish_binding(self, key: str, now: float) -> None:
        record = self.pods.get(key)
        if record is not None and record.assumed:
            record.bound_at = now
            self._assumed[key] = now

    def confirm(self, key: str, generation: int | None = None) -> None:
        """The bound-pods informer shows an assumed pod bound where it was assumed: it is accounted already."""
        record = self.pods.get(key)
        if record is not None and record.assumed:
            record.assumed = False
            record.bound_at = None
            record.generation = generation
            self._assumed.pop(key, None)

    def forget(self, key: str) -> bool:
        """Drop an assumption (bind failed); a pod the informer already confirmed stays."""
        record = self.pods.get(key)
        if record is None or not record.assumed:
            return False
        self._unaccount(key)
        return True

    def add_bound(self, info: PodInfo, node: str, generation: int | None = None) -> bool:
        """Account a pod the bound-pods informer reports; True when it was unknown before."""
        record = self.pods.get(info.key)
        if record is not None and record.node == node and record.info.uid == info.uid:
            record.assumed = False
            record.bound_at = None
            record.generation = generation
            self._assumed.pop(info.key, None)
            if record.info != info:
                add_usage(self.nodes[node], record.info, -1)
                add_usage(self.nodes[node], info)
                record.info = info
            return False
        self._unaccount(info.key)
        self._account(info.key, info, node, assumed=False, generation=generation)
        return record is None

    def remove_pod(self, key: str, uid: str | None = None) -> bool:
        """Forget a pod that is gone (or finished); True when it freed resources."""
        record = self.pods.get(key)
        if record is None or (uid is not None and record.info.uid != uid):
            return False
        self._unaccount(key)
        return True

    def is_placed(self, key: str, uid: str) -> bool:
        """The pod is assumed or known bound: there is nothing to schedule."""
        record = self.pods.get(key)
        return record is not None and record.info.uid == uid

    def assumed_keys(self) -> list[str]:
        return list(self._assumed)

    def bound_keys(self) -> list[str]:
        """Pods known bound (seen by the bound-pods informer), not merely assumed."""
        return [key for key, record in self.pods.items() if not record.assumed]

    def expire_assumed(self, now: float, ttl: float = ASSUME_TTL) -> list[str]:
        """Forget assumptions whose bind finished ``ttl`` seconds ago and never showed up as bound."""
        expired = [k for k, at in self._assumed.items() if at is not None and now - at > ttl]
        for key in expired:
            self._unaccount(key)
        return expired
