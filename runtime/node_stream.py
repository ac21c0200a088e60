"""Byte streams between a client and a node's kubelet over NATS (``exec``, ``attach``, ``port-forward``).

A session has two subjects, one per direction: the client's inbox (kubelet -> client) and
``shoal.node.<node>.stream.<session>`` (client -> kubelet). The client opens it with a request on
``shoal.node.<node>.exec`` (or ``.attach``, ``.portforward``) naming both; see ``protocol/README.md``.
Every message is a msgpack map:

- data: ``{"seq": n, ...fields}``, ``seq`` counting from 1 per direction; a gap means NATS dropped a message
  (a slow consumer): the session fails rather than corrupt a stream;
- ``{"credit": n}``: the receiver may take ``n`` more data messages (credit-based back-pressure: a sender
  never has more than the granted window in flight; the receiver grants again as it consumes);
- ``{"ping": 1}``: keep-alive, sent after ``KEEPALIVE`` seconds without sending; a side that hears nothing
  for ``SILENCE`` seconds treats the other as gone (the kubelet then kills the process / closes the port).

``StreamSession`` is both sides' half of that: ``send`` (waits for credit), ``receive`` (grants credit,
raises ``Unavailable`` on silence or loss), ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from protocol import codec, subjects
from protocol.errors import BadRequest, ShoalError, Unavailable
from runtime.client import ApiClient

KEEPALIVE = 1.0
SILENCE = 5.0
WINDOW = 32
CHUNK = 32 * 1024
"""Largest payload of one data message (NATS' default max_payload is 1 MiB)."""


def session_subject(node: str, session: str) -> str:
    """Where the client sends to the kubelet: ``shoal.node.<node>.stream.<session>``."""
    return subjects.node_agent(node, f"stream.{session}")


class StreamSession:
    """One direction out (``send_subject``), one in (``receive_subject``, subscribed by ``start``)."""

    def __init__(self, nc: Client, send_subject: str, receive_subject: str, *, window: int = WINDOW,
                 keepalive: float = KEEPALIVE, silence: float = SILENCE) -> None:
        self.nc = nc
        self.send_subject = send_subject
        self.receive_subject = receive_subject
        self.window = window
        self.keepalive = keepalive
        self.silence = silence
        self._credit = 0
        self._credit_changed = asyncio.Event()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sent = 0
        self._expected = 1
        self._consumed = 0
        self._last_heard = time.monotonic()
        self._last_sent = time.monotonic()
        self._sub: Any = None
        self._pinger: asyncio.Task[None] | None = None
        self.closed = False
        self.failure: ShoalError | None = None

    async def start(self, *, grant: bool = True) -> None:
        """Subscribe, start the keep-alive and (``grant``) give the peer its first window."""
        if self._sub is None:
            await self.subscribe()
        self._pinger = asyncio.create_task(self._keepalive(), name=f"stream-ping-{self.receive_subject[-8:]}")
        if grant:
            await self._control(credit=self.window)

    async def subscribe(self) -> None:
        self._sub = await self.nc.subscribe(self.receive_subject, cb=self._on_message,
                                            pending_msgs_limit=100_000, pending_bytes_limit=256 * 1024 * 1024)

    def route(self, message: dict[str, Any]) -> None:
        """Feed a message that arrived elsewhere (e.g. the reply to the opening request) into the session."""
        self._take(message)

    async def _on_message(self, msg: Msg) -> None:
        if msg.headers and msg.headers.get("Status") == "503":
            self._fail(Unavailable("no kubelet answered the stream request: is the node's agent running?"))
            return
        try:
            message = codec.decode(msg.data)
        except ShoalError:
            return
        self._take(message)

    def _take(self, message: dict[str, Any]) -> None:
        self._last_heard = time.monotonic()
        credit = message.get("credit")
        if isinstance(credit, int) and not isinstance(credit, bool) and credit > 0:
            self._credit += credit
            self._credit_changed.set()
        if "seq" in message or message.get("ok") is False:
            self._queue.put_nowait(message)
            if message.get("ok") is False:
                self._credit_changed.set()

    async def ready(self, timeout: float = 10.0) -> None:
        """Wait until the kubelet accepted the session (granted credit) or refused it (its typed error)."""
        deadline = time.monotonic() + timeout
        while self._credit <= 0:
            if self.failure is not None:
                raise self.failure
            if not self._queue.empty():
                message = self._queue.get_nowait()
                if message.get("ok") is False:
                    self.failure = Unavailable("the kubelet refused the stream")
                    codec.check_reply(message)
                self._queue.put_nowait(message)
            self._credit_changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"the kubelet did not answer a stream request within {timeout:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._credit_changed.wait(), min(left, 0.2))

    def _fail(self, exc: ShoalError) -> None:
        if self.failure is None:
            self.failure = exc
        self._queue.put_nowait({"__failed__": True})
        self._credit_changed.set()

    async def _control(self, **fields: Any) -> None:
        self._last_sent = time.monotonic()
        await self.nc.publish(self.send_subject, codec.encode(fields))

    async def _keepalive(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.keepalive / 2)
            now = time.monotonic()
            if now - self._last_heard > self.silence:
                self._fail(Unavailable(f"the other end of the stream has been silent for {self.silence:g}s"))
                return
            if now - self._last_sent >= self.keepalive:
                with contextlib.suppress(Exception):
                    await self._control(ping=1)

    async def send(self, **fields: Any) -> None:
        """Send a data message once the peer has granted credit for it."""
        while self._credit <= 0:
            if self.failure is not None:
                raise self.failure
            if self.closed:
                raise Unavailable("the stream is closed")
            self._credit_changed.clear()
            await self._credit_changed.wait()
        if self.failure is not None:
            raise self.failure
        self._credit -= 1
        self._sent += 1
        self._last_sent = time.monotonic()
        await self.nc.publish(self.send_subject, codec.encode({"seq": self._sent, **fields}))

    async def receive(self) -> dict[str, Any]:
        """The next data message (granting credit back as they are consumed); ``Unavailable`` when the peer is
        gone or a message was lost; a typed error the peer sent (``{"ok": false, "error": ...}``) is raised."""
        if self.failure is not None and self._queue.empty():
            raise self.failure
        message = await self._queue.get()
        if message.get("__failed__"):
            assert self.failure is not None
            raise self.failure
        if message.get("ok") is False:
            codec.check_reply(message)
        if message.get("seq") != self._expected:
            self._fail(Unavailable("the stream lost messages (a slow consumer on NATS); retry"))
            raise Unavailable("the stream lost messages (a slow consumer on NATS); retry")
        self._expected += 1
        self._consumed += 1
        if self._consumed >= max(1, self.window // 2):
            granted, self._consumed = self._consumed, 0
            with contextlib.suppress(Exception):
                await self._control(credit=granted)
        return message

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._credit_changed.set()
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pinger
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


async def open_stream(client: ApiClient, verb: str, namespace: str, pod: str, **fields: Any) -> StreamSession:
    """Open an ``exec`` or ``portforward`` session with the kubelet of ``pod``'s node; the first ``receive``
    raises the kubelet's typed error if it refused (NotFound, BadRequest, Unavailable). An impersonating
    client's user must be allowed the stream (``ApiClient.authorize_stream``)."""
    await client.authorize_stream(verb, namespace, pod)
    obj = await client.get("Pod", pod, namespace)
    node = (obj.get("spec") or {}).get("nodeName")
    if not node:
        raise BadRequest(f'pod "{pod}" is not scheduled to a node yet',
                         {"kind": "Pod", "name": pod, "namespace": namespace})
    if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        raise BadRequest(f"cannot {verb} into a container in a completed pod; current phase is "
                         f"{obj['status']['phase']}")
    nc = client.nc
    inbox = nc.new_inbox()
    session_id = secrets.token_hex(12)
    session = StreamSession(nc, session_subject(str(node), session_id), inbox)
    await session.subscribe()
    request = {"namespace": namespace, "pod": pod, "session": session_id, "inbox": inbox, "credit": session.window,
               **fields}
    await nc.publish(subjects.node_agent(str(node), verb), codec.encode(request), reply=inbox)
    await session.start(grant=False)
    return session


async def run_exec(session: StreamSession, stdin: AsyncIterator[bytes] | None,
                   output: Callable[[int, bytes], Awaitable[None] | None]) -> int:
    """Drive an exec session: feed ``stdin`` (then its EOF), hand each output chunk to ``output(stream, data)``
    (1 stdout, 2 stderr); the command's exit code. The session is closed at the end."""

    async def feed() -> None:
        assert stdin is not None
        async for data in stdin:
            for offset in range(0, len(data), CHUNK):
                await session.send(stdin=data[offset:offset + CHUNK])
        await session.send(eof=True)

    feeder = asyncio.create_task(feed(), name="exec-stdin") if stdin is not None else None
    try:
        while True:
            message = await session.receive()
            if "exit" in message:
                return int(message["exit"])
            if "failure" in message:
                raise Unavailable(str(message["failure"]))
            result = output(int(message.get("ch", 1)), bytes(message.get("data") or b""))
            if result is not None:
                await result
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
        if session.failure is None and not session.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.send(close=True), 1.0)
        await session.close()
