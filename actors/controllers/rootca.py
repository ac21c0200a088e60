"""The rootca controller (Kubernetes' root-ca-cert-publisher): keeps ``kube-root-ca.crt`` in every active
namespace. Keys are namespace names; ``rootca_plan.plan`` decides.

The CA bundle is the one clients verify the cluster's endpoint with: the file named by ``SHOAL_TLS_CA`` (the
NATS servers' TLS CA, as ``shoal up --tls`` and the deploy scripts set it). Without TLS there is no CA: the
ConfigMap is still published, with an empty ``ca.crt``, so that pods' token volumes mount (and say so).
"""

from __future__ import annotations

import contextlib
import os

from actors.controllers.base import ControllerContext
from actors.controllers.manager import register
from actors.controllers.rootca_plan import CreateConfigMap, UpdateConfigMap, plan
from protocol.errors import AlreadyExists, Forbidden, NotFound
from protocol.objects import Obj, name_of, namespace_of
from protocol.podidentity import ROOT_CA_CONFIGMAP
from runtime.workqueue import WorkQueue, run_workers

CA_ENV = "SHOAL_TLS_CA"


def read_ca(path: str | None) -> str:
    if not path:
        return ""
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as f:
        return f.read()
    return ""


class RootCAController:
    name = "rootca"

    def __init__(self) -> None:
        self.queue = WorkQueue()
        self.ca = ""
        self.running = False

    def setup(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.log = ctx.log.bind(controller=self.name)
        self.namespaces = ctx.informers.informer("Namespace")
        self.configmaps = ctx.informers.informer("ConfigMap", field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}")
        self.namespaces.add_handler(self._on_namespace)
        self.configmaps.add_handler(self._on_configmap)

    async def run(self) -> None:
        self.ca = read_ca(os.environ.get(CA_ENV))
        self.running = True
        await run_workers(self.queue, self.reconcile, workers=1, log=self.log)

    def _on_namespace(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None and event != "DELETED":
            self.queue.add(name_of(obj))

    def _on_configmap(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None and name_of(obj) == ROOT_CA_CONFIGMAP:
            self.queue.add(namespace_of(obj) or "")

    async def reconcile(self, key: str) -> float | None:
        for action in plan(self.namespaces.get(key), self.configmaps.get(f"{key}/{ROOT_CA_CONFIGMAP}"), self.ca):
            try:
                if isinstance(action, CreateConfigMap):
                    await self.client.create(action.configmap)
                    self.log.info("published the root CA", namespace=key, empty=not self.ca)
                elif isinstance(action, UpdateConfigMap):
                    await self.client.update(action.configmap)
            except (AlreadyExists, Forbidden, NotFound):
                return None  # our cache will show it / the namespace is terminating or gone
        return None


register(RootCAController.name, RootCAController)
