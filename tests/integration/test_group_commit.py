"""actors/api/groupcommit.py against a real nats-server: writes that wait leave as one atomic batch, and each
write is told what it would be told alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.js.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client

from actors.api.groupcommit import GroupCommit
from actors.api.store import EXPECTED_LAST, STREAM, Record, Store, StoreSettings
from protocol import keys
from protocol.errors import AlreadyExists, Conflict
from runtime.nats_server import NatsServer


@pytest_asyncio.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await nats.connect(nats_server.url)
    await Store(client).open()  # the bucket, atomic batches allowed
    try:
        yield client
    finally:
        await client.close()


def subject(name: str) -> str:
    return f"{keys.KV_SUBJECT_PREFIX}pods/default/{name}"


async def stored(nc: Client, seq: int) -> tuple[str, bytes]:
    msg = await nc.jetstream().get_msg(STREAM, seq=seq, direct=False)
    return str(msg.subject), bytes(msg.data or b"")


async def test_writes_that_wait_leave_together_each_with_its_own_revision(nc: Client) -> None:
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=1, min_batch=2)
    names = [f"p{i}" for i in range(40)]
    seqs = await asyncio.gather(*(group.publish(subject(n), n.encode(), {EXPECTED_LAST: "0"}, bulk=True)
                                  for n in names))
    # the first write found the slot free and left alone; the 39 that waited for it left as one batch
    assert (group.batches, group.batched, group.refused) == (1, 39, 0)
    assert len(set(seqs)) == 40
    for name, seq in zip(names, seqs, strict=True):
        assert await stored(nc, seq) == (subject(name), name.encode())


async def test_a_write_alone_is_not_batched(nc: Client) -> None:
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=2)
    for i in range(5):
        await group.publish(subject(f"alone{i}"), b"x", {EXPECTED_LAST: "0"}, bulk=True)
    assert group.batches == 0


async def test_a_lost_compare_and_swap_fails_alone_and_the_rest_of_its_batch_is_stored(nc: Client) -> None:
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=1, min_batch=2)
    taken = await group.publish(subject("taken"), b"first", {EXPECTED_LAST: "0"}, bulk=True)
    results = await asyncio.gather(
        group.publish(subject("head"), b"h", {EXPECTED_LAST: "0"}, bulk=True),  # leaves alone, the others wait for it
        *(group.publish(subject(f"ok{i}"), b"ok", {EXPECTED_LAST: "0"}, bulk=True) for i in range(5)),
        group.publish(subject("taken"), b"second", {EXPECTED_LAST: "0"}, bulk=True),  # lost: "taken" exists
        return_exceptions=True)
    assert group.refused == 1  # the server refused the batch as a whole; each write was sent again alone
    lost = results[-1]
    assert isinstance(lost, nats.js.errors.APIError) and lost.err_code == 10071, lost
    for seq, name in zip(results[1:-1], [f"ok{i}" for i in range(5)], strict=True):
        assert isinstance(seq, int) and await stored(nc, seq) == (subject(name), b"ok")
    assert await stored(nc, taken) == (subject("taken"), b"first")


async def test_two_writes_of_one_key_never_share_a_batch(nc: Client) -> None:
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=1, min_batch=2)
    results = await asyncio.gather(
        group.publish(subject("head"), b"h", {EXPECTED_LAST: "0"}, bulk=True),
        group.publish(subject("same"), b"a", {EXPECTED_LAST: "0"}, bulk=True),
        group.publish(subject("other"), b"o", {EXPECTED_LAST: "0"}, bulk=True),
        group.publish(subject("same"), b"b", {EXPECTED_LAST: "0"}, bulk=True),
        return_exceptions=True)
    # "same"/a and "other" left together; "same"/b waited for the next send and lost its race alone
    assert (group.batches, group.refused) == (1, 0)
    assert isinstance(results[3], nats.js.errors.APIError) and results[3].err_code == 10071
    assert isinstance(results[1], int) and await stored(nc, results[1]) == (subject("same"), b"a")


async def test_a_write_given_up_while_waiting_is_not_sent(nc: Client) -> None:
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=1, min_batch=2)
    head = asyncio.ensure_future(group.publish(subject("head"), b"h", {EXPECTED_LAST: "0"}, bulk=True))
    waiting = asyncio.ensure_future(group.publish(subject("abandoned"), b"x", {EXPECTED_LAST: "0"}, bulk=True))
    await asyncio.sleep(0)
    waiting.cancel()
    await head
    await asyncio.sleep(0.2)
    with pytest.raises(nats.js.errors.NotFoundError):
        await nc.jetstream().get_msg(STREAM, subject=subject("abandoned"), direct=False)


async def test_a_batch_no_stream_answers_fails_each_write(nc: Client) -> None:
    group = GroupCommit(nc, nc.jetstream(), timeout=2, slots=1, min_batch=2)
    results = await asyncio.gather(*(group.publish(f"nostream.{i}", b"x", {}, bulk=True) for i in range(4)),
                                   return_exceptions=True)
    assert all(isinstance(r, nats.js.errors.NoStreamResponseError) for r in results), results


async def test_the_store_answers_through_group_commit_as_it_does_alone(nc: Client) -> None:
    """Store's compare-and-swap contract with writes grouped: creates of one name race to one winner, updates
    at a stale revision are Conflict, and every answer is the revision the datastore holds."""
    store = Store(nc, StoreSettings(group_commit=1))
    assert store.group is not None
    created = await asyncio.gather(*(store.create(f"pods/default/free{i}", b"f") for i in range(40)))
    assert store.group.batches == 1  # two alone (the slot, then the urgent send beside it), 38 together
    for i, revision in enumerate(created):
        got = await store.get(f"pods/default/free{i}")
        assert got is not None and got.revision == revision
    outcomes = await asyncio.gather(*(store.create("pods/default/race", str(i).encode()) for i in range(8)),
                                    return_exceptions=True)
    revisions = [r for r in outcomes if isinstance(r, int)]
    assert len(revisions) == 1 and all(isinstance(r, AlreadyExists) for r in outcomes if not isinstance(r, int))
    record = await store.get("pods/default/race")
    assert record is not None and record.revision == revisions[0]
    updates = await asyncio.gather(*(store.update("pods/default/race", b"u", revisions[0]) for _ in range(4)),
                                   store.update("pods/default/free0", b"u", created[0]), return_exceptions=True)
    assert sum(isinstance(u, int) for u in updates[:4]) == 1 and sum(isinstance(u, Conflict) for u in updates) == 3
    assert isinstance(updates[4], int) and (await store.get("pods/default/free0")) == Record(
        "pods/default/free0", updates[4], b"u", False)


async def test_a_persons_write_leaves_before_the_bulk_writes_queued_ahead_of_it(nc: Client) -> None:
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=1, max_messages=16, min_batch=2)
    head = asyncio.ensure_future(group.publish(subject("head"), b"h", {EXPECTED_LAST: "0"}, bulk=True))
    await asyncio.sleep(0)  # the head is in flight: what comes next waits
    bulk = [asyncio.ensure_future(group.publish(subject(f"b{i}"), b"b", {EXPECTED_LAST: "0"}, bulk=True))
            for i in range(40)]
    await asyncio.sleep(0)
    person = await group.publish(subject("person"), b"p", {EXPECTED_LAST: "0"})
    first = await head
    assert person == first + 1  # sent beside the bulk send in flight, ahead of 40 bulk writes queued before it
    bulk_seqs = await asyncio.gather(*bulk)
    assert sorted(bulk_seqs) == bulk_seqs and bulk_seqs[0] == person + 1  # the bulk writes in their order
    assert group.batches == 3  # 16, 16, 8: batches of at most 16


async def test_urgent_writes_wait_for_no_bulk_send_and_leave_together(nc: Client) -> None:
    """Every slot busy with bulk writes: people's writes take one more send, of urgent writes only."""
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=1, min_batch=2)
    head = asyncio.ensure_future(group.publish(subject("head"), b"h", {EXPECTED_LAST: "0"}, bulk=True))
    await asyncio.sleep(0)
    first = asyncio.ensure_future(group.publish(subject("u0"), b"u", {EXPECTED_LAST: "0"}))  # leaves at once
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(group.publish(subject(f"u{i}"), b"u", {EXPECTED_LAST: "0"})) for i in (1, 2, 3)]
    bulk = [asyncio.ensure_future(group.publish(subject(f"b{i}"), b"b", {EXPECTED_LAST: "0"}, bulk=True))
            for i in range(3)]
    await asyncio.gather(head, first, *later, *bulk)
    assert await first == await head + 1  # not held back by the bulk send in flight
    urgent_seqs = [await u for u in later]
    bulk_seqs = [await b for b in bulk]
    assert max(urgent_seqs) < min(bulk_seqs)  # urgent writes left first, together (one batch of three)
    assert urgent_seqs == list(range(urgent_seqs[0], urgent_seqs[0] + 3))


