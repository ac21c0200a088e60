"""A resumable watch: events pushed by an API actor to this client's inbox, in order, none lost.

The client checks the per-watch sequence number of each message; on a gap, on silence longer than
the server's bookmark interval, or when its API actor goes away, it resumes from the last
resourceVersion it saw at any API actor. Only a resourceVersion older than the servers' event window
ends the watch, with ``Expired``: list again and watch from the list's resourceVersion.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from protocol import codec
from protocol.errors import Expired, ShoalError, from_wire
from protocol.kinds import KindInfo
from protocol.objects import Obj, meta
from protocol.subjects import Verb, collection_subject

if TYPE_CHECKING:
    from runtime.client import ApiClient

KEEPALIVE_EVERY = 10.0
SILENCE_LIMIT = 15.0
"""Servers send a bookmark at least every 5 s; this much silence means the watch is gone."""


@dataclass(frozen=True, slots=True)
class _Bookmark:
    """A line of a per-connection bookmark: the server sent this watch messages up to ``seq`` and it is
    current at ``resource_version``."""

    seq: int
    resource_version: int


async def own_inbox(nc: Any, kind: str) -> str:
    """An inbox under this connection's request-reply prefix (``_INBOX.<nuid>.``, where nats-py receives the
    replies of ``nc.request``): API actors push a watch's events only to a subject under the prefix of the
    reply subject the watch was asked with, so a client can point events only at itself. Two tokens after the
    prefix (``<kind>.<nuid>``), so the client's reply subscription ``<prefix>*`` never receives them."""
    if nc._resp_sub_prefix is None:  # nats-py creates its reply subscription on first request
        await nc._init_request_sub()
    prefix: str = bytes(nc._resp_sub_prefix).decode()
    return f"{prefix}{kind}.{nc._nuid.next().decode()}"


class _ConnectionWatches:
    """What the watches of one NATS connection share, in both directions, instead of a message per watch:

    * keep-alives: every ``KEEPALIVE_EVERY`` seconds, one request per API actor (control subject) naming all
      the watches this connection holds there. A process with 5,000 watches (hollow nodes) sends a handful of
      requests, not 500 a second;
    * bookmarks: one inbox per connection (the watch request's ``bookmarks``) where an API actor sends, every
      5 s, one message naming all this connection's idle watches it holds, not one message per watch. Each
      line goes into its watch's own queue, so it is read in order with the watch's events."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.watches: set[Watch] = set()
        self.task: asyncio.Task[None] | None = None
        self._bookmark_inbox: str | None = None
        self._bookmark_lock = asyncio.Lock()

    def add(self, watch: Watch) -> None:
        self.watches.add(watch)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="watch-keepalives")

    def discard(self, watch: Watch) -> None:
        self.watches.discard(watch)
        if not self.watches and self.task is not None:
            self.task.cancel()
            self.task = None

    async def bookmark_inbox(self) -> str:
        """This connection's bookmark inbox (subscribed once, on first use)."""
        async with self._bookmark_lock:
            if self._bookmark_inbox is None:
                inbox = await own_inbox(self.nc, "b")
                await self.nc.subscribe(inbox, cb=self._on_bookmarks, pending_msgs_limit=100_000,
                                        pending_bytes_limit=256 * 1024 * 1024)
                self._bookmark_inbox = inbox
            return self._bookmark_inbox

    async def _on_bookmarks(self, msg: Msg) -> None:
        try:
            entries = codec.decode(msg.data).get("bookmarks")
        except ShoalError:
            return
        if not isinstance(entries, list):
            return
        by_id = {watch._id: watch for watch in self.watches if watch._id}
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            watch = by_id.get(str(entry.get("watch")))
            if watch is not None:
                try:
                    bookmark = _Bookmark(int(entry.get("seq") or 0), int(entry.get("resourceVersion") or 0))
                except (TypeError, ValueError):
                    continue
                watch._queue.put_nowait(bookmark)

    async def _run(self) -> None:
        while self.watches:
            await asyncio.sleep(KEEPALIVE_EVERY)
            by_control: dict[str, dict[str, Watch]] = {}
            for watch in list(self.watches):
                if watch._control and watch._id and not watch._closed:
                    by_control.setdefault(watch._control, {})[watch._id] = watch
            await asyncio.gather(*(self._send(control, watches) for control, watches in by_control.items()))

    async def _send(self, control: str, watches: dict[str, Watch]) -> None:
        try:
            msg = await self.nc.request(control, codec.encode({"op": "keepalive", "watches": list(watches)}),
                                        timeout=5)
            unknown = codec.decode(msg.data).get("unknown") or []
        except (NoRespondersError, NatsTimeout):
            unknown = list(watches)
        except Exception:
            return
        for wid in unknown:
            watch = watches.get(str(wid))
            if watch is not None and watch._id == wid:
                watch._last_message = 0.0  # the server forgot it (or is gone): resume at once


