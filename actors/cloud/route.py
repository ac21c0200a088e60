"""The cloud route controller: the provider's route table follows the nodes' pod CIDRs (``route_plan``).

One key (``ROUTES_KEY``) for the whole table, enqueued on every node event and again every resync.
"""

from __future__ import annotations

from actors.cloud.base import CloudContext, run_controller
from actors.cloud.route_plan import ROUTES_KEY, plan
from protocol.objects import Obj
from runtime.workqueue import WorkQueue


class RouteController:
    name = "route"

    def __init__(self) -> None:
        self.queue = WorkQueue()

    def setup(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.nodes = ctx.informers.informer("Node")
        self.nodes.add_handler(self._on_node)

    def _on_node(self, _event: str, _old: Obj | None, _new: Obj | None) -> None:
        self.queue.add(ROUTES_KEY)

    async def run(self) -> None:
        self.queue.add(ROUTES_KEY)
        await run_controller(self.queue, self.reconcile, self.ctx.log)

    async def reconcile(self, _key: str) -> float | None:
        provider = self.ctx.provider
        routes = plan(self.nodes.items(), await provider.list_routes())
        for route in routes.create:
            await provider.create_route(route)
            self.ctx.counts["routes"] = self.ctx.counts.get("routes", 0) + 1
        for route in routes.delete:
            await provider.delete_route(route)
        return self.ctx.resync
