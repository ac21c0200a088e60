"""The binder: batches grow with the load, outcomes are handed back per pod, old API actors get single binds."""

from __future__ import annotations

import asyncio

from actors.scheduler.binder import Binder, PendingBind
from actors.scheduler.errors import BindFailed, BindRejected, SchedulerError
from protocol.bindings import Binding
from protocol.errors import BadRequest, Conflict, NotFound, ShoalError, Unavailable
from protocol.objects import Obj


class FakeApi:
    def __init__(self, *, batched: bool = True) -> None:
        self.batched = batched
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.release = asyncio.Event()
        self.release.set()
        self.refuse: dict[str, ShoalError] = {}
        self.fail_batch: ShoalError | None = None

    async def bind_many(self, bindings: list[Binding]) -> list[int | ShoalError]:
        if not self.batched:
            raise BadRequest("bind needs a subject ending in .<namespace>.<name>")
        self.batches.append([b.name for b in bindings])
        await self.release.wait()
        if self.fail_batch is not None:
            raise self.fail_batch
        return [self.refuse.get(b.name, i + 1) for i, b in enumerate(bindings)]

    async def bind(self, name: str, namespace: str, node: str, resource_version: str | None = None, *,
                   uid: str | None = None) -> Obj:
        self.singles.append(name)
        if name in self.refuse:
            raise self.refuse[name]
        return {"metadata": {"name": name}}


def item(name: str) -> PendingBind:
    return PendingBind(Binding("default", name, "node-1"), {"metadata": {"name": name}})


async def run_until(binder: Binder, outcomes: dict[str, SchedulerError | None], count: int) -> None:
    task = asyncio.create_task(binder.run())
    try:
        for _ in range(200):
            if len(outcomes) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {len(outcomes)} of {count} outcomes")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_lone_bind_leaves_at_once_and_a_burst_is_batched() -> None:
    api = FakeApi()
    outcomes: dict[str, SchedulerError | None] = {}
    binder = Binder(api, lambda i, e: outcomes.__setitem__(i.binding.name, e), max_batch=50, max_in_flight=1)
    task = asyncio.create_task(binder.run())
    binder.submit(item("first"))
    for _ in range(100):
        if outcomes:
            break
        await asyncio.sleep(0.01)
    assert api.batches == [["first"]] and outcomes == {"first": None}
    api.release.clear()  # the next batch stays in flight while 120 more binds are decided
    binder.submit(item("p0"))
    await asyncio.sleep(0.02)
    for i in range(1, 121):
        binder.submit(item(f"p{i}"))
    api.release.set()
    for _ in range(200):
        if len(outcomes) == 122:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [len(b) for b in api.batches] == [1, 1, 50, 50, 20]
    assert all(e is None for e in outcomes.values()) and len(outcomes) == 122


async def test_per_item_refusals_and_whole_batch_failures_are_classified() -> None:
    api = FakeApi()
    api.refuse = {"gone": NotFound("no such pod"), "taken": Conflict("already bound"),
                  "slow": Unavailable("datastore did not acknowledge")}
    outcomes: dict[str, SchedulerError | None] = {}
    binder = Binder(api, lambda i, e: outcomes.__setitem__(i.binding.name, e))
    for name in ("ok", "gone", "taken", "slow"):
        binder.submit(item(name))
    await run_until(binder, outcomes, 4)
    assert outcomes["ok"] is None
    assert isinstance(outcomes["gone"], BindRejected) and not outcomes["gone"].conflict
    assert isinstance(outcomes["taken"], BindRejected) and outcomes["taken"].conflict
    assert isinstance(outcomes["slow"], BindFailed)

    api.refuse, api.fail_batch = {}, Unavailable("no API actor")
    outcomes.clear()
    binder.submit(item("a"))
    binder.submit(item("b"))
    await run_until(binder, outcomes, 2)
    assert all(isinstance(e, BindFailed) for e in outcomes.values())


async def test_an_api_actor_without_batched_binds_gets_single_binds() -> None:
    api = FakeApi(batched=False)
    api.refuse = {"taken": Conflict("already bound")}
    outcomes: dict[str, SchedulerError | None] = {}
    binder = Binder(api, lambda i, e: outcomes.__setitem__(i.binding.name, e))
    for name in ("a", "taken", "b"):
        binder.submit(item(name))
    await run_until(binder, outcomes, 3)
    assert not binder.batched and sorted(api.singles) == ["a", "b", "taken"]
    assert outcomes["a"] is None and outcomes["b"] is None and isinstance(outcomes["taken"], BindRejected)
