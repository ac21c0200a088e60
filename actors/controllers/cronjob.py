"""The CronJob controller: creates a CronJob's Jobs on schedule (``cronjob_plan`` decides, this acts).

Watch handlers enqueue CronJob keys: a CronJob's own events, and the events of the Jobs it controls
(their controller ownerReference). ``reconcile`` gives ``cronjob_plan.plan`` the CronJob, its Jobs and
the time, executes the actions (Job deletions with Background propagation, then the creation), writes
the status, and asks to be woken at the next schedule time.

A Job listed in ``status.active`` that the Job cache does not hold yet is looked up through the API
before it is dropped from the list (Kubernetes does the same), so a Job just created stays active.
Creating the Job of a schedule twice is impossible: its name is derived from the schedule time, and an
``AlreadyExists`` answer means the Job is there.

Time comes from a ``Clock`` (option ``cronjob_clock``; the wall clock by default). Tests pass a clock
that runs faster than the wall clock, and ``real_seconds`` turns a wait on that clock into real seconds.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Protocol

from actors.controllers.base import ControllerContext, QueueController
from actors.controllers.cronjob_plan import (
    CreateJob,
    DeleteJob,
    RecordEvent,
    job_for,
    job_reference,
    plan,
    status_changed,
)
from actors.controllers.job import OwnerIndex
from actors.controllers.manager import register
from protocol.errors import AlreadyExists, NotFound, ShoalError
from protocol.objects import Obj, controller_of, name_of, namespace_of, uid_of
from runtime.informer import Informer


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""

    def real_seconds(self, seconds: float) -> float:
        """How many real seconds ``seconds`` of this clock take."""


class WallClock:
    def now(self) -> float:
        return time.time()

    def real_seconds(self, seconds: float) -> float:
        return seconds


class CronJobSyncError(ShoalError):
    """A Job could not be created or deleted; the CronJob is retried with back-off."""

    retryable = True


class CronJobController(QueueController):
    name = "cronjob"

    def __init__(self, *, workers: int = 2) -> None:
        super().__init__(workers=workers)
        self.job_index = OwnerIndex()

    def setup(self, ctx: ControllerContext) -> None:
        self.bind(ctx)
        self.clock: Clock = ctx.options.get("cronjob_clock") or WallClock()
        self.jobs: Informer = ctx.informers.informer("Job")
        self.cronjobs = self.watch_primary("CronJob")
        self.jobs.add_handler(self.job_index.handle)
        self.jobs.add_handler(self._on_job)
        self.cronjobs.add_handler(self.on_primary)

    def _on_job(self, event: str, old: Obj | None, new: Obj | None) -> None:
        job = new if new is not None else old
        owner = controller_of(job) if job is not None else None
        if job is None or owner is None or owner.get("kind") != "CronJob":
            return
        self.queue.add(f"{namespace_of(job)}/{owner.get('name')}")

    async def reconcile(self, key: str) -> float | None:
        cronjob = self.cronjobs.get(key)
        if cronjob is None:
            return None
        namespace = namespace_of(cronjob)
        jobs = self.job_index.owned_by(uid_of(cronjob))
        cached = {name_of(j) for j in jobs}
        uncached = frozenset([name for r in (cronjob.get("status") or {}).get("active") or []
                              if (name := str(r.get("name"))) not in cached
                              and await self._exists(name, namespace)])
        result = plan(cronjob, jobs, self.clock.now(), uncached=uncached)
        status = result.status
        errors: list[str] = []
        for action in result.actions:
            if isinstance(action, RecordEvent):
                await self.ctx.recorder.record(cronjob, action.type, action.reason, action.message)
            elif isinstance(action, DeleteJob):
                try:
                    await self.client.delete("Job", action.name, namespace, propagation="Background")
                except NotFound:
                    pass
                except ShoalError as exc:
                    errors.append(str(exc))
                    continue
                await self.ctx.recorder.record(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {action.name}")
            elif isinstance(action, CreateJob):
                created = await self._create(cronjob, action.scheduled)
                if created is None:
                    errors.append(f"could not create the Job of {action.scheduled}")
                    status = {**status, "lastScheduleTime": (cronjob.get("status") or {}).get("lastScheduleTime")}
                else:
                    status = {**status, "active": [*(status.get("active") or []), job_reference(created)]}
        if status_changed(cronjob.get("status") or {}, status):
            patch: dict[str, Any] = {"status": {k: status.get(k)
                                                for k in set(status) | set(cronjob.get("status") or {})}}
            with contextlib.suppress(NotFound):
                await self.client.patch("CronJob", name_of(cronjob), patch, namespace, status=True)
        if errors:
            raise CronJobSyncError(f"CronJob {key}: " + "; ".join(errors[:3]))
        if result.requeue_after is None:
            return None
        return max(0.05, self.clock.real_seconds(result.requeue_after))

    async def _exists(self, name: str, namespace: str | None) -> bool:
        try:
            await self.client.get("Job", name, namespace)
        except NotFound:
            return False
        return True

    async def _create(self, cronjob: Obj, scheduled: float) -> Obj | None:
        job = job_for(cronjob, scheduled)
        try:
            created = await self.client.create(job)
        except AlreadyExists:
            with contextlib.suppress(NotFound):
                existing = await self.client.get("Job", name_of(job), namespace_of(cronjob))
                owner = controller_of(existing)
                if owner is not None and owner.get("uid") == uid_of(cronjob):
                    return existing
            await self.ctx.recorder.record(cronjob, "Warning", "FailedCreate",
                                           f"Error creating job: {name_of(job)} exists and is not ours")
            return None
        except ShoalError as exc:
            await self.ctx.recorder.record(cronjob, "Warning", "FailedCreate", f"Error creating job: {exc}")
            return None
        await self.ctx.recorder.record(cronjob, "Normal", "SuccessfulCreate", f"Created job {name_of(created)}")
        return created


register("cronjob", CronJobController)
