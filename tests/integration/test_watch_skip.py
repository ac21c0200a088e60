"""A revision the watch cache's feed skipped is never skipped silently (docs/RELIABILITY.md, findings 1-2).

The KV bucket keeps one revision per key, so a revision superseded before the API actor's feed reads it
is gone. Each write names the revision it replaced (``Nats-Expected-Last-Subject-Sequence``), so the next
write of the key shows the skip; every watch of that kind that may have missed it ends with ``Expired``."""

from __future__ import annotations

import asyncio

import nats
import pytest

from actors.api.store import Record
from protocol import codec
from protocol.errors import Expired
from runtime.client import ApiClient
from tests.conftest import ActorRunner, start_api
from tests.integration.test_watch import cm, take


async def test_a_skipped_revision_expires_the_kinds_watches(runner: ActorRunner, nats_server) -> None:
    api = await start_api(runner)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        hot = await client.create(cm("hot"))
        start = int(hot["metadata"]["resourceVersion"])
        cms = client.watch("cm", resource_version=start)
        hot = await client.update({**hot, "data": {"v": "1"}})
        assert [e.type for e in await take(cms, 1)] == ["MODIFIED"]
        # The feed skipped the revision before: the cache holds "hot" one revision behind what the next
        # write replaces (as when that revision was superseded before the feed read it).
        api.cache.objects["configmaps"]["configmaps.default.hot"].rev -= 1
        updated = await client.update({**hot, "data": {"v": "2"}})
        with pytest.raises(Expired, match="list again"):
            await take(cms, 1)
        await cms.close()
        rev = int(updated["metadata"]["resourceVersion"])
        with pytest.raises(Expired):  # no resume from before the skip
            await take(client.watch("cm", resource_version=start), 1)
        listing = await client.list("cm")
        assert [o["data"]["v"] for o in listing.items] == ["2"] and listing.resource_version >= rev
        async with client.watch("cm", resource_version=listing.resource_version) as fresh:
            await client.create(cm("after"))
            assert [e.object["metadata"]["name"] for e in await take(fresh, 1)] == ["after"]
    finally:
        await nc.close()


async def test_writes_in_order_are_not_taken_for_skips(runner: ActorRunner, nats_server) -> None:
    await start_api(runner)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        obj = await client.create(cm("steady"))
        async with client.watch("cm", resource_version=obj["metadata"]["resourceVersion"]) as watch:
            for i in range(1, 21):
                obj = await client.update({**obj, "data": {"v": str(i)}})
            await client.delete("cm", obj["metadata"]["name"], namespace="default")
            await client.create(cm("steady", "again"))  # re-created: it replaces the deletion marker
            events = await take(watch, 22, timeout=5)
        assert [e.type for e in events] == ["MODIFIED"] * 20 + ["DELETED", "ADDED"]
    finally:
        await nc.close()


def secret_record(name: str, rev: int) -> Record:
    raw = codec.packb({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}})
    return Record(f"secrets.default.{name}", rev, raw, False, 0)


async def test_a_hole_in_the_feed_holds_every_watch_until_a_write_names_it(runner: ActorRunner,
                                                                           nats_server) -> None:
    """Finding 11 a: between a hole in the feed and the write that names its key, no watch hears of a later
    change; then only the named kind's watches expire and the others carry on, nothing lost."""
    api = await start_api(runner)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        hot = await client.create(cm("hot"))
        start = api.cache.rev
        async with client.watch("cm", resource_version=start) as cms, \
                client.watch("secret", resource_version=start) as secrets:
            # start+1 was superseded before the feed read it; a secret written after it arrives first
            await api._on_record(secret_record("s1", start + 2), pending=5)
            with pytest.raises(asyncio.TimeoutError):
                await take(secrets, 1, timeout=0.5)  # held: the hole may be a secret's
            raw = codec.packb({**hot, "data": {"v": "2"}})
            await api._on_record(Record("configmaps.default.hot", start + 3, raw, False, start + 1), pending=0)
            with pytest.raises(Expired, match="list again"):
                await take(cms, 1)
            events = await take(secrets, 1)
            seen = [(e.type, e.object["metadata"]["name"], e.resource_version) for e in events]
            assert seen == [("ADDED", "s1", start + 2)]
        assert api.health()["feedGaps"] == {"revisions": 1, "named": 1, "open": 0}
    finally:
        await nc.close()


async def test_a_hole_no_write_names_expires_every_watch_that_may_have_missed_it(runner: ActorRunner,
                                                                                nats_server) -> None:
    api = await start_api(runner)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        await client.create(cm("hot"))
        start = api.cache.rev
        async with client.watch("cm", resource_version=start) as cms, \
                client.watch("secret", resource_version=start) as secrets:
            # the feed caught up (nothing pending) and no write named start+1: it may have been any kind's
            await api._on_record(secret_record("s1", start + 2), pending=0)
            for watch in (cms, secrets):
                with pytest.raises(Expired, match="list again"):
                    await take(watch, 1)
        with pytest.raises(Expired):
            await take(client.watch("secret", resource_version=start), 1)
    finally:
        await nc.close()
