"""The binder: the binds the scheduler decided, sent to the API in batches, results handed back one by one.

Decisions are queued with ``submit``; up to ``max_in_flight`` batch requests are outstanding at once, each
carrying at most ``max_batch`` bindings. A batch leaves as soon as a request slot is free: at low load a
bind goes out alone at once (no added latency), under load the binds decided while earlier batches are in
flight pile up and leave together (the batch grows with the load, as Nagle's algorithm without its delay).

Each binding's outcome reaches ``on_done(item, error)``: ``None`` when bound, ``BindRejected`` when the API
refused it for good (the pod is gone, bound elsewhere, re-created), ``BindFailed`` when it is worth
retrying (timeout, no API actor). An API actor that does not know batched binds (it answers the batch
``BadRequest``) gets single binds from then on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from actors.scheduler.errors import BindFailed, BindRejected, SchedulerError
from protocol.bindings import Binding
from protocol.errors import BadRequest, Conflict, NotFound, ShoalError
from protocol.objects import Obj


class BindApi(Protocol):
    """The part of ``runtime.client.ApiClient`` the binder uses."""

    async def bind_many(self, bindings: list[Binding]) -> list[int | ShoalError]: ...

    async def bind(self, name: str, namespace: str, node: str, resource_version: str | None = None, *,
                   uid: str | None = None) -> Obj: ...


@dataclass(eq=False)
class PendingBind:
    binding: Binding
    pod: Obj
    context: object = None
    """Whatever the caller needs back with the outcome (the scheduling decision)."""
    queued_at: float = field(default=0.0)


def classify(error: ShoalError) -> SchedulerError:
    """A refusal for good (the pod is gone, bound elsewhere, re-created) or a failure worth retrying."""
    if isinstance(error, NotFound):
        return BindRejected(f"pod is gone: {error.message}")
    if isinstance(error, Conflict):
        return BindRejected(error.message, conflict=True)
    return BindFailed(error.message)


class Binder:
    def __init__(self, api: BindApi, on_done: Callable[[PendingBind, SchedulerError | None], None], *,
                 max_batch: int = 128, max_in_flight: int = 4) -> None:
        self.api = api
        self.on_done = on_done
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.batched = True
        self.batches = 0
        self._queue: deque[PendingBind] = deque()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, item: PendingBind) -> None:
        self._queue.append(item)
        self._wakeup.set()

    async def run(self) -> None:
        """Send batches until cancelled; on cancellation the queued and in-flight binds are abandoned
        (their pods stay assumed until the caller forgets them)."""
        try:
            while True:
                await self._slots.acquire()
                while not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                task = asyncio.create_task(self._send(batch), name=f"bind-batch-{self.batches}")
                self.batches += 1
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _send(self, batch: list[PendingBind]) -> None:
        try:
            if self.batched:
                try:
                    results = await self.api.bind_many([item.binding for item in batch])
                except BadRequest:
                    self.batched = False  # an API actor from before batched binds
                else:
                    for item, result in zip(batch, results, strict=True):
                        self.on_done(item, classify(result) if isinstance(result, ShoalError) else None)
                    return
            await asyncio.gather(*(self._send_one(item) for item in batch))
        except ShoalError as exc:
            for item in batch:
                self.on_done(item, BindFailed(exc.message))
        finally:
            self._slots.release()

    async def _send_one(self, item: PendingBind) -> None:
        b = item.binding
        try:
            await self.api.bind(b.name, b.namespace, b.node, b.resource_version, uid=b.uid)
        except ShoalError as exc:
            self.on_done(item, classify(exc))
        else:
            self.on_done(item, None)
