"""A revision the watch cache's feed skipped is never skipped silently (docs/RELIABILITY.md, findings 1-2).

The KV bucket keeps one revision per key, so a revision superseded before the API actor's feed reads it
is gone. Each write names the revision it replaced (``Nats-Expected-Last-Subject-Sequence``), so the next
write of the key shows the skip; every watch of that kind that may have missed it ends with ``Expired``."""

from __future__ import annotations

import nats
import pytest

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
