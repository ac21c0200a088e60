"""The cloud service controller: provider load balancers for LoadBalancer Services (``service_plan``).

Keys are Services (``namespace/name``), enqueued on their changes; a deleted Service has nothing left
to do (its finalizer kept it until its load balancer was gone).
"""

from __future__ import annotations

from actors.cloud.base import CloudContext, run_controller
from actors.cloud.service_plan import DeleteLoadBalancer, EnsureLoadBalancer, ingress_status, plan
from protocol.objects import Obj, ref, split_ref
from runtime.workqueue import WorkQueue


class ServiceController:
    name = "service"

    def __init__(self) -> None:
        self.queue = WorkQueue()

    def setup(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.services = ctx.informers.informer("Service")
        self.nodes = ctx.informers.informer("Node")
        self.services.add_handler(self._on_service)

    def _on_service(self, _event: str, _old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            self.queue.add(ref(new))

    async def run(self) -> None:
        await run_controller(self.queue, self.reconcile, self.ctx.log)

    async def reconcile(self, key: str) -> float | None:
        service = self.services.get(key)
        if service is None:
            return None
        namespace, name = split_ref(key)
        client, provider = self.ctx.client, self.ctx.provider
        action = plan(service)
        if isinstance(action, DeleteLoadBalancer):
            await provider.delete_load_balancer(service)
            pinned = {"finalizers": list(action.finalizers), "resourceVersion": action.resource_version}
            await client.patch("Service", name, {"metadata": pinned}, namespace)
            if action.clear_status:
                await client.patch("Service", name, {"status": {"loadBalancer": {}}}, namespace, status=True)
        elif isinstance(action, EnsureLoadBalancer):
            if action.add_finalizer is not None:
                await client.patch("Service", name, {"metadata": {"finalizers": list(action.add_finalizer)}},
                                   namespace)
            status = ingress_status(service, await provider.ensure_load_balancer(service, self.nodes.items()))
            if status is not None:
                await client.patch("Service", name, status, namespace, status=True)
                await self.ctx.recorder.record(service, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
                self.ctx.counts["load_balancers"] = self.ctx.counts.get("load_balancers", 0) + 1
        return None
