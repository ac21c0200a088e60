"""The node lifecycle controller: node heartbeats → Ready=Unknown and condition taints; the NoExecute
taint manager that evicts pods; force deletion of pods no kubelet will ever confirm.

Heartbeats are the kubelet's renewals of its Lease ``kube-node-lease/<node>`` and the
``lastHeartbeatTime`` of its Ready condition. We never compare their timestamps (another machine's
clock) with ours: we note on our own monotonic clock *when we saw them change*. A controller that
starts (or takes over leadership) counts every node as just heard from, so a failover never evicts
early; the same holds for taints (their tolerationSeconds count from when we first saw them).

Two keyed queues: nodes (conditions, taints) and pods (``namespace/name``: mark not ready, evict,
force-delete). Decisions are in ``nodelifecycle_plan``; this module watches, remembers observation
times and executes.

Pods on a dead node must end up deleted so their controllers replace them, but a graceful delete of a
bound pod waits for its kubelet's confirmation, which an unreachable node never sends. Like
Kubernetes' pod garbage collector, once such a pod's grace period has passed (on our clock, since we
saw it being deleted) we delete it with gracePeriodSeconds=0. The same happens to pods bound to a node
that no longer exists, after ``node_monitor_grace_period`` and a live check that the node is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Callable
from typing import Any

from actors.controllers.base import ControllerContext
from actors.controllers.manager import register
from actors.controllers.nodelifecycle_plan import (
    TaintId,
    TokenBucket,
    eviction_delay,
    force_delete_delay,
    node_plan,
    noexecute_taints,
    ready_status,
)
from protocol.errors import NotFound
from protocol.objects import (
    Obj,
    condition,
    format_time,
    is_deleting,
    meta,
    name_of,
    pod_is_ready,
    ref,
    split_ref,
    uid_of,
)
from protocol.tolerations import UNREACHABLE
from runtime.workqueue import WorkQueue, run_workers

LEASE_NAMESPACE = "kube-node-lease"


class NodeLifecycleController:
    name = "nodelifecycle"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.running = False
        self.node_queue = WorkQueue()
        self.pod_queue = WorkQueue()
        self._last_heartbeat: dict[str, float] = {}
        self._lease_seen: dict[str, Any] = {}
        self._status_seen: dict[str, Any] = {}
        self._taints_seen: dict[str, dict[TaintId, float]] = {}
        self._pods_by_node: dict[str, set[str]] = {}
        self._deleting_since: dict[str, float] = {}
        self._orphan_since: dict[str, float] = {}
        self._registered: set[str] = set()  # node uids told RegisteredNode (as Kubernetes, once per leader)
        self.evictions = 0
        self.force_deletions = 0

    def setup(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.log = ctx.log.bind(controller=self.name)
        self.grace = float(ctx.options.get("node_monitor_grace_period", 40.0))
        self.default_timeout = float(ctx.options.get("pod_eviction_timeout", 300.0))
        self.bucket = TokenBucket(float(ctx.options.get("eviction_rate", 10.0)), now=self.clock())
        self.nodes = ctx.informers.informer("Node")
        self.leases = ctx.informers.informer("Lease", LEASE_NAMESPACE)
        self.pods = ctx.informers.informer("Pod")
        self.nodes.add_handler(self._on_node)
        self.leases.add_handler(self._on_lease)
        self.pods.add_handler(self._on_pod)

    async def run(self) -> None:
        self.running = True
        async with asyncio.TaskGroup() as group:
            group.create_task(run_workers(self.node_queue, self.reconcile_node, workers=2, log=self.log))
            group.create_task(run_workers(self.pod_queue, self.reconcile_pod, workers=4, log=self.log))

    # -- observing ----------------------------------------------------------------------------------
    def _heard(self, node: str) -> None:
        self._last_heartbeat[node] = self.clock()

    def _on_lease(self, event: str, old: Obj | None, new: Obj | None) -> None:
        lease = new if new is not None else old
        if lease is None or event == "DELETED":
            return
        node = name_of(lease)
        signature = (meta(lease).get("resourceVersion"), (lease.get("spec") or {}).get("renewTime"))
        if self._lease_seen.get(node) != signature:
            self._lease_seen[node] = signature
            self._heard(node)
            self.node_queue.add(node)

    def _on_node(self, event: str, old: Obj | None, new: Obj | None) -> None:
        node = new if new is not None else old
        if node is None:
            return
        name = name_of(node)
        if event == "DELETED":
            for state in (self._last_heartbeat, self._lease_seen, self._status_seen, self._taints_seen):
                state.pop(name, None)
            self._registered.discard(uid_of(node))
            self._enqueue_pods_of(name)
            return
        ready = condition(node, "Ready") or {}
        heartbeat = ready.get("lastHeartbeatTime")
        if name not in self._last_heartbeat or self._status_seen.get(name) != heartbeat:
            self._status_seen[name] = heartbeat
            self._heard(name)
        now = self.clock()
        seen = self._taints_seen.setdefault(name, {})
        current = {(str(t.get("key")), "NoExecute") for t in noexecute_taints(node)}
        for taint_id in current:
            seen.setdefault(taint_id, now)
        for taint_id in set(seen) - current:
            del seen[taint_id]
        before = old or {}
        taints_changed = (before.get("spec") or {}).get("taints") != (node.get("spec") or {}).get("taints")
        if event == "ADDED" or taints_changed or ready_status(before) != ready_status(node):
            self._enqueue_pods_of(name)
        self.node_queue.add(name)

    def _enqueue_pods_of(self, node: str) -> None:
        for key in self._pods_by_node.get(node, ()):
            self.pod_queue.add(key)

    def _on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        if pod is None:
            return
        key = ref(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if event == "DELETED":
            if node:
                bucket = self._pods_by_node.get(node)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del self._pods_by_node[node]
            self._deleting_since.pop(key, None)
            self._orphan_since.pop(key, None)
            return
        if not node:
            return
        self._pods_by_node.setdefault(node, set()).add(key)
        if is_deleting(pod):
            self._deleting_since.setdefault(key, self.clock())
        node_obj = self.nodes.get(node)
        if node_obj is None or noexecute_taints(node_obj):
            self.pod_queue.add(key)

    # -- nodes --------------------------------------------------------------------------------------
    async def reconcile_node(self, key: str) -> float | None:
        cached = self.nodes.get(key)
        if cached is None:
            return None
        if uid_of(cached) not in self._registered:
            self._registered.add(uid_of(cached))
            await self.ctx.recorder.record(cached, "Normal", "RegisteredNode",
                                           f"Node {key} event: Registered Node {key} in Controller")
        now = self.clock()
        last = self._last_heartbeat.setdefault(key, now)
        plan = node_plan(cached, last_heartbeat=last, now=now, grace=self.grace, wall_now=self.wall_clock())
        node = copy.deepcopy(cached)
        if plan.status is not None:
            node["status"] = plan.status
            node = await self.client.update_status(node)
            if plan.became_unknown:
                self.log.warning("node stopped posting status", node=key, silent_for=round(now - last, 1))
                await self.ctx.recorder.record(node, "Normal", "NodeNotReady",
                                               f"Node {key} status is now: NodeNotReady")
        if plan.taints is not None:
            node.setdefault("spec", {})["taints"] = plan.taints
            await self.client.update(node)
            self.log.info("node condition taints changed", node=key, health=plan.health)
        return plan.requeue_after

    # -- pods ---------------------------------------------------------------------------------------
    async def reconcile_pod(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None:
            return None
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return None
        now = self.clock()
        node = self.nodes.get(node_name)
        if node is None:
            return await self._orphaned(key, pod, node_name, now)
        self._orphan_since.pop(key, None)
        taints = noexecute_taints(node)
        unreachable = any(t.get("key") == UNREACHABLE for t in taints)
        if is_deleting(pod):
            if not unreachable:
                return None  # its kubelet will confirm the deletion
            since = self._deleting_since.setdefault(key, now)
            delay = force_delete_delay(pod, since=since, now=now)
            if delay > 0:
                return delay + 0.05
            await self._force_delete(key, pod, f"node {node_name} is unreachable")
            return None
        if unreachable and pod_is_ready(pod):
            await self._mark_not_ready(pod)
        due = eviction_delay(pod, taints, self._taints_seen.get(node_name, {}), now, self.default_timeout)
        if due is None:
            return None
        if due > 0:
            return due + 0.05
        wait = self.bucket.take(now)
        if wait > 0:
            return wait
        namespace, name = split_ref(key)
        try:
            await self.client.delete("Pod", name, namespace)
        except NotFound:
            return None
        self.evictions += 1
        self.log.info("evicting pod from tainted node", pod=key, node=node_name)
        await self.ctx.recorder.record(pod, "Normal", "TaintManagerEviction",
                                       f"Marking for deletion Pod {key}")
        return None

    async def _orphaned(self, key: str, pod: Obj, node_name: str, now: float) -> float | None:
        since = self._orphan_since.setdefault(key, now)
        if now - since < self.grace:
            return since + self.grace - now + 0.05
        try:
            await self.client.get("Node", node_name)
            return self.grace  # our cache lags: the node exists
        except NotFound:
            pass
        await self._force_delete(key, pod, f"node {node_name} does not exist")
        return None

    async def _force_delete(self, key: str, pod: Obj, why: str) -> None:
        namespace, name = split_ref(key)
        try:
            await self.client.delete("Pod", name, namespace, grace_period=0)
        except NotFound:
            return
        self.force_deletions += 1
        self.log.info("force-deleted pod no kubelet can confirm", pod=key, reason=why)

    async def _mark_not_ready(self, pod: Obj) -> None:
        """As Kubernetes' MarkPodsNotReady: endpoints stop sending traffic to pods of a lost node."""
        updated = copy.deepcopy(pod)
        for cond in (updated.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready":
                cond["status"] = "False"
                cond["reason"] = "NodeUnreachable"
                cond["lastTransitionTime"] = format_time(self.wall_clock())
        with contextlib.suppress(NotFound):
            await self.client.update_status(updated)


register(NodeLifecycleController.name, NodeLifecycleController)
