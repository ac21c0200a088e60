"""``SHOAL_CHANGES`` against a real nats-server: it holds every write of the datastore, once.

The API actors publish each acknowledged write there themselves (``Store._tell_change``). The bucket's own
republish, used before, copied the write's ``Nats-Expected-Last-Subject-Sequence`` header, which
``SHOAL_CHANGES`` checked against its *own* last sequence of the subject: once one message more or less was
in either stream (a message published there directly, a memory replica lost, the stream created after the
bucket had writes), compare-and-swap writes were refused there (a three-server run, eight writers on one
key: 725 of 833 writes missing; docs/RELIABILITY.md, finding 5). A bucket made that way loses its
republish when an API actor opens it."""

from __future__ import annotations

import nats
from nats.js import api

from actors.api.store import STREAM, Store
from actors.api.streams import CHANGES_PREFIX, CHANGES_STREAM, ensure_streams
from protocol import keys


async def _republished(nc: nats.NATS) -> list[int]:
    sub = await nc.jetstream().subscribe(f"{CHANGES_PREFIX}.>", ordered_consumer=True,
                                         deliver_policy=api.DeliverPolicy.ALL)
    out = []
    info = await nc.jetstream().stream_info(CHANGES_STREAM)
    for _ in range(info.state.messages):
        msg = await sub.next_msg(timeout=5)
        if "Nats-Sequence" in (msg.headers or {}):
            out.append(int(msg.headers["Nats-Sequence"]))  # type: ignore[index]
    await sub.unsubscribe()
    return out


async def _updates(store: Store, key: str, n: int) -> list[int]:
    revisions = [await store.create(key, b"0")]
    for i in range(n):
        revisions.append(await store.update(key, str(i).encode(), revisions[-1]))
    return revisions


async def test_changes_stream_holds_every_write_while_sequences_agree(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        store = Store(nc)
        await store.open()
        await ensure_streams(nc)
        revisions = await _updates(store, "configmaps.default.agree", 50)
        assert await _republished(nc) == revisions
    finally:
        await nc.close()


async def test_changes_stream_holds_every_write_when_sequences_differ(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        store = Store(nc)
        await store.open()
        await ensure_streams(nc)
        await nc.jetstream().publish(f"{CHANGES_PREFIX}.unrelated", b"one message more in SHOAL_CHANGES")
        revisions = await _updates(store, "configmaps.default.differ", 50)
        kept = await _republished(nc)
        assert kept == revisions, f"{len(revisions) - len(kept)} of {len(revisions)} writes not in SHOAL_CHANGES"
    finally:
        await nc.close()


async def test_a_bucket_that_republished_stops_and_each_change_is_told_once(nats_server) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await js.create_key_value(api.KeyValueConfig(  # as earlier versions made it
            bucket=keys.BUCKET, history=1, storage=api.StorageType.FILE, direct=True,
            republish=api.RePublish(src=f"{keys.KV_SUBJECT_PREFIX}>", dest=f"{CHANGES_PREFIX}.>")))
        await ensure_streams(nc)
        store = Store(nc)
        await store.open()
        assert (await js.stream_info(STREAM)).config.republish is None
        revisions = await _updates(store, "configmaps.default.moved", 20)
        revisions.append(await store.delete("configmaps.default.moved", b"final", revisions[-1]))
        assert await _republished(nc) == revisions  # each once, deletion included
    finally:
        await nc.close()
