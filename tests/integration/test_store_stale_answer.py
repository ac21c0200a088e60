"""A refusal from a server behind the others never hides a committed write (docs/RELIABILITY.md, finding 12).

At a partition's heal, a JetStream server that lost its place can answer a compare-and-swap "wrong last
sequence: N" with N below the revision the writer expected (one already committed and read), while the
real leader takes the same write: the client saw Conflict for a write that was committed (soak seed 9,
session 10). Every write now carries an id (``Nats-Msg-Id``); a refusal naming a revision older than the
expected one is sent again, and the bucket answers a write it already took as a duplicate, with the
revision it got: one revision, acknowledged, whatever the first answer said."""

from __future__ import annotations

from typing import Any

import nats
import nats.js.errors
import pytest

from actors.api.store import (
    DEDUPE_WINDOW,
    EXPECTED_LAST,
    MSG_ID,
    STREAM,
    Refusal,
    Store,
    refusal,
)
from protocol import keys
from protocol.errors import Conflict
from runtime.nats_server import NatsServer


def test_refusals_are_read_by_what_they_name() -> None:
    assert refusal(10071, "wrong last sequence: 12", 12 + 3) is Refusal.AGAIN  # a server behind answered
    assert refusal(10071, "wrong last sequence: 15", 12) is Refusal.CONFLICT  # the key moved on: a lost race
    assert refusal(10071, "wrong last sequence", 12) is Refusal.CONFLICT
    assert refusal(10071, "wrong last sequence: 0", None) is Refusal.CONFLICT
    assert refusal(10164, "wrong last sequence", 12) is Refusal.AGAIN  # another write in flight, not proposed
    assert refusal(10158, "duplicate message id is in process", 12) is Refusal.AGAIN
    assert refusal(10077, "maximum messages exceeded", 12) is Refusal.UNAVAILABLE


def stale_first(store: Store) -> list[Any]:
    """The store's publishes, the first one answered as a server behind the others would, after the write was
    really taken (by the real leader)."""
    real = store.js.publish
    answers: list[Any] = []

    async def publish(subject: str, payload: bytes, **kwargs: Any) -> Any:
        ack = await real(subject, payload, **kwargs)
        answers.append(ack)
        if len(answers) == 1:
            expected = int(kwargs["headers"][EXPECTED_LAST])
            raise nats.js.errors.APIError(code=400, err_code=10071,
                                          description=f"wrong last sequence: {expected - 1}")
        return ack

    store.js.publish = publish  # type: ignore[method-assign,assignment]
    return answers


async def test_a_stale_refusal_of_a_committed_write_is_resolved_to_its_revision(nats_server: NatsServer) -> None:
    """One server checks the expected revision before the write's id: the second send is refused naming the
    write's own revision, which the store reads back and recognises by its id."""
    nc = await nats.connect(nats_server.url)
    try:
        store = Store(nc)
        await store.open()
        await check_stale_refusal(nc, store, duplicates=[None])
    finally:
        await nc.close()


async def check_stale_refusal(nc: Any, store: Store, *, duplicates: list[Any]) -> None:
    info = await nc.jetstream().stream_info(STREAM)
    assert info.config.duplicate_window == DEDUPE_WINDOW
    key = "configmaps.default.stale"
    first = await store.create(key, b"v1")
    await store.update(key, b"v2", first)
    current = await store.get(key)
    assert current is not None
    answers = stale_first(store)
    revision = await store.update(key, b"v3", current.revision)
    assert [a.duplicate for a in answers] == duplicates  # taken once (a cluster says the second send was one)
    assert revision == answers[0].seq
    stored = await store.get(key)
    assert stored is not None and (stored.revision, stored.value) == (revision, b"v3")
    assert (await nc.jetstream().stream_info(STREAM)).state.last_seq == revision  # no second write
    message = await nc.jetstream().get_last_msg(STREAM, keys.KV_SUBJECT_PREFIX + key)
    assert message.headers is not None and message.headers.get(MSG_ID)
    with pytest.raises(Conflict):  # a real lost race is still Conflict
        await store.update(key, b"v4", current.revision)
