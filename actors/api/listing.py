"""Sending a list's reply: chunks of at most ``LIST_CHUNK_BYTES`` to the client's inbox, with flow control.

A list of 150,000 pods is ~100 MiB. Sent at once, NATS holds what the client has not read yet, and a
server drops a client whose pending data exceeds its ``max_pending`` (64 MiB by default) as a slow
consumer: the client loses its connection and lists again, forever. A client that asks for flow control
(``acks: true`` in the list request) acknowledges each chunk that carries a reply subject; the API actor
then keeps at most ``window`` chunks beyond the last acknowledged one on their way.

Small lists cost nothing extra: the first ``window`` chunks go out without a reply subject, and only a list
longer than that gets an acknowledgement subscription (from its chunk ``window`` on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from actors.api.cache import Entry, entry_to_wire
from protocol import PROTOCOL_VERSION, codec
from protocol.errors import Unavailable

LIST_WINDOW_CHUNKS = 8
"""Chunks (512 KiB each) a flow-controlled list may have on its way beyond the last acknowledged one."""
ACK_TIMEOUT = 30.0
"""A client that acknowledged nothing for this long is gone or stuck: the list is abandoned."""


def list_chunk(items: list[bytes], index: int, more: bool, rev: int) -> bytes:
    return codec.packed_map_with_raw(
        {"v": PROTOCOL_VERSION, "ok": True, "chunk": index, "more": more, "resourceVersion": rev},
        {"items": codec.packed_array_of_raw(items)},
    )


class ChunkSender:
    """One list reply on its way: ``send`` the entries, then ``close``."""

    def __init__(self, nc: Client, inbox: str, rev: int, *, acks: bool, window: int = LIST_WINDOW_CHUNKS,
                 ack_timeout: float = ACK_TIMEOUT) -> None:
        self.nc = nc
        self.inbox = inbox
        self.rev = rev
        self.acks = acks
        self.window = max(1, window)
        self.ack_timeout = ack_timeout
        self.sent = 0
        self.acked = -1
        self._ack_inbox: str | None = None
        self._sub: Subscription | None = None
        self._progress = asyncio.Event()

    async def send_all(self, entries: Iterable[Entry]) -> None:
        chunk: list[bytes] = []
        size = 0
        for entry in entries:
            item = entry_to_wire(entry)
            if chunk and size + len(item) > codec.LIST_CHUNK_BYTES:
                await self._send(chunk, more=True)
                chunk, size = [], 0
            chunk.append(item)
            size += len(item)
        await self._send(chunk, more=False)

    async def _send(self, items: list[bytes], *, more: bool) -> None:
        index = self.sent
        reply = ""
        if self.acks and index >= self.window:
            if self._ack_inbox is None:
                self._ack_inbox = self.nc.new_inbox()
                self._sub = await self.nc.subscribe(self._ack_inbox, cb=self._on_ack)
            reply = self._ack_inbox
            await self._wait_for_ack(index - self.window)
        await self.nc.publish(self.inbox, list_chunk(items, index, more, self.rev), reply=reply)
        self.sent += 1

    async def _wait_for_ack(self, index: int) -> None:
        if index < self.window:
            return  # chunks before ``window`` carry no reply subject: they are never acknowledged
        while self.acked < index:
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), self.ack_timeout)
            except TimeoutError:
                raise Unavailable(f"the client acknowledged no list chunk for {self.ack_timeout:.0f}s; "
                                  "list abandoned") from None

    async def _on_ack(self, msg: Msg) -> None:
        try:
            index = codec.decode(msg.data).get("chunk")
        except Exception:
            return
        if isinstance(index, int) and index > self.acked:
            self.acked = index
            self._progress.set()

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
