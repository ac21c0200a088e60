"""The Job controller: runs a Job's pods to completion (``job_plan`` decides, this module acts).

Watch handlers enqueue Job keys (``namespace/name``): a Job's own events, and the events of the pods it
controls (found by their controller ownerReference, checked against the Job's uid). ``reconcile``
gives ``job_plan.plan`` the Job and its pods and executes the actions:

- creations go out in slow-start batches (1, 2, 4, ...) and stop at the first failing batch;
  expectations (creations/deletions asked for and not yet seen in the pod cache) block further
  creations/deletions for that Job, so a stale cache never starts a completion twice;
- deletions of pods, and of the Job itself once ``ttlSecondsAfterFinished`` has run out (Foreground:
  its pods go first, through the garbage collector, as Kubernetes' TTL controller does);
- the status is written through the status subresource when it changed.

Pods are found through ``OwnerIndex`` (controller uid -> pods), so a pass costs the Job's pods, not
its namespace's. A Job's own changes are handled at once, its pods' changes batched for
``SYNC_BATCH_PERIOD`` as Kubernetes does. Options (``ControllerContext.options``): ``job_backoff_base`` and
``job_backoff_max`` (seconds; 10 and 360 by default) for the replacement back-off, ``job_sync_batch_period``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from actors.controllers.base import ControllerContext, QueueController
from actors.controllers.claim_plan import controller_key
from actors.controllers.expectations import Expectations
from actors.controllers.job_plan import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    CreatePods,
    DeleteJob,
    RecordEvent,
    plan,
    pod_for,
    status_changed,
)
from actors.controllers.manager import register
from actors.controllers.podcontrol import create_expected, delete_pods
from actors.controllers.replication_plan import DeletePods
from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, controller_of, is_deleting, name_of, namespace_of, ref, uid_of
from runtime.informer import Informer

SYNC_BATCH_PERIOD = 1.0
"""Pod events of one Job are gathered this long before a pass (Kubernetes' ``syncJobBatchPeriod``): a Job
of thousands of pods changes with every pod, and one pass a second counts them all."""


class JobSyncError(ShoalError):
    """Some of a pass's creations or deletions failed; the Job is retried with back-off."""

    retryable = True


class OwnerIndex:
    """Objects by the uid of their controller (an informer handler keeps it current)."""

    def __init__(self) -> None:
        self._by_owner: dict[str, dict[str, Obj]] = {}
        self._owner_of: dict[str, str] = {}

    def handle(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        key = ref(obj)
        before = self._owner_of.pop(key, None)
        if before is not None:
            bucket = self._by_owner.get(before)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._by_owner[before]
        owner = controller_of(obj)
        if event != "DELETED" and owner is not None and owner.get("uid"):
            uid = str(owner["uid"])
            self._by_owner.setdefault(uid, {})[key] = obj
            self._owner_of[key] = uid

    def owned_by(self, uid: str) -> list[Obj]:
        return list(self._by_owner.get(uid, {}).values())


class JobController(QueueController):
    name = "job"

    def __init__(self, *, workers: int = 5) -> None:
        super().__init__(workers=workers)
        self.expectations = Expectations()
        self.pod_index = OwnerIndex()

    # -- wiring -------------------------------------------------------------------------------
    def setup(self, ctx: ControllerContext) -> None:
        self.bind(ctx)
        self.backoff_base = float(ctx.options.get("job_backoff_base", BACKOFF_BASE))
        self.backoff_max = float(ctx.options.get("job_backoff_max", BACKOFF_MAX))
        self.batch_period = float(ctx.options.get("job_sync_batch_period", SYNC_BATCH_PERIOD))
        self.pods: Informer = ctx.informers.informer("Pod")
        self.jobs = self.watch_primary("Job")
        self.pods.add_handler(self.pod_index.handle)
        self.pods.add_handler(self._on_pod)
        self.jobs.add_handler(self.on_primary)

    def forget(self, key: str) -> None:
        self.expectations.forget(key)

    # -- handlers -----------------------------------------------------------------------------
    def _job_key(self, pod: Obj) -> str | None:
        return controller_key(pod, "Job", lambda namespace, name: self.jobs.get(f"{namespace}/{name}"))

    def _on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        if pod is None:
            return
        key = self._job_key(pod)
        if key is None:
            return
        if event == "DELETED" or (is_deleting(pod) and (old is None or not is_deleting(old))):
            self.expectations.deletion_observed(key, ref(pod))
        elif event == "ADDED":
            self.expectations.creation_observed(key)
        self.queue.add_after(key, self.batch_period)

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            self.forget(key)
            return None
        pods = self.pod_index.owned_by(uid_of(job))
        result = plan(job, pods, time.time(), backoff_base=self.backoff_base, backoff_max=self.backoff_max,
                      expectations_satisfied=self.expectations.satisfied(key))
        errors: list[str] = []
        for action in result.actions:
            if isinstance(action, DeletePods):
                errors.extend(await self._delete_pods(job, key, list(action.names)))
            elif isinstance(action, CreatePods):
                failed, error = await create_expected(self.expectations, key, action.indexes,
                                                      lambda index: self._create_one(job, index))
                if error is not None:
                    errors.append(error)
                    result.status["active"] = max(0, int(result.status.get("active") or 0) - failed)
            elif isinstance(action, RecordEvent):
                await self.ctx.recorder.record(job, action.type, action.reason, action.message)
            elif isinstance(action, DeleteJob):
                with contextlib.suppress(NotFound):
                    await self.client.delete("Job", name_of(job), namespace_of(job), propagation="Foreground")
                self.log.info("finished job deleted after its TTL", job=key)
                return None
        if status_changed(job.get("status") or {}, result.status):
            await self._write_status(job, result.status)
        if errors:
            raise JobSyncError(f"Job {key}: " + "; ".join(errors[:3]))
        return result.requeue_after

    async def _create_one(self, job: Obj, index: int | None) -> None:
        try:
            pod = await self.client.create(pod_for(job, index))
        except ShoalError as exc:
            await self.ctx.recorder.record(job, "Warning", "FailedCreate", f"Error creating: {exc}")
            raise
        await self.ctx.recorder.record(job, "Normal", "SuccessfulCreate", f"Created pod: {name_of(pod)}")

    async def _delete_pods(self, job: Obj, key: str, names: list[str]) -> list[str]:
        return await delete_pods(self.client, self.ctx.recorder, self.expectations, job, key, names)

    async def _write_status(self, job: Obj, status: Obj) -> None:
        patch: dict[str, Any] = {"status": {k: status.get(k) for k in set(status) | set(job.get("status") or {})}}
        with contextlib.suppress(NotFound):
            await self.client.patch("Job", name_of(job), patch, namespace_of(job), status=True)


register("job", JobController)
