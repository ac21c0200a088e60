"""The disruption controller: keeps each PodDisruptionBudget's status (how many evictions it allows).

Watch handlers only enqueue budget keys (``namespace/name``): a budget's own changes; a pod's change, for
the budgets of its namespace that cover it (before or after the change); a change of a pod controller
(ReplicationController, ReplicaSet, Deployment, DaemonSet), for the budgets of its namespace, since its
scale may be a budget's expected count. ``reconcile`` resolves the covered pods' controllers to their
scales from the caches (a ReplicaSet owned by a Deployment counts as the Deployment), asks
``disruption_plan.plan`` for the status and writes it when it changed. The eviction subresource of the
API spends what the status allows (``protocol.disruption.check_eviction``).
"""

from __future__ import annotations

import contextlib
import time

from actors.controllers.base import ControllerContext, QueueController
from actors.controllers.disruption_plan import Scale, covered_pods, plan, status_changed
from actors.controllers.manager import register
from actors.controllers.replication_index import NamespaceIndex
from protocol.disruption import selects
from protocol.errors import Conflict, NotFound
from protocol.objects import Obj, controller_of, namespace_of, ref, split_ref, uid_of
from runtime.informer import Informer

KIND = "PodDisruptionBudget"
CONTROLLER_KINDS = ("ReplicationController", "ReplicaSet", "Deployment", "DaemonSet")


def scale_of(owner: Obj) -> int:
    """A controller's scale: ``spec.replicas`` (default 1), a DaemonSet's ``desiredNumberScheduled``."""
    if owner.get("kind") == "DaemonSet":
        return int((owner.get("status") or {}).get("desiredNumberScheduled") or 0)
    replicas = (owner.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


class DisruptionController(QueueController):
    name = "disruption"

    def __init__(self, *, workers: int = 2) -> None:
        super().__init__(workers=workers)
        self.pdb_index = NamespaceIndex()
        self.pod_index = NamespaceIndex()

    def setup(self, ctx: ControllerContext) -> None:
        self.bind(ctx)
        self.budgets = self.watch_primary(KIND)
        self.pods: Informer = ctx.informers.informer("Pod")
        self.owners: dict[str, Informer] = {kind: ctx.informers.informer(kind) for kind in CONTROLLER_KINDS}
        self.budgets.add_handler(self.pdb_index.handle)
        self.budgets.add_handler(self._on_budget)
        self.pods.add_handler(self.pod_index.handle)
        self.pods.add_handler(self._on_pod)
        for informer in self.owners.values():
            informer.add_handler(self._on_owner)

    # -- handlers -------------------------------------------------------------------------------
    def _on_budget(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None and event != "DELETED":
            self.queue.add(ref(obj))

    def _on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        for pod in (old, new):
            if pod is None:
                continue
            for pdb in self.pdb_index.in_namespace(namespace_of(pod)):
                if selects(pdb, pod):
                    self.queue.add(ref(pdb))

    def _on_owner(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None or (old is not None and new is not None and scale_of(old) == scale_of(new)):
            return
        for pdb in self.pdb_index.in_namespace(namespace_of(obj)):
            self.queue.add(ref(pdb))

    # -- reconcile ----------------------------------------------------------------------------
    def _owner(self, kind: str, namespace: str | None, name: str, uid: str) -> Obj | None:
        informer = self.owners.get(kind)
        owner = informer.get(f"{namespace}/{name}") if informer is not None else None
        return owner if owner is not None and uid_of(owner) == uid else None

    def _scale(self, pod: Obj) -> Scale | None:
        """The scale counted for ``pod``'s controller (Kubernetes' finders), None when it is not found."""
        ref_ = controller_of(pod)
        if ref_ is None:
            return None
        owner = self._owner(str(ref_.get("kind")), namespace_of(pod), str(ref_.get("name")), str(ref_.get("uid")))
        if owner is None:
            return None
        if owner.get("kind") == "ReplicaSet" and (top := controller_of(owner)) is not None and \
                top.get("kind") == "Deployment":
            deployment = self._owner("Deployment", namespace_of(owner), str(top.get("name")), str(top.get("uid")))
            if deployment is not None:
                return Scale(uid_of(deployment), scale_of(deployment))
        return Scale(uid_of(owner), scale_of(owner))

    async def reconcile(self, key: str) -> float | None:
        pdb = self.budgets.get(key)
        if pdb is None:
            return None
        namespace, _ = split_ref(key)
        pods = self.pod_index.in_namespace(namespace)
        scales: dict[str, Scale] = {}
        for pod in covered_pods(pdb, pods):
            owner_ref = controller_of(pod)
            if owner_ref is not None and (scale := self._scale(pod)) is not None:
                scales[str(owner_ref.get("uid"))] = scale
        now = time.time()
        result = plan(pdb, pods, scales, now)
        if result.unmanaged:
            self.log.debug("budget covers pods without a controller", budget=key, pods=result.unmanaged[:5])
        for name in result.expired:
            await self.ctx.recorder.record(pdb, "Warning", "NotDeleted",
                                           f"Pod {name} was expected to be deleted but it was not")
        if status_changed(pdb.get("status") or {}, result.status):
            # the whole status, at the cached resourceVersion: an eviction that wrote the budget since
            # (disruptedPods) makes this a Conflict, and its watch event brings the budget back here
            status = {k: v for k, v in result.status.items() if v is not None}
            with contextlib.suppress(NotFound, Conflict):
                await self.client.update_status({**pdb, "status": status})
        return result.requeue_after


register("disruption", DisruptionController)
