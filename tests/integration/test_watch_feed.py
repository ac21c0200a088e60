"""The watch cache's feed (``actors/api/follower.py``) against a real nats-server: every revision is
delivered, superseded ones included, deletions carry their final state, and a gap in the change stream
ends every watch with ``Expired`` (never a silent skip) while the cache reloads from the bucket."""

from __future__ import annotations

import asyncio

import nats
import pytest

from actors.api.store import Record, Store
from actors.api.streams import CHANGES_PREFIX, ensure_streams
from protocol import keys
from protocol.errors import Expired
from runtime.client import ApiClient
from tests.conftest import ActorRunner, start_api
from tests.integration.test_watch import cm, take


async def test_feed_delivers_every_revision_even_superseded_ones(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        store = Store(nc)
        await store.open()
        await ensure_streams(nc)
        key = "configmaps.default.hot"
        revision = await store.create(key, b"0")
        records: list[Record] = []
        loaded: list[int] = []
        gaps: list[tuple[int, int]] = []

        async def on_record(record: Record, pending: int) -> None:
            records.append(record)
            await asyncio.sleep(0.005)  # a slow feed: each revision is superseded before it is read

        async def on_loaded(rev: int) -> None:
            loaded.append(rev)

        async def on_gap(expected: int, got: int) -> None:
            gaps.append((expected, got))

        follower = await store.follow(on_record, on_loaded=on_loaded, on_gap=on_gap)
        for _ in range(100):
            if loaded:
                break
            await asyncio.sleep(0.05)
        revisions = [revision]
        for i in range(1, 200):
            revisions.append(await store.update(key, str(i).encode(), revisions[-1]))
        revisions.append(await store.delete(key, b"final", revisions[-1]))
        for _ in range(200):
            if records and records[-1].revision == revisions[-1]:
                break
            await asyncio.sleep(0.05)
        await follower.unsubscribe()
        assert loaded == [revision] and not gaps
        assert [r.revision for r in records] == revisions
        assert records[-1].deleted and records[-1].value == b"final" and records[-1].key == key
        assert [r.value for r in records[1:-1]] == [str(i).encode() for i in range(1, 200)]
    finally:
        await nc.close()


async def test_a_gap_in_the_change_stream_expires_every_watch_and_reloads(runner: ActorRunner, nats_server) -> None:
    api = await start_api(runner)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        kept = await client.create(cm("kept"))
        gone = await client.create(cm("gone"))
        watch = client.watch("cm", resource_version=gone["metadata"]["resourceVersion"])
        await client.update({**kept, "data": {"v": "1"}})
        assert [e.type for e in await take(watch, 1)] == ["MODIFIED"]
        # A change the feed never gets (as when a republish is lost while a NATS server dies): a message on
        # the change stream whose revision is ahead of the next one. The feed must see the jump.
        last = await Store(nc).last_revision()
        for ahead in (10, 20):  # twice: the second jump comes while the first reload is under way
            await nc.jetstream().publish(f"{CHANGES_PREFIX}.configmaps.default.forged", b"", headers={
                "Nats-Sequence": str(last + ahead),
                "Nats-Subject": f"{keys.KV_SUBJECT_PREFIX}configmaps.default.forged"})
        with pytest.raises(Expired, match="list again"):
            await take(watch, 1)
        await watch.close()
        listing = await client.list("cm")  # served once the reload is complete, from the bucket
        assert sorted(o["metadata"]["name"] for o in listing.items) == ["gone", "kept"]
        async with client.watch("cm", resource_version=listing.resource_version) as fresh:
            await client.create(cm("after"))
            assert [e.object["metadata"]["name"] for e in await take(fresh, 1)] == ["after"]
        assert api.cache.ready.is_set()
    finally:
        await nc.close()
