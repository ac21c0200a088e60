"""Event streams: any NATS client can subscribe to Events and object changes with a wildcard."""

from __future__ import annotations

import msgpack
import nats

from runtime.client import ApiClient
from runtime.events import EventRecorder


async def test_plain_nats_subscriber_sees_events_and_changes(nats_server, client: ApiClient) -> None:
    nc = await nats.connect(nats_server.url)  # an outside client: nats-py and msgpack only
    try:
        js = nc.jetstream()
        pod = await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"},
                                   "spec": {"containers": [{"name": "c", "image": "i"}]}})
        live = await nc.subscribe("shoal.events.default.Pod.p1.*")  # every version, as it is written
        await nc.flush()  # the subscription is in place before anything is recorded
        recorder = EventRecorder(client, "test")
        await recorder.record(pod, "Normal", "Scheduled", "assigned default/p1 to n1")
        await recorder.record(pod, "Normal", "Scheduled", "assigned default/p1 to n1")
        await recorder.record(pod, "Warning", "BackOff", "back-off restarting")
        got = []
        for _ in range(3):
            env = msgpack.unpackb((await live.next_msg(timeout=5)).data)
            got.append((env["type"], env["object"]["reason"], env["object"]["count"]))
        assert got == [("ADDED", "Scheduled", 1), ("MODIFIED", "Scheduled", 2), ("ADDED", "BackOff", 1)]

        # the stream keeps each Event's latest version: a replay from the start sees two Events
        events = await js.subscribe("shoal.events.default.Pod.p1.*", ordered_consumer=True)
        replayed = []
        for _ in range(2):
            msg = await events.next_msg(timeout=5)
            env = msgpack.unpackb(msg.data)
            replayed.append((env["object"]["reason"], env["object"]["count"], msg.metadata.num_pending))
        assert replayed == [("Scheduled", 2, 1), ("BackOff", 1, 0)]

        changes = await js.subscribe("shoal.changes.pods.default.*", ordered_consumer=True)
        await client.delete("pods", "p1")
        seen = []
        for _ in range(2):
            msg = await changes.next_msg(timeout=5)
            obj = msgpack.unpackb(msg.data)
            seen.append((msg.headers.get("KV-Operation", "PUT"), obj["metadata"]["name"],
                         int(msg.headers["Nats-Sequence"])))
        assert [s[:2] for s in seen] == [("PUT", "p1"), ("DEL", "p1")]
        assert seen[0][2] == int(pod["metadata"]["resourceVersion"])
    finally:
        await nc.close()


async def test_a_patched_event_reaches_the_event_stream(nats_server, client: ApiClient) -> None:
    """``patch`` of an Event publishes it as MODIFIED, as create and update do (it used not to)."""
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        live = await nc.subscribe("shoal.events.default.Pod.p2.*")
        await nc.flush()
        await client.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev1"},
                             "involvedObject": {"kind": "Pod", "name": "p2", "namespace": "default"},
                             "reason": "Pulled", "message": "pulled", "type": "Normal", "count": 1})
        patched = await client.patch("events", "ev1", {"count": 2, "message": "pulled again"}, "default")
        got = []
        for _ in range(2):
            env = msgpack.unpackb((await live.next_msg(timeout=5)).data)
            got.append((env["type"], env["object"]["count"], env["object"]["message"]))
        assert got == [("ADDED", 1, "pulled"), ("MODIFIED", 2, "pulled again")]
        kept = await js.get_last_msg("SHOAL_EVENTS", "shoal.events.default.Pod.p2.ev1")
        assert msgpack.unpackb(kept.data)["object"]["count"] == 2
        assert str(kept.seq) == patched["metadata"]["resourceVersion"]  # its sequence is its resourceVersion
    finally:
        await nc.close()