_connections: dict[int, _ConnectionWatches] = {}


def _connection(nc: Any) -> _ConnectionWatches:
    registry = _connections.get(id(nc))
    if registry is None or registry.nc is not nc:
        registry = _connections[id(nc)] = _ConnectionWatches(nc)
    return registry


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    object: Obj
    resource_version: int


class Watch:
    def __init__(self, client: ApiClient, info: KindInfo, namespace: str | None, *,
                 label_selector: str | None, field_selector: str | None,
                 resource_version: int | str | None) -> None:
        self.client = client
        self.info = info
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resource_version: int | None = int(resource_version) if resource_version not in (None, "") else None
        self._queue: asyncio.Queue[Msg | _Bookmark] = asyncio.Queue()
        self._sub: Any = None
        self._id: str | None = None
        self._control: str | None = None
        self._seq = 0
        self._last_message = time.monotonic()
        self._closed = False
        self.restarts = 0

    async def _start(self) -> None:
        nc = self.client.nc
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        self._queue = asyncio.Queue()
        inbox = await own_inbox(nc, "w")
        queue = self._queue
        bookmarks = await _connection(nc).bookmark_inbox()

        async def on_msg(msg: Msg) -> None:
            queue.put_nowait(msg)

        self._sub = await nc.subscribe(inbox, cb=on_msg, pending_msgs_limit=1_000_000,
                                       pending_bytes_limit=1024 * 1024 * 1024)
        reply = await self.client.request(collection_subject(Verb.WATCH, self.info, self.namespace), {
            "inbox": inbox, "bookmarks": bookmarks, "resourceVersion": self.resource_version,
            "labelSelector": self.label_selector, "fieldSelector": self.field_selector,
        })
        self._id, self._control, self._seq = reply["watch"], reply["control"], 0
        if self.resource_version is None:
            self.resource_version = int(reply.get("resourceVersion") or 0)
        self._last_message = time.monotonic()
        if not self._closed:
            _connection(nc).add(self)

    async def _restart(self, reason: str) -> None:
        """Resume the watch from ``resource_version`` (a new server-side watch), retrying while retryable."""
        structlog.get_logger("watch").info("watch resumes", kind=self.info.kind, reason=reason, watch=self._id,
                                           seq=self._seq, resource_version=self.resource_version)
        delay = 0.1
        while not self._closed:
            self.restarts += 1
            try:
                await self._start()
                return
            except Expired:
                raise
            except ShoalError as exc:
                if not exc.retryable:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[WatchEvent]:
        if self._sub is None:
            await self._start()
        while not self._closed:
            timeout = max(0.1, SILENCE_LIMIT - (time.monotonic() - self._last_message))
            try:  # not wait_for: in 3.11 it returns a message that meets a cancellation and loses the cancel
                async with asyncio.timeout(timeout):
                    msg = await self._queue.get()
            except TimeoutError:  # silence: the server or the connection is gone
                await self._restart("silence")
                continue
            if isinstance(msg, _Bookmark):
                if msg.seq == self._seq:  # every message up to it was read: alive, and current at its version
                    self._last_message = time.monotonic()
                    self.resource_version = max(self.resource_version or 0, msg.resource_version)
                continue  # a bookmark ahead of us says a message is missing: silence will resume the watch
            try:
                data = codec.decode(msg.data, check_nesting=False)  # stored objects, checked when written
            except ShoalError:
                await self._restart("an undecodable message")
                continue
            if data.get("watch") != self._id:
                continue  # a message from a watch we already left
            if data.get("seq") != self._seq + 1:
                await self._restart(f"message {data.get('seq')} after {self._seq}: one was lost")
                continue
            self._seq += 1
            self._last_message = time.monotonic()
            if not data.get("ok", True):
                error = from_wire(data.get("error"))
                if isinstance(error, Expired):
                    raise error
                await self._restart(f"the server ended the watch: {error}")
                continue
            for item in data.get("events") or []:
                obj = item["object"]
                rv = int(item["rv"])
                meta(obj)["resourceVersion"] = str(rv)
                self.resource_version = max(self.resource_version or 0, rv)
                yield WatchEvent(item["type"], obj, rv)
            # every event of this message was consumed: the watch is current up to the message's version
            self.resource_version = max(self.resource_version or 0, int(data.get("resourceVersion") or 0))

    async def close(self) -> None:
        self._closed = True
        _connection(self.client.nc).discard(self)
        if self._control and self._id:
            with contextlib.suppress(Exception):
                await self.client.nc.publish(self._control, codec.encode({"op": "cancel", "watches": [self._id]}))
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def __aenter__(self) -> Watch:
        await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