async def test_a_few_writes_that_wait_leave_each_alone(nc: Client) -> None:
    """Fewer than min_batch waiting writes are not worth a batch's fixed cost: each leaves alone, side by side."""
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=1, min_batch=8)
    seqs = await asyncio.gather(*(group.publish(subject(f"few{i}"), b"f", {EXPECTED_LAST: "0"}, bulk=True)
                                  for i in range(8)))  # 1 alone, then 7 waiting: below 8
    assert group.batches == 0 and len(set(seqs)) == 8
    seqs = await asyncio.gather(*(group.publish(subject(f"many{i}"), b"m", {EXPECTED_LAST: "0"}, bulk=True)
                                  for i in range(9)))  # 1 alone, then 8 waiting: one batch
    assert (group.batches, group.batched) == (1, 8) and len(set(seqs)) == 9


async def test_an_answer_not_understood_fails_each_write_and_none_waits(nc: Client) -> None:
    async def garbage(msg: Any) -> None:
        await msg.respond(b"not json")

    sub = await nc.subscribe("garbled.>", cb=garbage)
    group = GroupCommit(nc, nc.jetstream(), timeout=2, slots=1, min_batch=2)
    results = await asyncio.wait_for(asyncio.gather(
        *(group.publish(f"garbled.{i}", b"x", {}, bulk=True) for i in range(4)), return_exceptions=True), 5)
    await sub.unsubscribe()
    assert all(isinstance(r, ValueError) for r in results), results  # the alone write and the batch of three


