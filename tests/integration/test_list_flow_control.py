"""Big lists are flow-controlled: a client that asks for it receives a bounded number of chunks ahead of
what it acknowledged, so a NATS server never holds more for it than its slow-consumer limit."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.msg import Msg

from protocol import codec
from runtime.client import ApiClient
from tests.conftest import ActorRunner, start_api

OBJECTS = 30
WINDOW = 2


def big_cm(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"big-{i}"}, "data": {"k": "x" * 100_000}}


async def fill(client: ApiClient) -> None:
    await asyncio.gather(*(client.create(big_cm(i)) for i in range(OBJECTS)))


async def collect(sub, quiet: float) -> list[Msg]:
    got = []
    while True:
        try:
            got.append(await sub.next_msg(timeout=quiet))
        except nats.errors.TimeoutError:
            return got


async def test_a_client_that_acknowledges_gets_a_window_of_chunks_ahead(runner: ActorRunner, nats_server) -> None:
    await start_api(runner, list_window=WINDOW)
    nc = await nats.connect(nats_server.url)
    try:
        await fill(ApiClient(nc))
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("shoal.api.list.configmaps.default", codec.encode({"acks": True}), reply=inbox)
        first = await collect(sub, quiet=1.0)
        # chunks 0..WINDOW-1 carry no reply subject, WINDOW..2*WINDOW-1 do; nothing more comes unacknowledged
        assert [codec.decode(m.data)["chunk"] for m in first] == list(range(2 * WINDOW))
        assert [bool(m.reply) for m in first] == [False] * WINDOW + [True] * WINDOW
        items = sum(len(codec.decode(m.data)["items"]) for m in first)
        last: dict = {}
        for m in first[WINDOW:]:
            await nc.publish(m.reply, codec.encode({"chunk": codec.decode(m.data)["chunk"]}))
        while True:
            m = await sub.next_msg(timeout=5)
            last = codec.decode(m.data)
            items += len(last["items"])
            if not last["more"]:
                break
            await nc.publish(m.reply, codec.encode({"chunk": last["chunk"]}))
        assert last["chunk"] >= 2 * WINDOW and items == OBJECTS
    finally:
        await nc.close()


async def test_lists_without_acknowledgements_and_through_the_client_are_complete(runner: ActorRunner,
                                                                                  nats_server) -> None:
    await start_api(runner, list_window=WINDOW)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        await fill(client)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("shoal.api.list.configmaps.default", codec.encode({}), reply=inbox)
        plain = [codec.decode(m.data) for m in await collect(sub, quiet=1.0)]
        assert len(plain) > 2 * WINDOW and not plain[-1]["more"]
        assert sum(len(c["items"]) for c in plain) == OBJECTS
        listing = await client.list("cm", "default")
        assert sorted(o["metadata"]["name"] for o in listing.items) == sorted(f"big-{i}" for i in range(OBJECTS))
    finally:
        await nc.close()


async def test_list_chunks_hands_over_each_chunk_as_it_comes(runner: ActorRunner, nats_server) -> None:
    """``ApiClient.list_chunks``: the same objects as ``list``, in several chunks, the list's version on the last
    one only (the gateway's node sums reduce each chunk and never hold the whole list)."""
    await start_api(runner, list_window=WINDOW)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        await fill(client)
        chunks = [(len(items), version) async for items, version in client.list_chunks("cm", "default")]
        listing = await client.list("cm", "default")
        assert len(chunks) > 2 * WINDOW and sum(n for n, _ in chunks) == OBJECTS == len(listing.items)
        assert [v for _, v in chunks[:-1]] == [0] * (len(chunks) - 1)
        assert chunks[-1][1] == listing.resource_version > 0
    finally:
        await nc.close()
