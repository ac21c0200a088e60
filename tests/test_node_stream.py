"""``runtime.node_stream.StreamSession`` between two ends on a real nats-server: credit-based back-pressure (a
sender never gets more than the granted window ahead of its receiver), keep-alives, a silent peer detected, a
lost message detected, and a typed refusal raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client

from protocol import codec
from protocol.errors import NotFound, Unavailable
from runtime.nats_server import NatsServer
from runtime.node_stream import StreamSession
from tests.controllers.conftest import eventually


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    conn = await nats.connect(nats_server.url)
    try:
        yield conn
    finally:
        await conn.close()


async def pair(nc: Client, *, window: int = 4, keepalive: float = 1.0,
               silence: float = 5.0) -> tuple[StreamSession, StreamSession]:
    a = StreamSession(nc, "t.to-b", "t.to-a", window=window, keepalive=keepalive, silence=silence)
    b = StreamSession(nc, "t.to-a", "t.to-b", window=window, keepalive=keepalive, silence=silence)
    await a.start()
    await b.start()
    return a, b


async def test_the_sender_waits_for_credit_and_everything_arrives_in_order(nc: Client) -> None:
    a, b = await pair(nc, window=4)
    sent = 0

    async def send_all() -> None:
        nonlocal sent
        for i in range(20):
            await a.send(n=i)
            sent += 1

    sender = asyncio.create_task(send_all())
    await eventually(lambda: _true(sent == 4))
    await asyncio.sleep(0.3)
    assert sent == 4  # nothing was consumed: the window is all it may send
    got = [(await b.receive())["n"] for _ in range(20)]
    await sender
    assert got == list(range(20))
    await a.close()
    await b.close()


async def test_a_silent_peer_and_a_lost_message_end_the_session(nc: Client) -> None:
    a, b = await pair(nc, keepalive=0.2, silence=1.0)
    await a.close()  # no goodbye: its keep-alives stop
    with pytest.raises(Unavailable, match="silent"):
        await asyncio.wait_for(b.receive(), 10)
    await b.close()
    c, d = await pair(nc)
    await nc.publish("t.to-b", codec.encode({"seq": 2, "data": b"x"}))  # seq 1 never came
    with pytest.raises(Unavailable, match="lost"):
        await d.receive()
    await c.close()
    await d.close()


async def test_a_refusal_is_the_peers_typed_error(nc: Client) -> None:
    session = StreamSession(nc, "t.nowhere", "t.inbox")
    await session.subscribe()
    await nc.publish("t.inbox", codec.error(NotFound('pod "x" not found')))
    with pytest.raises(NotFound):
        await session.ready(timeout=5)
    await session.close()


async def _true(value: bool) -> bool:
    return value
