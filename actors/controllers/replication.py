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

import asyncio
import contextlib
import time
from typing import Any

from actors.controllers.base import ControllerContext
from actors.controllers.controllerref import ControllerRefManager
from actors.controllers.expectations import Expectations
from actors.controllers.manager import register
from actors.controllers.podcontrol import delete_pods, owners_of_pod_change
from actors.controllers.replication_index import NamespaceIndex
from actors.controllers.replication_plan import (
    BURST_REPLICAS,
    AdoptPod,
    CreatePods,
    DeletePods,
    ReleasePod,
    compute_status,
    plan,
    pod_from_template,
    selector_of,
    slow_start_batches,
    status_changed,
)
from protocol.errors import NotFound, ShoalError
from protocol.objects import (
    Obj,
    controller_of,
    labels_of,
    name_of,
    namespace_of,
    ref,
    split_ref,
    uid_of,
)
from runtime.informer import Informer
from runtime.workqueue import WorkQueue, run_workers


class ReplicationError(ShoalError):
    """Some of a pass's creations or deletions failed; the owner is retried with back-off."""

    retryable = True


class ReplicaController:
    """Keeps the pods of every owner of one kind (ReplicaSet or ReplicationController)."""

    def __init__(self, kind: str, name: str, *, workers: int = 5, burst: int = BURST_REPLICAS) -> None:
        self.kind = kind
        self.name = name
        self.workers = workers
        self.burst = burst
        self.queue = WorkQueue()
        self.expectations = Expectations()
        """Per owner key: pods being created (counted) and deleted (by pod key), not yet seen."""
        self.pod_index = NamespaceIndex()
        self.owner_index = NamespaceIndex()
        self.running = False

    # -- wiring -------------------------------------------------------------------------------
    def setup(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.log = ctx.log.bind(controller=self.name) if hasattr(ctx.log, "bind") else ctx.log
        self.refs = ControllerRefManager(ctx.client, "Pod", self.log)
        self.pods: Informer = ctx.informers.informer("Pod")
        self.owners: Informer = ctx.informers.informer(self.kind)
        self.pods.add_handler(self.pod_index.handle)
        self.pods.add_handler(self._on_pod)
        self.owners.add_handler(self.owner_index.handle)
        self.owners.add_handler(self._on_owner)

    async def run(self) -> None:
        for owner in self.owners.items():
            self.queue.add(ref(owner))
        self.running = True
        try:
            await run_workers(self.queue, self.reconcile, workers=self.workers, log=self.log)
        finally:
            self.running = False
            self.queue.close()

    # -- handlers: only enqueue keys and count observations -------------------------------------
    def _on_owner(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        key = ref(obj)
        if event == "DELETED":
            self.expectations.forget(key)
        self.queue.add(key)

    def _owner_key(self, pod: Obj) -> str | None:
        """The key of the owner of our kind that controls ``pod`` (None when it is not ours)."""
        owner_ref = controller_of(pod)
        if owner_ref is None or owner_ref.get("kind") != self.kind:
            return None
        owner = self.owner_index.get(namespace_of(pod), str(owner_ref.get("name", "")))
        if owner is None or uid_of(owner) != owner_ref.get("uid"):
            return None
        return ref(owner)

    def _matching_owners(self, pod: Obj) -> list[str]:
        labels = labels_of(pod)
        found = []
        for owner in self.owner_index.in_namespace(namespace_of(pod)):
            try:
                if selector_of(owner).matches(labels):
                    found.append(ref(owner))
            except ShoalError:
                continue
        return found

    def _on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        if pod is None:
            return
        for key in owners_of_pod_change(event, old, pod, self.expectations, owner_key=self._owner_key,
                                        matching=self._matching_owners):
            self.queue.add(key)

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return None
        namespace, _ = split_ref(key)
        pods = self.pod_index.in_namespace(namespace)
        now = time.time()
        satisfied = self.expectations.satisfied(key)
        result = plan(owner, pods, now, burst=self.burst, expectations_satisfied=satisfied)
        errors: list[str] = []
        create_error: str | None = None
        adopt = [a.name for a in result.actions if isinstance(a, AdoptPod)]
        if adopt and await self.refs.can_adopt(owner):
            for name in adopt:
                if (pod := self.pod_index.get(namespace, name)) is not None:
                    await self.refs.adopt(owner, pod)
        for action in result.actions:
            if isinstance(action, ReleasePod):
                if (pod := self.pod_index.get(namespace, action.name)) is not None:
                    await self.refs.release(owner, pod)
            elif isinstance(action, CreatePods):
                create_error = await self._create_pods(owner, key, action.count)
                if create_error is not None:
                    errors.append(create_error)
            elif isinstance(action, DeletePods):
                errors.extend(await self._delete_pods(owner, key, list(action.names)))
        status = result.status
        if create_error is not None:
            status = compute_status(owner, result.active, now, create_error=create_error)
        if status_changed(owner.get("status") or {}, status):
            await self._write_status(owner, status)
        if errors:
            raise ReplicationError(f"{self.kind} {key}: " + "; ".join(errors[:3]))
        return result.requeue_after

    async def _create_pods(self, owner: Obj, key: str, count: int) -> str | None:
        """Create ``count`` pods in slow-start batches; returns the first error's message, if any."""
        self.expectations.expect_creations(key, count)
        remaining = count
        for size in slow_start_batches(count):
            results = await asyncio.gather(*(self._create_one(owner) for _ in range(size)),
                                           return_exceptions=True)
            remaining -= size
            failures = [r for r in results if isinstance(r, Exception)]
            for _ in failures:
                self.expectations.creation_observed(key)  # a failed creation will never be observed
            if failures:
                for _ in range(remaining):
                    self.expectations.creation_observed(key)  # skipped: never asked for
                return str(failures[0])
        return None

    async def _create_one(self, owner: Obj) -> None:
        try:
            pod = await self.client.create(pod_from_template(owner))
        except ShoalError as exc:
            await self.ctx.recorder.record(owner, "Warning", "FailedCreate", f"Error creating: {exc}")
            raise
        await self.ctx.recorder.record(owner, "Normal", "SuccessfulCreate", f"Created pod: {name_of(pod)}")

    async def _delete_pods(self, owner: Obj, key: str, names: list[str]) -> list[str]:
        return await delete_pods(self.client, self.ctx.recorder, self.expectations, owner, key, names)

    async def _write_status(self, owner: Obj, status: Obj) -> None:
        patch: dict[str, Any] = {"status": {**status, "conditions": status.get("conditions")}}
        with contextlib.suppress(NotFound):
            await self.client.patch(self.kind, name_of(owner), patch, namespace_of(owner), status=True)


register("replicaset", lambda: ReplicaController("ReplicaSet", "replicaset"))
register("replication", lambda: ReplicaController("ReplicationController", "replication"))
