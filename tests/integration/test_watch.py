"""Watches: order, resumption without loss across client restarts, Expired past the window, filters."""

from __future__ import annotations

import asyncio

import nats
import pytest

from protocol.errors import Expired
from runtime.client import ApiClient
from runtime.watch import Watch, WatchEvent
from tests.conftest import ActorRunner, start_api


def cm(name: str, value: str = "0", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
            "data": {"v": value}}


async def take(watch: Watch, n: int, timeout: float = 10.0) -> list[WatchEvent]:
    out: list[WatchEvent] = []

    async def collect() -> None:
        async for event in watch:
            out.append(event)
            if len(out) == n:
                return

    await asyncio.wait_for(collect(), timeout)
    return out


async def test_watch_delivers_changes_in_order(client: ApiClient) -> None:
    start = await client.list("configmaps")
    async with client.watch("configmaps", "default", resource_version=start.resource_version) as watch:
        created = await client.create(cm("a"))
        created["data"] = {"v": "1"}
        await client.update(created)
        await client.delete("cm", "a")
        events = await take(watch, 3)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert [e.object["data"]["v"] for e in events] == ["0", "1", "1"]
    revs = [e.resource_version for e in events]
    assert revs == sorted(revs) and len(set(revs)) == 3


async def test_watch_label_selector_turns_label_changes_into_added_and_deleted(client: ApiClient) -> None:
    start = await client.list("configmaps")
    async with client.watch("cm", label_selector="app=web", resource_version=start.resource_version) as watch:
        obj = await client.create(cm("x"))
        await client.create(cm("y", app="web"))
        obj["metadata"]["labels"] = {"app": "web"}
        obj = await client.update(obj)
        obj["metadata"]["labels"] = {"app": "db"}
        await client.update(obj)
        events = await take(watch, 3)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "y"), ("ADDED", "x"), ("DELETED", "x")]


async def test_watch_without_resource_version_starts_with_current_objects(client: ApiClient) -> None:
    await client.create(cm("pre"))
    async with client.watch("cm") as watch:
        events = await take(watch, 1)
    assert events[0].type == "ADDED" and events[0].object["metadata"]["name"] == "pre"


async def test_resume_after_client_restart_loses_nothing(nats_server, client: ApiClient) -> None:
    """A watcher that stops, misses writes, and comes back at its last resourceVersion gets every one."""
    start = await client.list("configmaps")
    nc2 = await nats.connect(nats_server.url)
    watcher_client = ApiClient(nc2)
    watch = watcher_client.watch("cm", resource_version=start.resource_version)
    writer = asyncio.create_task(_write_many(client, 60))
    seen = await take(watch, 20)
    last_rv = seen[-1].resource_version
    await watch.close()
    await nc2.close()  # the client process "dies"
    await writer
    nc3 = await nats.connect(nats_server.url)
    try:
        resumed = ApiClient(nc3).watch("cm", resource_version=last_rv)
        rest = await take(resumed, 40)
        await resumed.close()
    finally:
        await nc3.close()
    names = [e.object["metadata"]["name"] for e in seen + rest]
    assert names == [f"obj-{i}" for i in range(60)]


async def _write_many(client: ApiClient, n: int) -> None:
    for i in range(n):
        await client.create(cm(f"obj-{i}"))


async def test_watch_too_old_gets_expired(runner: ActorRunner, nats_server) -> None:
    await start_api(runner, window=10)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        first = await client.create(cm("first"))
        for i in range(20):
            await client.create(cm(f"n-{i}"))
        watch = client.watch("cm", resource_version=first["metadata"]["resourceVersion"])
        with pytest.raises(Expired, match="list again"):
            await take(watch, 1)
        await watch.close()
        listing = await client.list("cm")
        async with client.watch("cm", resource_version=listing.resource_version) as fresh:
            await client.create(cm("after"))
            events = await take(fresh, 1)
        assert events[0].object["metadata"]["name"] == "after"
    finally:
        await nc.close()


async def test_watch_survives_its_api_actor_stopping(runner: ActorRunner, nats_server) -> None:
    """Two API actors; the one holding the watch stops; the watch resumes on the other, losing nothing."""
    first = await start_api(runner)
    await start_api(runner)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        start = await client.list("cm")
        watch = client.watch("cm", resource_version=start.resource_version)
        await client.create(cm("before"))
        events = await take(watch, 1)
        # stop whichever actor holds the watch: try the first; if it is not the holder stop nothing
        holder_stop = next((stop for stop, _ in runner.running
                            if watch._control and first.id in watch._control), None)
        if holder_stop is not None:
            holder_stop.set()
        await client.create(cm("after-1"))
        await client.create(cm("after-2"))
        events += await take(watch, 2, timeout=40)
        await watch.close()
        assert [e.object["metadata"]["name"] for e in events] == ["before", "after-1", "after-2"]
    finally:
        await nc.close()


async def test_kubelet_style_field_selector_watch_sees_only_its_node(client: ApiClient) -> None:
    start = await client.list("pods")
    spec = {"containers": [{"name": "c", "image": "i"}]}
    async with client.watch("pods", field_selector="spec.nodeName=n1",
                            resource_version=start.resource_version) as watch:
        for name in ("p1", "p2"):
            await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
        await client.bind("p2", "default", "n2")
        await client.bind("p1", "default", "n1")
        events = await take(watch, 1)
        await asyncio.sleep(0.3)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("ADDED", "p1")]
