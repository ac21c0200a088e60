"""SPDY/3.1 framing, the server side of what kubectl's port-forward speaks (pure: bytes in, frames out).

kubectl 1.31+ port-forwards over a websocket whose subprotocol is ``SPDY/3.1+portforward.k8s.io``: the websocket's
binary messages carry a SPDY/3.1 byte stream, as its SPDY fallback would carry it over an upgraded HTTP
connection. Each forwarded connection is a pair of client-initiated streams (``SYN_STREAM`` headers ``streamtype``
``error`` or ``data``, ``port``, ``requestid``); the server replies to each (``SYN_REPLY``) and then relays
``DATA`` frames; ``FLAG_FIN`` half-closes a stream, ``RST_STREAM`` resets it; ``PING`` is echoed.

Header blocks are zlib-compressed with SPDY/3's dictionary, one zlib stream per direction for the connection.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5

_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status 200_OK version HTTP/1.1 url public set-cookie "
    "keep-alive origin"
).replace("_", "\0").split(" ")
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.replace("\0", " ").encode() for w in _WORDS) + _TAIL.encode()
"""SPDY/3's header compression dictionary (draft 3, section 2.6.10.1), 1423 bytes."""


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3."""


@dataclass(frozen=True, slots=True)
class Frame:
    control: bool
    type: int  # control frames: SYN_STREAM...; data frames: 0
    flags: int
    stream_id: int  # 0 for frames without one (PING, SETTINGS, GOAWAY)
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    value: int = 0  # PING id, RST_STREAM status, WINDOW_UPDATE delta


class Codec:
    """Frames from a byte stream (``feed`` then ``frames``) and frames to bytes, for one connection."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                                         DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer.extend(data)
        frames = []
        while len(self._buffer) >= 8:
            (length,) = struct.unpack(">I", b"\0" + self._buffer[5:8])
            if len(self._buffer) < 8 + length:
                break
            head, body = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._parse(head, body))
        return frames

    def _parse(self, head: bytes, body: bytes) -> Frame:
        first, second = struct.unpack(">HH", head[:4])
        flags = head[4]
        if not first & 0x8000:
            return Frame(False, 0, flags, ((first << 16) | second) & 0x7FFFFFFF, body)
        if first & 0x7FFF != VERSION:
            raise ProtocolError(f"SPDY version {first & 0x7FFF}, not 3")
        kind = second
        if kind == SYN_STREAM:
            (stream_id,) = struct.unpack(">I", body[:4])
            return Frame(True, kind, flags, stream_id & 0x7FFFFFFF, headers=self._headers(body[10:]))
        if kind in (SYN_REPLY, HEADERS):
            (stream_id,) = struct.unpack(">I", body[:4])
            return Frame(True, kind, flags, stream_id & 0x7FFFFFFF, headers=self._headers(body[4:]))
        if kind in (RST_STREAM, WINDOW_UPDATE):
            stream_id, value = struct.unpack(">II", body[:8])
            return Frame(True, kind, flags, stream_id & 0x7FFFFFFF, value=value)
        if kind == PING:
            return Frame(True, kind, flags, 0, value=struct.unpack(">I", body[:4])[0])
        if kind == GOAWAY:
            return Frame(True, kind, flags, 0, value=struct.unpack(">I", body[:4])[0])
        return Frame(True, kind, flags, 0, body)  # SETTINGS and others: nothing to do

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        (count,) = struct.unpack(">I", raw[:4])
        offset, headers = 4, {}
        for _ in range(count):
            (n,) = struct.unpack(">I", raw[offset:offset + 4])
            name = raw[offset + 4:offset + 4 + n].decode()
            offset += 4 + n
            (n,) = struct.unpack(">I", raw[offset:offset + 4])
            headers[name.lower()] = raw[offset + 4:offset + 4 + n].decode()
            offset += 4 + n
        return headers

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            raw += struct.pack(">I", len(name)) + name.lower().encode()
            raw += struct.pack(">I", len(value.encode())) + value.encode()
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(kind: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0,
                             struct.pack(">I", stream_id) + self._block(headers or {}))

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def rst_stream(self, stream_id: int, status: int = RST_CANCEL) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def goaway(self, last_stream: int) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream, 0))
