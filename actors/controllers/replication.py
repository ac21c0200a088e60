"""The ReplicaSet and ReplicationController controllers: keep ``spec.replicas`` pods of a template.

One class serves both kinds (registered as "replicaset" and "replication"); they differ only in how the
selector is written, which ``replication_plan.selector_of`` hides. Watch handlers enqueue owner keys
(``namespace/name``); ``reconcile`` asks ``replication_plan.plan`` what to do and does it:

- adoption/release (decided by ``claim_plan``, sent by ``controllerref.ControllerRefManager``) patch a
  pod's ``ownerReferences`` with a resourceVersion precondition, so a concurrent change is never
  overwritten;
- creations go out in slow-start batches (1, 2, 4, ...) and stop at the first failing batch;
- expectations (``expectations.Expectations``): creations and deletions asked for but not yet seen in
  the pod cache block further creations/deletions for that owner, so a stale cache never makes the
  controller act twice. Deletions are tracked by pod key, so a pod seen both as "being deleted" and
  "deleted" counts once.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from actors.controllers.base import ControllerContext
from actors.controllers.manager import register
from actors.controllers.podcontrol import create_expected
from actors.controllers.podowner import PodOwnerController
from actors.controllers.replication_plan import (
    BURST_REPLICAS,
    CreatePods,
    DeletePods,
    compute_status,
    plan,
    pod_from_template,
    selector_of,
    status_changed,
)
from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, name_of, namespace_of, split_ref
from protocol.selectors import Selector
from runtime.informer import Informer


class ReplicationError(ShoalError):
    """Some of a pass's creations or deletions failed; the owner is retried with back-off."""

    retryable = True


class ReplicaController(PodOwnerController):
    """Keeps the pods of every owner of one kind (ReplicaSet or ReplicationController)."""

    def __init__(self, kind: str, name: str, *, workers: int = 5, burst: int = BURST_REPLICAS) -> None:
        super().__init__(kind, workers=workers)
        self.name = name
        self.burst = burst

    # -- wiring -------------------------------------------------------------------------------
    def setup(self, ctx: ControllerContext) -> None:
        self.bind(ctx)
        self.pods: Informer = ctx.informers.informer("Pod")
        self.owners = self.watch_primary(self.kind)
        self.pods.add_handler(self.pod_index.handle)
        self.pods.add_handler(self.on_pod)
        self.owners.add_handler(self.owner_index.handle)
        self.owners.add_handler(self.on_primary)

    def selector_of(self, owner: Obj) -> Selector:
        return selector_of(owner)  # a ReplicationController's is an equality map

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        owner = self.owners.get(key)
        if owner is None:
            self.forget(key)
            return None
        namespace, _ = split_ref(key)
        pods = self.pod_index.in_namespace(namespace)
        now = time.time()
        satisfied = self.expectations.satisfied(key)
        result = plan(owner, pods, now, burst=self.burst, expectations_satisfied=satisfied)
        errors: list[str] = []
        create_error: str | None = None
        await self.claim_pods(owner, list(result.actions))
        for action in result.actions:
            if isinstance(action, CreatePods):
                _, create_error = await create_expected(self.expectations, key, range(action.count),
                                                        lambda _: self._create_one(owner))
                if create_error is not None:
                    errors.append(create_error)
            elif isinstance(action, DeletePods):
                errors.extend(await self.delete_pods(owner, key, list(action.names)))
        status = result.status
        if create_error is not None:
            status = compute_status(owner, result.active, now, create_error=create_error)
        if status_changed(owner.get("status") or {}, status):
            await self._write_status(owner, status)
        if errors:
            raise ReplicationError(f"{self.kind} {key}: " + "; ".join(errors[:3]))
        return result.requeue_after

    async def _create_one(self, owner: Obj) -> None:
        try:
            pod = await self.client.create(pod_from_template(owner))
        except ShoalError as exc:
            await self.ctx.recorder.record(owner, "Warning", "FailedCreate", f"Error creating: {exc}")
            raise
        await self.ctx.recorder.record(owner, "Normal", "SuccessfulCreate", f"Created pod: {name_of(pod)}")

    async def _write_status(self, owner: Obj, status: Obj) -> None:
        patch: dict[str, Any] = {"status": {**status, "conditions": status.get("conditions")}}
        with contextlib.suppress(NotFound):
            await self.client.patch(self.kind, name_of(owner), patch, namespace_of(owner), status=True)


register("replicaset", lambda: ReplicaController("ReplicaSet", "replicaset"))
register("replication", lambda: ReplicaController("ReplicationController", "replication"))
