"""The userspace data path: asyncio listeners per Service address, relaying TCP and UDP to backends.

TCP relays are two linked ``asyncio.Protocol``s: bytes received on one side are written to the other
with no intermediate copies or buffers of ours, and back-pressure pauses the sending side's reads
(``pause_writing`` → ``pause_reading``). Half-close is propagated. A backend that refuses the
connection is skipped for the next one. On a change, listeners that are no longer wanted stop
accepting at once; their established connections drain for ``drain_seconds`` before being closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, cast

from agents.proxy.balancer import Balancer
from agents.proxy.rules import Backend, Rule

CONNECT_TIMEOUT = 3.0
UDP_SESSION_IDLE = 30.0


class _Side(asyncio.Protocol):
    def __init__(self, listener: _Listener | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.listener = listener
        self.pending: list[bytes] = []
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        peer = self.peer
        if peer is not None and peer.transport is not None and peer.transport.can_write_eof():
            peer.transport.write_eof()
        else:
            self.eof = True
        return True

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        if self.listener is not None:
            self.listener.connections.discard(self)

    def link(self, peer: _Side) -> None:
        """Join two sides; bytes (and EOF) that arrived on either before the link are passed on."""
        self.peer, peer.peer = peer, self
        for src, dst in ((peer, self), (self, peer)):
            if dst.transport is None:
                continue
            for chunk in src.pending:
                dst.transport.write(chunk)
            src.pending.clear()
            if src.eof and dst.transport.can_write_eof():
                dst.transport.write_eof()
            if src.transport is None or src.transport.is_closing():
                dst.transport.close()


class _Client(_Side):
    """The accepted side; connects to a backend, then links the two."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.listener is not None
        self.listener.connections.add(self)
        self.listener.accepted += 1
        task = asyncio.get_running_loop().create_task(self._connect())
        self.listener.tasks.add(task)
        task.add_done_callback(self.listener.tasks.discard)

    async def _connect(self) -> None:
        listener = self.listener
        assert listener is not None and self.transport is not None
        peer = self.transport.get_extra_info("peername") or ("", 0)
        tried: set[Backend] = set()
        loop = asyncio.get_running_loop()
        while True:
            backend = listener.balancer.pick(str(peer[0]), exclude=frozenset(tried))
            if backend is None:
                listener.failed += 1
                self.transport.close()
                return
            tried.add(backend)
            try:
                _, upstream = await asyncio.wait_for(
                    loop.create_connection(lambda: _Side(listener), backend.ip, backend.port), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                continue
            if self.transport.is_closing():
                if upstream.transport is not None:
                    upstream.transport.close()
                return
            listener.connections.add(upstream)
            upstream.link(self)
            return


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self, listener: _Listener) -> None:
        self.listener = listener
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[tuple[str, int], _UdpSession] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        session = self.sessions.get(addr)
        if session is not None:
            session.last = time.monotonic()
            if session.transport is not None:
                session.transport.sendto(data)
            else:
                session.queued.append(data)  # the upstream socket is still opening
            return
        backend = self.listener.balancer.pick(str(addr[0]))
        if backend is None:
            return
        task = asyncio.get_running_loop().create_task(self._open(addr, backend, data))
        self.listener.tasks.add(task)
        task.add_done_callback(self.listener.tasks.discard)

    async def _open(self, addr: tuple[str, int], backend: Backend, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        session = _UdpSession(self, addr)
        self.sessions[addr] = session
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: session,
                                                               remote_addr=(backend.ip, backend.port))
        except OSError:
            self.sessions.pop(addr, None)
            return
        session.transport = transport
        for data in (first, *session.queued):
            transport.sendto(data)
        session.queued.clear()

    def expire(self, now: float) -> None:
        for addr, session in list(self.sessions.items()):
            if now - session.last > UDP_SESSION_IDLE:
                if session.transport is not None:
                    session.transport.close()
                self.sessions.pop(addr, None)


class _UdpSession(asyncio.DatagramProtocol):
    def __init__(self, front: _Datagram, client: tuple[str, int]) -> None:
        self.front = front
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = time.monotonic()
        self.queued: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.last = time.monotonic()
        if self.front.transport is not None:
            self.front.transport.sendto(data, self.client)


@dataclass(eq=False)
class _Listener:
    protocol: str
    address: tuple[str, int]
    balancer: Balancer
    server: Any = None
    datagram: _Datagram | None = None
    connections: set[_Side] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    accepted: int = 0
    failed: int = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.address
        if self.protocol == "UDP":
            datagram = _Datagram(self)
            self.datagram = datagram
            await loop.create_datagram_endpoint(lambda: datagram, local_addr=(host, port))
        else:
            self.server = await loop.create_server(lambda: _Client(self), host, port, reuse_address=True,
                                                   backlog=1024)

    async def close(self, drain_seconds: float) -> None:
        if self.server is not None:
            self.server.close()
        if self.datagram is not None and self.datagram.transport is not None:
            for session in self.datagram.sessions.values():
                if session.transport is not None:
                    session.transport.close()
            self.datagram.transport.close()
        deadline = time.monotonic() + drain_seconds
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for side in list(self.connections):
            if side.transport is not None:
                side.transport.close()


class UserspaceProxy:
    name = "userspace"

    def __init__(self, *, drain_seconds: float = 30.0, log: Any = None) -> None:
        self.drain_seconds = drain_seconds
        self.log = log
        self.listeners: dict[tuple[str, str, int], _Listener] = {}
        self._draining: set[asyncio.Task[None]] = set()

    async def apply(self, rules: list[Rule]) -> None:
        wanted: dict[tuple[str, str, int], Rule] = {}
        for rule in rules:
            for host, port in rule.listen:
                wanted[(rule.protocol, host, port)] = rule
        for key in [k for k in self.listeners if k not in wanted]:
            gone = self.listeners.pop(key)
            task = asyncio.create_task(gone.close(self.drain_seconds), name=f"drain-{key}")
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)
        for key, rule in wanted.items():
            existing = self.listeners.get(key)
            if existing is None:
                listener = _Listener(key[0], (key[1], key[2]), Balancer(rule.backends, rule.affinity_timeout))
                try:
                    await listener.open()
                except OSError as exc:
                    if self.log is not None:
                        self.log.error("cannot listen for service", service=rule.service, address=key[1],
                                       port=key[2], error=str(exc))
                    continue
                self.listeners[key] = listener
            else:
                existing.balancer.update(rule.backends, rule.affinity_timeout)

    def expire_udp(self) -> None:
        now = time.monotonic()
        for listener in self.listeners.values():
            if listener.datagram is not None:
                listener.datagram.expire(now)

    def stats(self) -> dict[str, int]:
        return {"listeners": len(self.listeners),
                "connections": sum(len(lis.connections) for lis in self.listeners.values()),
                "accepted": sum(lis.accepted for lis in self.listeners.values()),
                "failed": sum(lis.failed for lis in self.listeners.values())}

    async def close(self) -> None:
        for listener in self.listeners.values():
            await listener.close(0)
        self.listeners.clear()
        for task in list(self._draining):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._draining, return_exceptions=True)
