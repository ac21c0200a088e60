"""The DNS wire protocol, with dnspython: UDP and TCP listeners answering from ``records.resolve``.

Answers are cached by the query's bytes after its id (same question, same flags and EDNS: same answer),
so a repeated lookup costs a dict hit instead of a decode, a lookup and an encode; the agent calls
``invalidate`` on every Service or Endpoints change, so the cache never outlives the zone it was made from.

Queries under the cluster domain are answered here (authoritative; NXDOMAIN and NODATA carry the zone's
SOA, so resolvers cache the negative answer for its 5 s). Other names are forwarded as they are (the
raw query) to the upstream resolvers, first answer wins, each tried for ``FORWARD_TIMEOUT``; without
upstreams they get SERVFAIL. Malformed queries get FORMERR when an id can be read, else are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from agents.dns.records import TTL, Result

FORWARD_TIMEOUT = 2.0
Resolver = Callable[[str, str], Result | None]


class DnsStats:
    def __init__(self) -> None:
        self.answered = 0
        self.forwarded = 0
        self.failed = 0

    def as_dict(self) -> dict[str, int]:
        return {"dns_answered": self.answered, "dns_forwarded": self.forwarded, "dns_failed": self.failed}


class DnsHandler:
    """Turns one query (bytes) into one response (bytes, or None to stay silent)."""

    def __init__(self, resolver: Resolver, domain: str, upstreams: Sequence[tuple[str, int]] = ()) -> None:
        self.resolver = resolver
        self.domain = domain.strip(".") + "."
        self.upstreams = list(upstreams)
        self.stats = DnsStats()
        self._cache: dict[bytes, bytes] = {}
        self.max_cached = 10_000
        self._soa = dns.rrset.from_text(self.domain, TTL, "IN", "SOA",
                                        f"ns.dns.{self.domain} hostmaster.{self.domain} 1 7200 1800 86400 {TTL}")

    def invalidate(self) -> None:
        self._cache.clear()

    async def handle(self, wire: bytes) -> bytes | None:
        cached = self._cache.get(wire[2:])
        if cached is not None:
            self.stats.answered += 1
            return wire[:2] + cached
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError):
            self.stats.failed += 1
            return _formerr(wire)
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        qtype = dns.rdatatype.to_text(question.rdtype)
        result = self.resolver(question.name.to_text(), qtype) if question.rdclass == dns.rdataclass.IN else None
        if result is None:
            return await self._forward(query, wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        response.set_rcode(dns.rcode.from_text(result.rcode))
        for record in result.records:
            rrset = response.find_rrset(response.answer, dns.name.from_text(record.name), dns.rdataclass.IN,
                                        dns.rdatatype.from_text(record.rtype), create=True)
            rrset.add(dns.rdata.from_text(dns.rdataclass.IN, record.rtype, record.data), record.ttl)
        if not result.records:
            response.authority.append(self._soa)
        self.stats.answered += 1
        reply: bytes = response.to_wire()
        if len(self._cache) >= self.max_cached:
            self._cache.clear()
        self._cache[wire[2:]] = reply[2:]
        return reply

    async def _forward(self, query: dns.message.Message, wire: bytes) -> bytes:
        for host, port in self.upstreams:
            with contextlib.suppress(OSError, TimeoutError):
                reply = await asyncio.wait_for(_udp_exchange(wire, host, port), FORWARD_TIMEOUT)
                self.stats.forwarded += 1
                return reply
        self.stats.failed += 1
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.SERVFAIL)
        return response.to_wire()


def _formerr(wire: bytes) -> bytes | None:
    if len(wire) < 2:
        return None
    (qid,) = struct.unpack(">H", wire[:2])
    return struct.pack(">HHHHHH", qid, 0x8000 | dns.rcode.FORMERR, 0, 0, 0, 0)


async def _udp_exchange(wire: bytes, host: str, port: int) -> bytes:
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[bytes] = loop.create_future()

    class Upstream(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
            if not reply.done() and data[:2] == wire[:2]:
                reply.set_result(data)

        def error_received(self, exc: Exception) -> None:
            if not reply.done():
                reply.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(Upstream, remote_addr=(host, port))
    try:
        transport.sendto(wire)
        return await reply
    finally:
        transport.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, handler: DnsHandler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = await self.handler.handle(data)
        if reply is not None and self.transport is not None:
            if len(reply) > 512 and not _has_edns(data):
                reply = _truncated(reply)
            self.transport.sendto(reply, addr)


def _has_edns(wire: bytes) -> bool:
    return len(wire) >= 12 and struct.unpack(">H", wire[10:12])[0] > 0


def _truncated(reply: bytes) -> bytes:
    """Header and question only, with TC set: the client retries over TCP."""
    message = dns.message.from_wire(reply)
    message.answer, message.authority, message.additional = [], [], []
    message.flags |= dns.flags.TC
    return message.to_wire()


class DnsServer:
    """UDP and TCP listeners on each of ``addresses`` (``(host, port)``)."""

    def __init__(self, handler: DnsHandler) -> None:
        self.handler = handler
        self._udp: list[tuple[asyncio.DatagramTransport, _Udp]] = []
        self._tcp: list[asyncio.AbstractServer] = []
        self.bound: list[tuple[str, int]] = []
        self.started = time.monotonic()

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        udp, protocol = await loop.create_datagram_endpoint(lambda: _Udp(self.handler), local_addr=(host, port))
        actual = udp.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(self._tcp_client, host, actual, reuse_address=True)
        except OSError:
            udp.close()
            raise
        self._udp.append((udp, protocol))
        self._tcp.append(tcp)
        self.bound.append((host, int(actual)))
        return host, int(actual)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack(">H", await reader.readexactly(2))
                reply = await self.handler.handle(await reader.readexactly(length))
                if reply is None:
                    break
                writer.write(struct.pack(">H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        for transport, protocol in self._udp:
            transport.close()
            for task in list(protocol.tasks):
                task.cancel()
        for server in self._tcp:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._udp.clear()
        self._tcp.clear()
