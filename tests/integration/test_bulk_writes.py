"""Bulk writes (the ``system`` lane's: binds, kubelets' status writes, controllers') have a bounded share of the
datastore's write queue; a person's writes (the ``user`` lane) and the tasks a request spawns are told apart."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import nats

from actors.api.lanes import SERVING, Admission, Lane, LaneSettings
from actors.api.server import ApiActor
from protocol import rbac_bootstrap
from protocol.bindings import Binding
from protocol.errors import ShoalError
from runtime.client import ApiClient
from runtime.nats_server import NatsServer
from tests.conftest import ActorRunner, start_api


async def test_a_served_request_and_the_tasks_it_spawns_know_its_lane() -> None:
    seen: dict[str, tuple[Lane | None, Lane | None]] = {}

    async def serve(name: str) -> None:
        async def child() -> Lane | None:
            return SERVING.get()
        seen[name] = (SERVING.get(), await asyncio.create_task(child()))

    async def refuse(name: str, error: ShoalError) -> None:
        raise AssertionError(f"{name} refused: {error}")

    admission: Admission[str] = Admission(serve, refuse, {Lane.HEARTBEAT: LaneSettings(1, 10),
                                                          Lane.USER: LaneSettings(1, 10),
                                                          Lane.SYSTEM: LaneSettings(1, 10)})
    for name, lane in (("s0", Lane.SYSTEM), ("s1", Lane.SYSTEM), ("u0", Lane.USER), ("h0", Lane.HEARTBEAT)):
        admission.submit(lane, name, name)  # s1 waits for s0 (dispatched later, from another task's callback)
    await admission.drain(2)
    assert seen == {"s0": (Lane.SYSTEM, Lane.SYSTEM), "s1": (Lane.SYSTEM, Lane.SYSTEM),
                    "u0": (Lane.USER, Lane.USER), "h0": (Lane.HEARTBEAT, Lane.HEARTBEAT)}
    assert SERVING.get() is None  # nothing leaks into the caller's context


class InFlight:
    """Counts the datastore writes in flight per kind of key around the API actor's real JetStream publish."""

    def __init__(self, publish: Callable[..., Awaitable[Any]]) -> None:
        self.publish = publish
        self.now: Counter[str] = Counter()
        self.most: Counter[str] = Counter()

    async def __call__(self, subject: str, *args: Any, **kwargs: Any) -> Any:
        kind = "pods" if ".pods." in subject else "other"
        self.now[kind] += 1
        self.most[kind] = max(self.most[kind], self.now[kind])
        try:
            return await self.publish(subject, *args, **kwargs)
        finally:
            self.now[kind] -= 1


async def test_bind_batches_keep_to_the_bulk_share_and_a_persons_writes_do_not(
        nats_server: NatsServer, runner: ActorRunner) -> None:
    api: ApiActor = await start_api(runner, bulk_writes=3, group_commit=0)  # each write its own publish, counted
    assert api._store is not None
    spy = InFlight(api._store.js.publish)
    api._store.js.publish = spy  # type: ignore[method-assign]
    nc = await nats.connect(nats_server.url)
    try:
        person = ApiClient(nc)
        pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "default"},
                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}} for i in range(60)]
        await asyncio.gather(*(person.create(p) for p in pods))  # the user lane: not held to the share
        assert spy.most["pods"] > 3
        spy.most.clear()
        scheduler = ApiClient(nc, identity=rbac_bootstrap.SCHEDULER)
        results = await scheduler.bind_many([Binding("default", f"p{i}", "n1") for i in range(60)])
        assert all(isinstance(r, int) for r in results), results  # the system lane: all bound...
        assert spy.most["pods"] == 3  # ...at most 3 writes in the stream at once, from one batch of 60
        bound = await person.list("Pod", "default")
        assert {p["spec"].get("nodeName") for p in bound.items} == {"n1"}
    finally:
        await nc.close()
