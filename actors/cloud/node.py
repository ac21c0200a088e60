"""The cloud node controller: deletes the Node of a machine the provider says is gone (``node_plan``).

Keys are node names; every node is looked at on its events and again every resync period.
"""

from __future__ import annotations

from actors.cloud.base import CloudContext, run_controller
from actors.cloud.node_plan import DeleteNode, plan
from protocol.errors import NotFound
from protocol.objects import Obj, ref
from runtime.workqueue import WorkQueue


class NodeController:
    name = "node"

    def __init__(self) -> None:
        self.queue = WorkQueue()

    def setup(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.nodes = ctx.informers.informer("Node")
        self.nodes.add_handler(self._on_node)

    def _on_node(self, _event: str, _old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add(ref(new))

    async def run(self) -> None:
        for node in self.nodes.items():
            self.queue.add(ref(node))
        await run_controller(self.queue, self.reconcile, self.ctx.log)

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            return None
        action = plan(node, await self.ctx.provider.instance_exists(node))
        if isinstance(action, DeleteNode):
            self.ctx.log.info("provider says the machine is gone: deleting its node", node=key)
            await self.ctx.recorder.record(node, "Normal", "DeletingNode", action.message)
            try:
                await self.ctx.client.delete("Node", action.name)
            except NotFound:
                pass
            self.ctx.counts["nodes_removed"] = self.ctx.counts.get("nodes_removed", 0) + 1
            return None
        return self.ctx.resync
