"""Bookmarks per connection: idle watches that name a ``bookmarks`` inbox share one message there."""

from __future__ import annotations

import asyncio

import nats
import pytest

import actors.api.server
import runtime.watch
from protocol import codec
from protocol.errors import BadRequest
from runtime.client import ApiClient
from runtime.watch import own_inbox


@pytest.fixture
def fast_bookmarks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actors.api.server, "BOOKMARK_EVERY", 0.5)


async def collect(sub: nats.aio.subscription.Subscription, seconds: float) -> list[dict]:
    out = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            out.append(codec.decode((await sub.next_msg(timeout=left)).data))
        except nats.errors.TimeoutError:
            break
    return out


async def test_idle_watches_share_one_bookmark_per_inbox_old_clients_keep_theirs(
        client: ApiClient, fast_bookmarks: None) -> None:
    nc = client.nc
    bm, w0, w1i, w2i = [await own_inbox(nc, k) for k in ("b", "w", "w", "w")]
    shared = await nc.subscribe(bm)
    w1, w2, old = [await nc.subscribe(i) for i in (w0, w1i, w2i)]
    ids = []
    for inbox, bookmarks in ((w0, bm), (w1i, bm), (w2i, None)):
        reply = await client.request("shoal.api.watch.configmaps._all", {"inbox": inbox, "bookmarks": bookmarks})
        ids.append(reply["watch"])
    await client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "elsewhere"}})
    lines, own, legacy = await asyncio.gather(collect(shared, 2.5), collect(w1, 2.5), collect(old, 2.5))
    assert lines, "no shared bookmark arrived"
    named = {entry["watch"]: entry for message in lines for entry in message["bookmarks"]}
    assert set(named) == {ids[0], ids[1]}
    assert all(e["seq"] == 1 for e in named.values())  # each watch got only its first (initial) message
    assert max(e["resourceVersion"] for e in named.values()) >= 1
    assert [m["seq"] for m in own] == [1]  # nothing else on the watch's own inbox
    assert len(legacy) >= 2 and [m["seq"] for m in legacy] == list(range(1, len(legacy) + 1))
    assert all(m["events"] == [] for m in legacy[1:])  # per-watch bookmarks for clients without the field
    for sub in (shared, w1, w2, old):
        await sub.unsubscribe()


async def test_a_bookmarks_field_that_is_no_inbox_is_refused(client: ApiClient) -> None:
    inbox = await own_inbox(client.nc, "w")
    for bad in ("shoal.api.create.pods.default", "_INBOX.*", 5, inbox.rpartition(".")[0] + ".*"):
        with pytest.raises(BadRequest):
            await client.request("shoal.api.watch.pods._all", {"inbox": inbox, "bookmarks": bad})


async def test_a_client_watch_kept_alive_by_shared_bookmarks_follows_the_revision(
        client: ApiClient, fast_bookmarks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime.watch, "SILENCE_LIMIT", 2.5)
    events = []
    async with client.watch("Pod", "default") as watch:
        start_rv = watch.resource_version or 0
        consumer = asyncio.create_task(_drain(watch, events))
        written = await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}})
        await asyncio.sleep(4.0)  # longer than the silence limit, with no pod change at all
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        assert watch.restarts == 0 and events == []
        assert (watch.resource_version or 0) >= int(written["metadata"]["resourceVersion"]) > start_rv


async def _drain(watch: runtime.watch.Watch, out: list) -> None:
    async for event in watch:
        out.append(event)
