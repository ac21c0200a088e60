"""actors/api/store.py: a write that no stream answers is a typed Unavailable, not an internal error."""

from __future__ import annotations

import nats
import pytest

from actors.api.store import STREAM, Store
from protocol.errors import Unavailable
from runtime.nats_server import NatsServer


async def test_a_write_no_stream_answers_is_unavailable(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        store = Store(nc)
        await store.open()
        assert await store.create("pods/default/a", b"\x80") > 0
        await nc.jetstream().delete_stream(STREAM)  # the bucket's stream is gone: nothing answers a publish
        with pytest.raises(Unavailable, match="did not acknowledge the write"):
            await store.create("pods/default/b", b"\x80")
    finally:
        await nc.close()
