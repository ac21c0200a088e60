"""Lists: consistent with the datastore whatever API actor answers, or served from the cache at a given floor."""

from __future__ import annotations

import asyncio

import nats
import pytest

from actors.api.revision import SharedRevision
from protocol.errors import BadRequest
from runtime.client import ApiClient
from tests.conftest import ActorRunner, start_api


def cm(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


async def test_a_list_sees_every_acknowledged_write_whichever_actor_answers(runner: ActorRunner,
                                                                            nats_server) -> None:
    actors = [await start_api(runner), await start_api(runner)]
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        for i in range(40):  # the queue group spreads writes and lists over both actors
            created = await client.create(cm(f"c{i}"))
            listing = await client.list("cm", "default")
            assert f"c{i}" in {o["metadata"]["name"] for o in listing.items}
            assert listing.resource_version >= int(created["metadata"]["resourceVersion"])
        assert all(a.requests > 0 for a in actors)
    finally:
        await nc.close()


async def test_a_list_at_a_floor_is_served_from_the_cache(client: ApiClient) -> None:
    created = await client.create(cm("floor"))
    rv = int(created["metadata"]["resourceVersion"])
    listing = await client.list("cm", "default", min_resource_version=rv)
    assert listing.resource_version >= rv and "floor" in {o["metadata"]["name"] for o in listing.items}
    for bad in ("abc", -1, [1], True):
        with pytest.raises(BadRequest):
            await client._list_once("cm", "default", None, None, bad)  # type: ignore[arg-type]


async def test_concurrent_lists_share_datastore_reads_each_read_after_its_list_began() -> None:
    counter = 0
    gate = asyncio.Event()

    async def fetch() -> int:
        nonlocal counter
        counter += 1
        mine = counter
        await gate.wait()
        return mine

    shared = SharedRevision(fetch)
    first = [asyncio.create_task(shared.latest()) for _ in range(20)]
    await asyncio.sleep(0.01)  # read 1 is in flight now: later callers must not use it
    later = [asyncio.create_task(shared.latest()) for _ in range(20)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await asyncio.gather(*first) == [1] * 20
    assert await asyncio.gather(*later) == [2] * 20
    assert shared.reads == 2 and shared.asked == 40

    async def broken() -> int:
        raise RuntimeError("datastore down")

    failing = SharedRevision(broken)
    results = await asyncio.gather(failing.latest(), failing.latest(), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
