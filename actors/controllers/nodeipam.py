"""The node IPAM controller: gives every Node a ``spec.podCIDR`` (one block of the cluster CIDR).

Keys are Node names. One worker, so two Nodes never race for one block; blocks this controller
wrote but its informer has not shown yet are held in ``pending`` (expectations), so a stale cache
never hands one block out twice. Settings (``ctx.options``): ``cluster_cidr``, ``service_cidr`` and
``node_cidr_mask``, checked for overlap at setup.
"""

from __future__ import annotations

import ipaddress

from actors.controllers.base import ControllerContext
from actors.controllers.manager import register
from actors.controllers.nodeipam_plan import CIDRsExhausted, SetPodCIDR, plan, pod_cidrs, taken
from protocol.errors import Conflict, NotFound
from protocol.network import (
    DEFAULT_CLUSTER_CIDR,
    DEFAULT_NODE_CIDR_MASK,
    DEFAULT_SERVICE_CIDR,
    check_ranges,
)
from protocol.objects import Obj, meta, name_of
from runtime.workqueue import WorkQueue, run_workers


class NodeIPAMController:
    name = "nodeipam"

    def __init__(self) -> None:
        self.queue = WorkQueue()
        self.pending: dict[str, ipaddress.IPv4Network] = {}
        self.assigned = 0
        self.running = False

    def setup(self, ctx: ControllerContext) -> None:
        options = ctx.options
        self.plan = check_ranges(str(options.get("cluster_cidr") or DEFAULT_CLUSTER_CIDR),
                                 str(options.get("service_cidr") or DEFAULT_SERVICE_CIDR),
                                 int(options.get("node_cidr_mask") or DEFAULT_NODE_CIDR_MASK))
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.log = ctx.log.bind(controller=self.name)
        self.nodes = ctx.informers.informer("Node")
        self.nodes.add_handler(self._on_node)

    async def run(self) -> None:
        self.running = True
        await run_workers(self.queue, self.reconcile, workers=1, log=self.log)

    def _on_node(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        name = name_of(obj)
        if new is not None and pod_cidrs(new):
            self.pending.pop(name, None)  # our write (or another's) is visible now
        if event == "DELETED":
            self.pending.pop(name, None)
            # A freed block may let a Node that found none get one now.
            for other in self.nodes.items():
                if not pod_cidrs(other):
                    self.queue.add(name_of(other))
            return
        self.queue.add(name)

    def _used(self) -> set[ipaddress.IPv4Network]:
        cidrs = [c for node in self.nodes.items() for c in pod_cidrs(node)]
        return taken(cidrs, self.plan.cluster) | set(self.pending.values())

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if key in self.pending:
            return None  # our assignment is on its way to the cache
        for action in plan(node, self._used(), self.plan.cluster, self.plan.node_mask):
            assert node is not None
            if isinstance(action, CIDRsExhausted):
                self.log.warning("no pod CIDR left for node", node=key, cluster_cidr=action.cluster_cidr)
                await self.recorder.record(node, "Warning", "CIDRNotAvailable",
                                           f"no free /{self.plan.node_mask} left in {action.cluster_cidr}")
                continue
            if isinstance(action, SetPodCIDR):
                updated = {**node, "spec": {**(node.get("spec") or {}), "podCIDR": action.cidr,
                                            "podCIDRs": [action.cidr]}}
                self.pending[key] = ipaddress.IPv4Network(action.cidr)
                try:
                    await self.client.update(updated)
                except Conflict:
                    self.pending.pop(key, None)
                    return 0.2  # the node changed under us: retry on the fresh copy
                except NotFound:
                    self.pending.pop(key, None)
                    return None
                except Exception:
                    self.pending.pop(key, None)
                    raise
                self.assigned += 1
                self.log.info("pod CIDR assigned", node=key, cidr=action.cidr,
                              resource_version=meta(updated).get("resourceVersion"))
        return None


register(NodeIPAMController.name, NodeIPAMController)
