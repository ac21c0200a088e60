"""The endpoints controller: keeps the Endpoints of every Service with a selector equal to the
addresses of the pods it selects (see ``endpoints_plan`` for how addresses and ports are chosen).

Keys are Services (``namespace/name``). A pod change enqueues the services of its namespace whose
selector matches its old or new labels, and only when something Endpoints depend on changed (labels,
addresses, readiness, deletion, ports). A deleted Service takes its Endpoints with it. Endpoints of
services without a selector are their users' and are never touched, nor are Endpoints with no
Service (until such a Service is created and then deleted).
"""

from __future__ import annotations

import contextlib

from actors.controllers.base import ControllerContext
from actors.controllers.endpoints_plan import (
    CreateEndpoints,
    UpdateEndpoints,
    manages,
    plan,
    pod_signature,
    selects,
)
from actors.controllers.manager import register
from actors.controllers.replication_index import NamespaceIndex
from protocol.errors import AlreadyExists, NotFound
from protocol.objects import Obj, labels_of, namespace_of, ref, split_ref
from runtime.workqueue import WorkQueue, run_workers


class EndpointsController:
    name = "endpoints"

    def __init__(self) -> None:
        self.running = False
        self.queue = WorkQueue()
        self.pods_by_ns = NamespaceIndex()
        self.services_by_ns = NamespaceIndex()

    def setup(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.log = ctx.log.bind(controller=self.name)
        self.services = ctx.informers.informer("Service")
        self.pods = ctx.informers.informer("Pod")
        self.endpoints = ctx.informers.informer("Endpoints")
        self.services.add_handler(self.services_by_ns.handle)
        self.services.add_handler(self._on_service)
        self.pods.add_handler(self.pods_by_ns.handle)
        self.pods.add_handler(self._on_pod)
        self.endpoints.add_handler(self._on_endpoints)

    async def run(self) -> None:
        self.running = True
        await run_workers(self.queue, self.reconcile, workers=4, log=self.log)

    # -- handlers -----------------------------------------------------------------------------------
    def _on_service(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None:
            self.queue.add(ref(obj))

    def _on_endpoints(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        service = self.services.get(ref(obj))
        if service is not None and manages(service):
            self.queue.add(ref(obj))  # someone edited or deleted ours: put it back

    def _on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        if event == "MODIFIED" and pod_signature(old) == pod_signature(new):
            return
        for pod in (old, new):
            if pod is None:
                continue
            for service in self.services_by_ns.in_namespace(namespace_of(pod)):
                if manages(service) and selects(service, pod):
                    self.queue.add(ref(service))

    # -- reconcile ----------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_ref(key)
        service = self.services.get(key)
        current = self.endpoints.get(key)
        if service is None:
            if current is not None:
                with contextlib.suppress(NotFound):
                    await self.client.delete("Endpoints", name, namespace)
            return None
        action = plan(service, self.pods_by_ns.in_namespace(namespace), current)
        if isinstance(action, CreateEndpoints):
            try:
                await self.client.create(action.endpoints)
            except AlreadyExists:  # our cache lags: write over what is there
                live = await self.client.get("Endpoints", name, namespace)
                retry = plan(service, self.pods_by_ns.in_namespace(namespace), live)
                if isinstance(retry, UpdateEndpoints):
                    await self.client.update(retry.endpoints)
        elif isinstance(action, UpdateEndpoints):
            await self.client.update(action.endpoints)
        if action is not None:
            self.log.debug("endpoints written", service=key, labels=labels_of(service))
        return None


register(EndpointsController.name, EndpointsController)
