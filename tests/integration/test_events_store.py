"""Events kept in the SHOAL_EVENTS stream, not in the datastore: every verb through the API as for any kind."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

from actors.api.server import ApiActor
from actors.api.store import STREAM as KV_STREAM
from protocol.errors import AlreadyExists, Conflict, Invalid, NotFound
from runtime.client import ApiClient
from runtime.events import EventRecorder


def event(name: str, involved: str, *, kind: str = "Pod", reason: str = "Pulled", ns: str = "default",
          labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns, **({"labels": labels} if labels else {})},
            "involvedObject": {"kind": kind, "name": involved, "namespace": ns},
            "reason": reason, "message": f"{reason} {involved}", "type": "Normal", "count": 1}


async def kv_last(client: ApiClient) -> int:
    return int((await client.nc.jetstream().stream_info(KV_STREAM)).state.last_seq)


async def test_every_verb_on_events_and_no_datastore_write(client: ApiClient, api: ApiActor) -> None:
    before = await kv_last(client)
    created = await client.create(event("web-1.a", "web-1"))
    assert created["metadata"]["uid"] and created["metadata"]["creationTimestamp"]
    got = await client.get("Event", "web-1.a", "default")
    assert got["message"] == "Pulled web-1" and got["metadata"]["resourceVersion"] == created["metadata"][
        "resourceVersion"]
    with pytest.raises(AlreadyExists):
        await client.create(event("web-1.a", "web-1"))
    with pytest.raises(AlreadyExists):  # the same name about another object is the same Event name too
        await client.create(event("web-1.a", "other"))

    got["count"] = 2
    updated = await client.update(got)
    assert updated["count"] == 2 and int(updated["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"])
    with pytest.raises(Conflict):
        await client.update({**got, "count": 3})  # still at the version before the update
    moved = await client.get("Event", "web-1.a", "default")
    moved["involvedObject"] = {**moved["involvedObject"], "name": "elsewhere"}
    with pytest.raises(Invalid):
        await client.update(moved)
    patched = await client.patch("events", "web-1.a", {"count": 5, "message": "again"}, "default")
    assert (patched["count"], patched["message"]) == (5, "again")
    assert patched["metadata"]["uid"] == created["metadata"]["uid"]

    await client.delete("events", "web-1.a", "default")
    with pytest.raises(NotFound):
        await client.get("Event", "web-1.a", "default")
    assert not (await client.list("Event", "default")).items
    again = await client.create(event("web-1.a", "web-1"))  # a deleted name can be created again
    assert again["metadata"]["uid"] != created["metadata"]["uid"]

    assert await kv_last(client) == before  # nothing of this went to the datastore
    assert api.cache.objects.get("events", {}) == {}


async def test_list_filters_by_namespace_object_and_labels(client: ApiClient) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    for e in (event("a.1", "a"), event("a.2", "a", reason="Created", labels={"tier": "x"}), event("b.1", "b"),
              event("n.1", "n1", kind="Node"), event("c.1", "c", ns="other")):
        await client.create(e)
    names = lambda items: sorted(i["metadata"]["name"] for i in items)  # noqa: E731
    listed = await client.list("Event", "default")
    assert names(listed.items) == ["a.1", "a.2", "b.1", "n.1"]
    assert int(listed.resource_version) >= max(int(i["metadata"]["resourceVersion"]) for i in listed.items)
    assert names((await client.list("Event")).items) == ["a.1", "a.2", "b.1", "c.1", "n.1"]
    assert names((await client.list("Event", "default", field_selector="involvedObject.name=a")).items) == [
        "a.1", "a.2"]
    assert names((await client.list("Event", "default", field_selector="involvedObject.kind=Node")).items) == [
        "n.1"]
    assert names((await client.list("Event", "default", field_selector="reason=Created")).items) == ["a.2"]
    assert names((await client.list("Event", "default", label_selector="tier=x")).items) == ["a.2"]
    assert names((await client.list("Event", "nowhere")).items) == []


async def test_events_in_a_missing_namespace_are_refused(client: ApiClient) -> None:
    with pytest.raises(NotFound):
        await client.create(event("x.1", "x", ns="missing"))


async def test_api_watch_of_events_is_served_from_the_stream(client: ApiClient) -> None:
    """A watch without a version: the retained Events, then each new version; a watch resumed from a
    version: what was written after it; both filtered like lists."""
    await client.create(event("w.1", "w"))
    await client.create(event("other.1", "other"))
    async with client.watch("Event", "default", field_selector="involvedObject.name=w") as watch:
        stream = aiter(watch)
        first = await asyncio.wait_for(anext(stream), 10)
        assert (first.type, first.object["metadata"]["name"]) == ("ADDED", "w.1")
        await client.create(event("other.2", "other"))  # not about w: not delivered
        await client.create(event("w.2", "w"))
        second = await asyncio.wait_for(anext(stream), 10)
        assert (second.type, second.object["metadata"]["name"]) == ("ADDED", "w.2")
        patched = await client.patch("events", "w.1", {"count": 7}, "default")
        third = await asyncio.wait_for(anext(stream), 10)
        assert (third.type, third.object["count"]) == ("MODIFIED", 7)
        assert third.resource_version == int(patched["metadata"]["resourceVersion"])
        await client.delete("events", "w.2", "default")
        fourth = await asyncio.wait_for(anext(stream), 10)
        assert (fourth.type, fourth.object["metadata"]["name"]) == ("DELETED", "w.2")
    async with client.watch("Event", "default", resource_version=second.resource_version) as resumed:
        changes = aiter(resumed)
        got = [await asyncio.wait_for(anext(changes), 10) for _ in range(2)]
        assert [(c.type, c.object["metadata"]["name"]) for c in got] == [("MODIFIED", "w.1"), ("DELETED", "w.2")]


async def test_recorder_counts_on_one_stream_message(nats_server: Any, client: ApiClient) -> None:
    pod = await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                               "spec": {"containers": [{"name": "c", "image": "i"}]}})
    recorder = EventRecorder(client, "kubelet", host="n1")
    for _ in range(30):
        await recorder.record(pod, "Warning", "BackOff", "Back-off restarting failed container c in pod p")
    assert recorder.correlator.skipped == 5  # the spam filter: a burst of 25
    [stored] = (await client.list("Event", "default")).items
    assert stored["count"] == 25 and stored["series"]["count"] == 25
    assert stored["source"] == {"component": "kubelet", "host": "n1"}
    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().stream_info("SHOAL_EVENTS")
        assert info.state.messages == 1  # one message per Event, however often it happened
    finally:
        await nc.close()
