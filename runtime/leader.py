"""Leader election through a Lease in the datastore, renewed by compare-and-swap.

The holder renews every ``renew_every`` seconds. A candidate takes the lease over only when it has
watched the lease's resourceVersion stay unchanged for ``lease_duration`` seconds on its own clock
(client-go's rule: no trust in other machines' clocks). A leader steps down ``0.8 * lease_duration``
after the *start* of its last successful renewal, whatever is in flight (client-go's renew deadline):
a candidate, which first saw that renewal after it was sent, cannot take over before ``lease_duration``
after it, so the two never lead at once (up to how fast the leading work obeys its cancellation; a
process frozen past its deadline steps down when it next runs, before any request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from protocol.errors import AlreadyExists, Conflict, NotFound, ShoalError
from protocol.objects import Obj, format_micro_time, meta
from runtime.client import ApiClient

LEASE_NAMESPACE = "kube-system"


class LeaderElector:
    def __init__(self, client: ApiClient, name: str, identity: str, *, lease_duration: float = 10.0,
                 renew_every: float = 2.0, log: Any = None) -> None:
        self.client = client
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_every = renew_every
        self.log = log
        self.is_leader = False
        self._observed_rv: str | None = None
        self._observed_at = 0.0
        self._last_renew = 0.0

    def _lease(self, transitions: int, acquire: str | None = None) -> Obj:
        now = format_micro_time(time.time())
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE},
            "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                     "acquireTime": acquire or now, "renewTime": now, "leaseTransitions": transitions},
        }

    async def try_acquire_or_renew(self) -> bool:
        try:
            current = await self.client.get("Lease", self.name, LEASE_NAMESPACE)
        except NotFound:
            try:
                await self.client.create(self._lease(0))
                return True
            except AlreadyExists:
                return False
        rv = meta(current)["resourceVersion"]
        if rv != self._observed_rv:
            self._observed_rv, self._observed_at = rv, time.monotonic()
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity")
        expired = time.monotonic() - self._observed_at > self.lease_duration
        if holder not in (self.identity, None, "") and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        lease = self._lease(transitions, spec.get("acquireTime") if holder == self.identity else None)
        meta(lease)["resourceVersion"] = rv
        try:
            updated = await self.client.update(lease)
        except Conflict:
            return False
        self._observed_rv, self._observed_at = meta(updated)["resourceVersion"], time.monotonic()
        return True

    async def release(self) -> None:
        if not self.is_leader:
            return
        try:
            current = await self.client.get("Lease", self.name, LEASE_NAMESPACE)
            if (current.get("spec") or {}).get("holderIdentity") == self.identity:
                current["spec"]["holderIdentity"] = ""
                await self.client.update(current)
        except ShoalError:
            pass
        self.is_leader = False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign forever; while leading, run ``lead()``; cancel it as soon as leadership is lost."""
        while True:
            leading_task: asyncio.Task[None] | None = None
            try:
                while True:
                    began = time.monotonic()
                    if await self._safe_attempt():
                        break
                    await asyncio.sleep(self.renew_every)
                self.is_leader = True
                self._last_renew = began
                if self.log is not None:
                    self.log.info("became leader", lease=self.name, identity=self.identity)
                leading_task = asyncio.create_task(lead(), name=f"leading-{self.name}")
                while not leading_task.done():
                    deadline = self._last_renew + self.lease_duration * 0.8
                    await asyncio.sleep(max(0.0, min(self.renew_every, deadline - time.monotonic())))
                    began = time.monotonic()
                    if began >= deadline:
                        break
                    try:  # a renewal still unanswered at the deadline is given up: step down on time
                        renewed = await asyncio.wait_for(self._safe_attempt(), deadline - began)
                    except TimeoutError:
                        renewed = False
                    if renewed:
                        self._last_renew = began
                if self.log is not None:
                    self.log.warning("lost leadership", lease=self.name, identity=self.identity)
            finally:
                if leading_task is not None and not leading_task.done():
                    leading_task.cancel()
                    await asyncio.gather(leading_task, return_exceptions=True)
                if leading_task is not None and leading_task.done() and not leading_task.cancelled():
                    exc = leading_task.exception()
                    if exc is not None and self.log is not None:
                        self.log.error("leader work crashed", lease=self.name, error=repr(exc))
                await self.release()

    async def _safe_attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except ShoalError as exc:
            if self.log is not None:
                self.log.warning("lease request failed", lease=self.name, error=str(exc))
            return False