async def test_a_person_s_only_write_leaves_at_once_and_a_busy_flow_s_writes_wait(nc: Client) -> None:
    """The slot busy, bulk and a script's writes waiting: a person's write whose connection has nothing else here
    leaves at once, alone, ahead of them; of the script's writes only the first did (its flow was idle then)."""
    group = GroupCommit(nc, nc.jetstream(), timeout=5, slots=1, min_batch=2)
    head = asyncio.ensure_future(group.publish(subject("head"), b"h", {EXPECTED_LAST: "0"}, bulk=True))
    await asyncio.sleep(0)  # the head is in flight: what comes next waits
    bulk = [asyncio.ensure_future(group.publish(subject(f"b{i}"), b"b", {EXPECTED_LAST: "0"}, bulk=True))
            for i in range(3)]
    script = [asyncio.ensure_future(group.publish(subject(f"s{i}"), b"s", {EXPECTED_LAST: "0"}, person="script"))
              for i in range(6)]
    await asyncio.sleep(0)
    person = await group.publish(subject("person"), b"p", {EXPECTED_LAST: "0"}, person="typing")
    await head
    bulk_seqs, script_seqs = await asyncio.gather(*bulk), await asyncio.gather(*script)
    assert group.express == 2  # the person's write and the script's first
    assert person < min(bulk_seqs) and person < max(script_seqs)  # it overtook writes queued before it
    assert not group._people  # every write's flow is forgotten once answered
